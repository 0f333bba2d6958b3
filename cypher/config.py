"""Every setting of Cypher, read from CYPHER_* environment variables, with its default.

Each setting is documented in docs/configuration.md. `load_config()` returns a plain dict that
`create_app()` merges into `app.config`; a test passes its own dict on top.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_SERVER_ID = "localhost"
# The Host names development and testing answer to when CYPHER_ALLOWED_HOSTS is empty: a web page
# that points its own name at 127.0.0.1 (DNS rebinding) still sends that name, so it is refused.
LOCAL_HOSTS = ("localhost", "127.0.0.1")


class ConfigError(Exception):
    """A setting has a value Cypher cannot use."""


def _integer(environ: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


# flask-cors takes an origin holding any of these for a regular expression, matched at the start
# only: `https://*.example.com` would let a hostile site read answers with the user's cookies.
_PATTERN_CHARACTERS = frozenset("*\\]?$^[]()")


def _origins(raw: str) -> list[str]:
    origins = [origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip()]
    for origin in origins:
        scheme, _, rest = origin.partition("://")
        if scheme not in {"http", "https"} or not rest or "/" in rest:
            raise ConfigError(f"CYPHER_ALLOWED_ORIGINS: {origin!r} is not an origin like https://app.example.com")
        if not _PATTERN_CHARACTERS.isdisjoint(origin):
            raise ConfigError(
                f"CYPHER_ALLOWED_ORIGINS: {origin!r} holds one of * \\ ? $ ^ [ ] ( ): list each origin exactly, "
                "without patterns (an IPv6 address needs a host name)"
            )
    return origins


# A host name or IPv4 address, lower-case, with an optional port; a leading dot allows every
# subdomain (werkzeug's TRUSTED_HOSTS rules, which cannot match an IPv6 address).
_ALLOWED_HOST = re.compile(r"\.?[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::[0-9]{1,5})?")
# A cookie's Domain: a dotted host name (a browser refuses a single label or an address's part).
_COOKIE_DOMAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")


def _allowed_hosts(raw: str) -> list[str]:
    hosts = [host.strip().lower() for host in raw.split(",") if host.strip()]
    for host in hosts:
        if not _ALLOWED_HOST.fullmatch(host):
            raise ConfigError(
                f"CYPHER_ALLOWED_HOSTS: {host!r} is not a host name like login.example.com "
                "(a port may follow; an IPv6 address needs a host name)"
            )
    return hosts


def _cookie_domain(raw: str) -> str | None:
    domain = raw.strip().lower().removeprefix(".")
    if not domain:
        return None
    if not _COOKIE_DOMAIN.fullmatch(domain):
        raise ConfigError(f"CYPHER_COOKIE_DOMAIN: {raw!r} is not a parent domain like example.com")
    return domain


def load_config(instance_path: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read every CYPHER_* setting; paths default into the instance folder."""
    env = os.environ if environ is None else environ
    mode = env.get("CYPHER_ENV", "development")
    if mode not in {"development", "production", "testing"}:
        raise ConfigError(f"CYPHER_ENV must be development, production or testing, not {mode!r}")
    return {
        "CYPHER_ENV": mode,
        "DATABASE_URL": env.get("CYPHER_DATABASE_URL") or f"sqlite:///{instance_path / 'cypher.db'}",
        "KEYS_FILE": env.get("CYPHER_KEYS_FILE") or str(instance_path / "keys.json"),
        # The OPAQUE server identity; clients bind it into every login, so changing it breaks
        # every stored account. Production must set it to the public host name.
        "SERVER_ID": env.get("CYPHER_SERVER_ID") or DEFAULT_SERVER_ID,
        "MAX_CONTENT_LENGTH": _integer(env, "CYPHER_MAX_BODY_BYTES", 64 * 1024),
        "LOGIN_STATE_TTL": _integer(env, "CYPHER_LOGIN_TTL", 60),
        "REGISTRATION_STATE_TTL": _integer(env, "CYPHER_REGISTRATION_TTL", 300),
        "PENDING_TTL": _integer(env, "CYPHER_PENDING_TTL", 300),
        "PASS_AUTH_TTL": _integer(env, "CYPHER_PASS_AUTH_TTL", 180),
        "ENROLL_TTL": _integer(env, "CYPHER_ENROLL_TTL", 300),
        "ACCESS_TTL": _integer(env, "CYPHER_ACCESS_TTL", 900),
        "REFRESH_TTL": _integer(env, "CYPHER_REFRESH_TTL", 30 * 24 * 3600),
        "COOKIE_SECURE": _boolean(env, "CYPHER_COOKIE_SECURE", mode != "development"),
        # Set only when applications on sibling subdomains sit behind the gate: the access cookie
        # then goes to them all, and can be planted by any of them (cypher/cookies.py).
        "COOKIE_DOMAIN": _cookie_domain(env.get("CYPHER_COOKIE_DOMAIN", "")),
        "MIGRATE_ON_START": _boolean(env, "CYPHER_MIGRATE_ON_START", True),
        "TOTP_ISSUER": env.get("CYPHER_TOTP_ISSUER") or "Cypher",
        # How many proxies (nginx: 1) stand in front and set X-Forwarded-For/-Proto/-Host. Their
        # headers are believed only then: the client address feeds rate limits and session rows.
        "TRUSTED_PROXIES": _integer(env, "CYPHER_TRUSTED_PROXIES", 0, minimum=0),
        "RATELIMIT_ENABLED": _boolean(env, "CYPHER_RATELIMIT_ENABLED", True),
        # /metrics answers loopback clients, or any client sending this bearer token.
        "METRICS_TOKEN": env.get("CYPHER_METRICS_TOKEN") or "",
        "LOG_FORMAT": env.get("CYPHER_LOG_FORMAT") or ("json" if mode == "production" else "text"),
        "RATELIMIT_STORAGE": env.get("CYPHER_RATELIMIT_STORAGE") or "memory://",
        # Per client address, on each OPAQUE, TOTP, session and account endpoint.
        "RATELIMIT_AUTH": env.get("CYPHER_RATELIMIT_AUTH") or "30 per minute",
        "RATELIMIT_KEY_PREFIX": env.get("CYPHER_RATELIMIT_KEY_PREFIX") or "cypher",
        # Login regulation (services/regulation.py): password logins started and not completed
        # per name and address, and per name, in a window; past either budget a ban that doubles.
        "LOGIN_WINDOW": _integer(env, "CYPHER_LOGIN_WINDOW", 3600),
        "LOGIN_ATTEMPTS_PER_ADDRESS": _integer(env, "CYPHER_LOGIN_ATTEMPTS_PER_ADDRESS", 10),
        "LOGIN_ATTEMPTS_PER_NAME": _integer(env, "CYPHER_LOGIN_ATTEMPTS_PER_NAME", 100),
        "LOGIN_BAN": _integer(env, "CYPHER_LOGIN_BAN", 5 * 60),
        "LOGIN_LONGEST_BAN": _integer(env, "CYPHER_LOGIN_LONGEST_BAN", 24 * 3600),
        # How many processes serve this instance: deploy/gunicorn.conf.py sets it in every worker to
        # gunicorn's worker count. Per-process rate-limit counters are only sound with one.
        "SERVING_PROCESSES": _integer(env, "CYPHER_SERVING_PROCESSES", 1),
        # The origins (scheme://host[:port]) that may call Cypher with cookies, its own public one
        # first (production refuses an empty list: behind a proxy that ends TLS, the origin a
        # request arrives with is not the browser's). CORS answers them; the Origin check too.
        "ALLOWED_ORIGINS": _origins(env.get("CYPHER_ALLOWED_ORIGINS", "")),
        # The Host names (after a trusted proxy's X-Forwarded-Host) Cypher answers to; any other is
        # refused, against DNS rebinding. Empty: LOCAL_HOSTS outside production, which refuses it.
        "ALLOWED_HOSTS": _allowed_hosts(env.get("CYPHER_ALLOWED_HOSTS", "")),
        # Days an audit event is kept before `flask --app cypher purge` deletes it: long enough to
        # look back at an incident noticed months later; not for ever, since addresses are personal data.
        "AUDIT_RETENTION_DAYS": _integer(env, "CYPHER_AUDIT_RETENTION_DAYS", 180),
    }


def production_problems(config: Mapping[str, Any], keys_file_too_open: bool) -> list[str]:
    """What makes a configuration unfit for production; empty when it is fit."""
    problems = []
    if keys_file_too_open:
        problems.append(f"the keys file {config['KEYS_FILE']} can be read by others: chmod 600 it")
    if not config["COOKIE_SECURE"]:
        problems.append("cookies would not be Secure: unset CYPHER_COOKIE_SECURE or set it to true")
    if config["SERVER_ID"] == DEFAULT_SERVER_ID:
        problems.append("CYPHER_SERVER_ID is not set: set it to the public host name, before anyone registers")
    if not config["ALLOWED_ORIGINS"]:
        problems.append("CYPHER_ALLOWED_ORIGINS is empty: list the public origin(s), e.g. https://login.example.com")
    if not config["ALLOWED_HOSTS"]:
        problems.append(
            "CYPHER_ALLOWED_HOSTS is empty: list the public host name(s) Cypher is reached by, e.g. login.example.com"
        )
    processes = config["SERVING_PROCESSES"]
    if config["RATELIMIT_ENABLED"] and config["RATELIMIT_STORAGE"] == "memory://" and processes > 1:
        problems.append(
            f"rate limits would be counted per process (CYPHER_RATELIMIT_STORAGE=memory://) while {processes} "
            "processes serve, so each would admit the whole limit: set CYPHER_RATELIMIT_STORAGE to a Redis "
            "(redis://127.0.0.1:6379/0) or serve with one worker (CYPHER_WORKERS=1)"
        )
    return problems


def trusted_hosts(config: Mapping[str, Any]) -> list[str]:
    """The Host names to answer to: CYPHER_ALLOWED_HOSTS, or else LOCAL_HOSTS."""
    return list(config["ALLOWED_HOSTS"] or LOCAL_HOSTS)
