"""Where a request came from: recorded on session rows and on audit events."""

from __future__ import annotations

from dataclasses import dataclass

MAX_USER_AGENT = 512
MAX_IP = 64


@dataclass(frozen=True)
class ClientInfo:
    """The client's address and user agent, as the request gave them (blueprints build it once)."""

    ip: str | None
    user_agent: str | None

    def clipped(self) -> ClientInfo:
        """Cut to what the columns hold: a user agent is the client's to make as long as it likes."""
        return ClientInfo(
            ip=self.ip[:MAX_IP] if self.ip else None,
            user_agent=self.user_agent[:MAX_USER_AGENT] if self.user_agent else None,
        )
