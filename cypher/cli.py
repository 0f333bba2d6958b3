"""Admin commands: `flask --app cypher <command>`."""

from __future__ import annotations

import click
from flask import Flask

from cypher.store.migrate import current_revision, head_revision, upgrade
from cypher.wiring import services


def register_commands(app: Flask) -> None:
    @app.cli.command("init")
    def init() -> None:
        """Create the keys file and the database (creating the app already did; this reports it)."""
        app_services = services()
        upgrade(app_services.store.engine)
        click.echo(f"keys: {app.config['KEYS_FILE']}")
        click.echo(f"database: {app_services.store.engine.url.render_as_string(hide_password=True)}")

    @app.cli.command("purge")
    def purge() -> None:
        """Delete expired pending accounts, protocol state, pass-auth records and ended sessions."""
        for name, count in services().maintenance.purge().items():
            click.echo(f"{name}: {count}")

    @app.cli.group("db")
    def db() -> None:
        """Database schema."""

    @db.command("upgrade")
    def db_upgrade() -> None:
        """Apply every migration not yet applied."""
        upgrade(services().store.engine)
        click.echo(f"database at revision {current_revision(services().store.engine)}")

    @db.command("current")
    def db_current() -> None:
        """Show the applied revision and the newest one."""
        click.echo(f"applied: {current_revision(services().store.engine)}; newest: {head_revision()}")
