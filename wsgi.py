"""The WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

from cypher import create_app

app = create_app()
