"""The session cookies' names and attributes, decided once when the application is built.

A browser keeps a `__Host-` cookie only when it comes from this very host, Secure, on Path=/ and
without Domain, so a sibling subdomain can neither plant one nor shadow it with its own. A cookie
that must reach sibling subdomains (the access cookie, when CYPHER_COOKIE_DOMAIN is set) can at
best be `__Secure-`. Over plain HTTP (development) neither prefix is possible: the names are bare.
"""

from __future__ import annotations

from dataclasses import dataclass

REFRESH_PATH = "/api/refresh-token"
PASS_AUTH_PATH = "/totp"
HOST_PREFIX = "__Host-"
SECURE_PREFIX = "__Secure-"


@dataclass(frozen=True)
class Cookie:
    """One cookie of ours, as every reader and writer must spell it."""

    name: str
    path: str
    domain: str | None
    secure: bool


@dataclass(frozen=True)
class SessionCookies:
    access: Cookie
    refresh: Cookie
    pass_auth: Cookie

    @classmethod
    def for_settings(cls, secure: bool, domain: str | None) -> SessionCookies:
        """The cookies for CYPHER_COOKIE_SECURE and CYPHER_COOKIE_DOMAIN: each with the strongest
        prefix its attributes allow. Only the access cookie takes the domain: the gate on a sibling
        subdomain needs it, and nothing there needs the refresh or pass-auth token."""

        def cookie(name: str, path: str, shared: bool) -> Cookie:
            cookie_domain = domain if shared else None
            if not secure:
                return Cookie(name, path, cookie_domain, secure=False)
            if cookie_domain:
                return Cookie(SECURE_PREFIX + name, path, cookie_domain, secure=True)
            return Cookie(HOST_PREFIX + name, "/", None, secure=True)  # __Host- demands Path=/

        return cls(
            access=cookie("cypher_access", "/", shared=True),
            refresh=cookie("cypher_refresh", REFRESH_PATH, shared=False),
            pass_auth=cookie("cypher_pass_auth", PASS_AUTH_PATH, shared=False),
        )
