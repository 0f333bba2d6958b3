"""Admin commands: `flask --app cypher <command>`."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import click
from flask import Flask

from cypher.keys import ROTATABLE, load_or_create_keyring, pruned, rotated, write_keyring_file
from cypher.services.client_info import ClientInfo
from cypher.services.errors import CypherError
from cypher.services.regulation import NAME_COUNT
from cypher.store import AuditEvent, RegulationCount, SessionRecord
from cypher.store.migrate import current_revision, head_revision, upgrade
from cypher.wiring import services


def _when(record_time: object) -> str:
    return str(record_time).split(".")[0]


def _echo_sessions(records: list[SessionRecord]) -> None:
    for record in records:
        click.echo(
            f"{record.id}  {record.username}  {record.ip or '-'}  created {_when(record.created_at)}"
            f"  last seen {_when(record.last_seen_at)}  {record.user_agent or ''}"
        )
    click.echo(f"{len(records)} live session(s)")


def _echo_login_counts(counts: list[RegulationCount]) -> None:
    now = datetime.now(UTC)
    for count in counts:
        scope = "from every address" if count.address == NAME_COUNT else f"from {count.address}"
        banned = count.banned_until is not None and count.banned_until > now
        state = f"banned until {_when(count.banned_until)}" if banned else f"{count.attempts} attempt(s) in the window"
        click.echo(f"logins {scope}: {state}, {count.bans} ban(s) in a row")


def _operator() -> ClientInfo:
    """Who acts from the command line, as admin audit events record it: no address, the OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = "unknown"
    return ClientInfo(ip=None, user_agent=f"flask cli ({user})")


_RELATIVE = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class Since(click.ParamType["datetime | timedelta"]):
    """An ISO 8601 time (UTC unless it names its offset), or a span back from now: 30m, 24h, 7d."""

    name = "since"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime | timedelta:
        if isinstance(value, datetime | timedelta):
            return value
        text = str(value).strip()
        relative = _RELATIVE.fullmatch(text)
        if relative:
            return timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is neither an ISO time (2026-12-01T08:00) nor a span like 30m, 24h or 7d", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _echo_event(event: AuditEvent, as_json: bool) -> None:
    if as_json:
        record = {
            "occurredAt": event.occurred_at.isoformat(),
            "event": event.event,
            "userId": event.user_id,
            "username": event.username,
            "ip": event.ip,
            "userAgent": event.user_agent,
            "detail": event.detail,
        }
        click.echo(json.dumps(record, separators=(",", ":")))
        return
    detail = " ".join(f"{key}={value}" for key, value in sorted(event.detail.items()))
    click.echo(
        f"{event.occurred_at.isoformat(timespec='seconds')}  {event.event}  {event.username or '-'}"
        f"  {event.ip or '-'}  {detail or '-'}  {event.user_agent or ''}".rstrip()
    )


T = TypeVar("T")


def _admin_call(action: Callable[[], T]) -> T:
    """Run an admin action; a refusal is a clear message and exit status 1, not a traceback."""
    try:
        return action()
    except CypherError as error:
        raise click.ClickException(error.message) from None


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
        """Delete expired pending accounts, protocol state, pass-auth records, ended sessions and
        audit events past CYPHER_AUDIT_RETENTION_DAYS."""
        for name, count in services().maintenance.purge().items():
            click.echo(f"{name}: {count}")

    @app.cli.group("users")
    def users() -> None:
        """Accounts."""

    @users.command("list")
    def users_list() -> None:
        for user in services().admin.users():
            click.echo(f"{user.username}  {user.status}  created {_when(user.created_at)}")

    @users.command("show")
    @click.argument("username")
    def users_show(username: str) -> None:
        details = _admin_call(lambda: services().admin.user(username))
        user = details.user
        click.echo(f"username: {user.username}\nstatus: {user.status}\ncreated: {_when(user.created_at)}")
        click.echo(f"totp: {'enrolled' if user.totp_secret else 'not enrolled'}")
        click.echo(f"unused recovery codes: {details.unused_recovery_codes}")
        _echo_sessions(details.live_sessions)
        _echo_login_counts(services().admin.login_counts(username))

    @users.command("unban")
    @click.argument("username")
    def users_unban(username: str) -> None:
        """Lift the name's login bans and forget its counts (the name need not have an account)."""
        forgotten = _admin_call(lambda: services().admin.unban(username))
        click.echo(f"{username}: {forgotten} login count(s) forgotten; its logins are answered again")

    @users.command("disable")
    @click.argument("username")
    def users_disable(username: str) -> None:
        """No more logins; every live session ends now."""
        revoked = _admin_call(lambda: services().admin.disable(username, _operator()))
        click.echo(f"{username} disabled; {revoked} session(s) revoked")

    @users.command("enable")
    @click.argument("username")
    def users_enable(username: str) -> None:
        _admin_call(lambda: services().admin.enable(username, _operator()))
        click.echo(f"{username} enabled")

    @users.command("delete")
    @click.argument("username")
    @click.confirmation_option(prompt="Delete the account and everything in it?")
    def users_delete(username: str) -> None:
        _admin_call(lambda: services().admin.delete(username, _operator()))
        click.echo(f"{username} deleted")

    @app.cli.group("sessions")
    def sessions() -> None:
        """Live sessions."""

    @sessions.command("list")
    @click.argument("username", required=False)
    def sessions_list(username: str | None) -> None:
        _echo_sessions(_admin_call(lambda: services().admin.sessions(username)))

    # Session ids are URL-safe base64 and may begin with "-": taken as the id, not as an option.
    @sessions.command("revoke", context_settings={"ignore_unknown_options": True})
    @click.argument("session_id")
    def sessions_revoke(session_id: str) -> None:
        _admin_call(lambda: services().admin.revoke_session(session_id, _operator()))
        click.echo(f"session {session_id} revoked")

    @app.cli.command("audit")
    @click.option("--user", "username", help="Only this username's events (unknown names' too).")
    @click.option("--event", "event_prefix", help="Only events whose name begins so: login.failed, login., admin.")
    @click.option("--since", type=Since(), help="From then on: an ISO time (UTC unless given) or 30m, 24h, 7d ago.")
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    def audit(
        username: str | None, event_prefix: str | None, since: datetime | timedelta | None, limit: int, as_json: bool
    ) -> None:
        """Security events, newest first."""
        events = _admin_call(
            lambda: services().audit.search(username=username, event_prefix=event_prefix, since=since, limit=limit)
        )
        for event in events:
            _echo_event(event, as_json)

    @app.cli.group("keys")
    def keys() -> None:
        """Token keys: rotate, then prune once the old tokens have expired."""

    @keys.command("rotate")
    def keys_rotate() -> None:
        """A new current key for each token purpose; the old ones keep verifying. Restart to apply."""
        path = Path(app.config["KEYS_FILE"])
        write_keyring_file(path, rotated(load_or_create_keyring(path)), replace=True)
        click.echo(f"rotated {', '.join(purpose.value for purpose in ROTATABLE)} in {path}; restart every worker")

    @keys.command("prune")
    def keys_prune() -> None:
        """Drop every non-current token key: tokens they made stop verifying. Restart to apply."""
        path = Path(app.config["KEYS_FILE"])
        write_keyring_file(path, pruned(load_or_create_keyring(path)), replace=True)
        click.echo(
            f"pruned old {', '.join(purpose.value for purpose in ROTATABLE)} keys in {path}; restart every worker"
        )

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
