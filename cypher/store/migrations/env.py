"""Alembic environment: Cypher always hands in an open connection (see store/migrate.py)."""

from alembic import context

from cypher.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
