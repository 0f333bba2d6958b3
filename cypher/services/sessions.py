"""Sessions: open one after the second factor, refresh with rotation, verify, list, revoke."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cypher.services.audit import AuditTrail, Event, session_ref
from cypher.services.client_info import ClientInfo
from cypher.services.clock import Clock
from cypher.services.errors import CypherError, InvalidToken, NotFound, TokenReused
from cypher.services.tokens import MintedToken, TokenClaims, TokenPurpose, TokenService
from cypher.store import NewSession, Store, Transaction

SESSION_ID_BYTES = 24
# last_seen_at is written at most this often by verification, so reads stay reads.
LAST_SEEN_GRANULARITY = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionTokens:
    session_id: str
    username: str
    access: MintedToken
    refresh: MintedToken


@dataclass(frozen=True)
class Principal:
    """Who an access token speaks for, after its session was found live."""

    username: str
    user_id: int
    session_id: str
    expires_at: datetime  # of the access token


@dataclass(frozen=True)
class SessionView:
    id: str
    created_at: datetime
    last_seen_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class SessionService:
    def __init__(
        self, store: Store, tokens: TokenService, clock: Clock, session_lifetime: timedelta, audit: AuditTrail
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._session_lifetime = session_lifetime
        self._audit = audit

    def prepare(self, user_id: int, username: str, client: ClientInfo) -> tuple[SessionTokens, NewSession]:
        """Mint the tokens of a new session and describe its row, for the caller to store."""
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        now = self._clock()
        clipped = client.clipped()
        tokens = self._mint_pair(username, session_id, session_ends_at=now + self._session_lifetime)
        row = NewSession(
            session_id=session_id,
            user_id=user_id,
            refresh_token_id=tokens.refresh.claims.token_id,
            created_at=now,
            expires_at=now + self._session_lifetime,
            ip=clipped.ip,
            user_agent=clipped.user_agent,
        )
        return tokens, row

    def refresh(self, refresh_token: str, client: ClientInfo) -> SessionTokens:
        """Spend a refresh token for a new pair; a spent one presented again revokes the session."""
        claims = self._tokens.parse(refresh_token, TokenPurpose.REFRESH)
        with self._store.transaction() as tx:
            outcome = self._rotate(tx, claims, client, self._clock())
        if isinstance(outcome, CypherError):
            raise outcome
        return outcome

    def _rotate(
        self, tx: Transaction, claims: TokenClaims, client: ClientInfo, now: datetime
    ) -> SessionTokens | CypherError:
        """Move the session on from this authentic refresh token to a new pair, or detect reuse.

        The session row stays locked until the end, so of several concurrent refreshes with one
        token exactly one moves the session on; each other one finds the token spent, and reuse
        revokes the whole session (RFC 9700). The revocation is returned, not raised, to commit.
        """
        session_id = _session_id(claims)
        found = tx.sessions.for_refresh(session_id)
        if found is None:
            return InvalidToken()  # purged, or its account was deleted
        current = found.refresh_token_id
        if current is None or not hmac.compare_digest(current, claims.token_id):
            tx.sessions.revoke(session_id, now)
            session = found.session
            self._audit.record(
                tx,
                Event.REFRESH_TOKEN_REUSED,
                client,
                user_id=session.user_id,
                username=session.username,
                session=session_ref(session_id),
            )
            return TokenReused()
        session = found.session
        if found.revoked or session.expires_at <= now or session.username != claims.subject:
            return InvalidToken()
        tokens = self._mint_pair(claims.subject, session_id, session_ends_at=session.expires_at)
        tx.sessions.set_refresh_token(session_id, tokens.refresh.claims.token_id, now)
        return tokens

    def verify(self, access_token: str) -> Principal:
        """Check an access token's signature, purpose and expiry, and that its session is live."""
        claims = self._tokens.parse(access_token, TokenPurpose.ACCESS)
        now = self._clock()
        with self._store.transaction(readonly=True) as tx:
            session = tx.sessions.live(_session_id(claims), now)
        if session is None or session.username != claims.subject:
            raise InvalidToken("The session has ended.")
        if now - session.last_seen_at >= LAST_SEEN_GRANULARITY:
            with self._store.transaction() as tx:
                tx.sessions.touch(session.id, now)
        return Principal(session.username, session.user_id, session.id, claims.expires_at)

    def list(self, principal: Principal) -> list[SessionView]:
        with self._store.transaction(readonly=True) as tx:
            records = tx.sessions.list_live(self._clock(), user_id=principal.user_id)
        return [
            SessionView(
                record.id,
                record.created_at,
                record.last_seen_at,
                record.ip,
                record.user_agent,
                current=record.id == principal.session_id,
            )
            for record in records
        ]

    def revoke(self, principal: Principal, session_id: str, client: ClientInfo) -> None:
        if not self._revoke(principal, session_id, Event.SESSION_REVOKED, client):
            raise NotFound("No such session.")

    def logout(self, principal: Principal, client: ClientInfo) -> None:
        self._revoke(principal, principal.session_id, Event.SESSION_LOGOUT, client)

    def logout_all(self, principal: Principal, client: ClientInfo) -> int:
        return self._revoke(principal, None, Event.SESSION_LOGOUT_ALL, client)

    def _revoke(self, principal: Principal, session_id: str | None, event: Event, client: ClientInfo) -> int:
        """End one live session of the user, or all of them, and record it if any ended; how many."""
        with self._store.transaction() as tx:
            ended = tx.sessions.revoke_live(self._clock(), user_id=principal.user_id, session_id=session_id)
            if ended:
                detail = {"sessions": ended} if session_id is None else {"session": session_ref(session_id)}
                self._audit.record(tx, event, client, user_id=principal.user_id, username=principal.username, **detail)
            return ended

    def _mint_pair(self, username: str, session_id: str, session_ends_at: datetime) -> SessionTokens:
        return SessionTokens(
            session_id=session_id,
            username=username,
            access=self._tokens.mint(TokenPurpose.ACCESS, username, session_id=session_id, not_after=session_ends_at),
            refresh=self._tokens.mint(TokenPurpose.REFRESH, username, session_id=session_id, not_after=session_ends_at),
        )


def _session_id(claims: TokenClaims) -> str:
    if claims.session_id is None:  # parse() refuses such access and refresh tokens already
        raise InvalidToken()
    return claims.session_id
