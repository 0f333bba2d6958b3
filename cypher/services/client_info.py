"""Where a request came from: recorded on session rows and on audit events."""

from __future__ import annotations

from dataclasses import dataclass

import ua_parser

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


UNKNOWN_DEVICE = "Unknown device"


def device_name(user_agent: str | None) -> str:
    """A User-Agent as a person names their device ("Chrome Mobile on Android", "Edge on Windows"),
    by ua-parser's maintained patterns: browsers copy each other's tokens (Edge and Android's Chrome
    say "Chrome", Android says "Linux"), which home-made patterns get wrong."""
    if not user_agent:
        return UNKNOWN_DEVICE
    parsed = ua_parser.parser(user_agent, ua_parser.Domain.USER_AGENT | ua_parser.Domain.OS)
    browser = parsed.user_agent.family if parsed.user_agent and parsed.user_agent.family != "Other" else None
    system = parsed.os.family if parsed.os and parsed.os.family != "Other" else None
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or UNKNOWN_DEVICE
