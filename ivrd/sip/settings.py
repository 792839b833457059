"""What the SIP core is told (:class:`UaSettings`), and what it says of itself in the messages it builds."""

from __future__ import annotations

from dataclasses import dataclass, field

from .dtmf import INFO_TYPES
from .flow import SipFlow
from .transaction import Timers
from .uri import format_host

ALLOWED = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY")
# Methods of other SIP extensions: known, so 405 (with Allow) rather than 501.
KNOWN_UNSUPPORTED = frozenset({"REGISTER", "SUBSCRIBE", "REFER", "MESSAGE", "UPDATE", "PRACK", "PUBLISH"})
# The bodies a request may carry, by method (any other method: SDP).
BODY_TYPES = {"INFO": INFO_TYPES, "NOTIFY": ("message/sipfrag",)}


@dataclass(frozen=True, slots=True)
class UaSettings:
    user_agent: str = "ivrd"
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    max_calls: int = 1000
    max_message_bytes: int = 65535
    timers: Timers = field(default_factory=Timers)
    invite_rate: float = 0.0  # new calls a second from one source address (0: no limit)
    invite_burst: float = 1.0
    trusted_sources: tuple[str, ...] = ()  # addresses or networks the rate limit does not apply to
    realm: str = "ivrd"
    accounts: dict[str, str] = field(default_factory=dict)  # user -> password; none: REGISTER is refused (405)
    digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5")  # offered in this order

    @property
    def allowed(self) -> tuple[str, ...]:
        """The methods we take (REGISTER only when there are accounts to register)."""
        return ALLOWED + (("REGISTER",) if self.accounts else ())

    def capabilities(self) -> tuple[tuple[str, str], ...]:
        """Allow, Accept and Server: what OPTIONS and our 2xx tell of us."""
        return (("allow", ", ".join(self.allowed)), ("accept", "application/sdp, " + ", ".join(INFO_TYPES)),
                ("server", self.user_agent))  # fmt: skip


def sent_by(flow: SipFlow) -> str:
    """Our host:port on ``flow``, as a Via's sent-by."""
    host, port = flow.local
    return f"{format_host(host)}:{port}"


def contact_header(flow: SipFlow) -> str:
    """Our Contact on ``flow``."""
    transport = ";transport=tcp" if flow.transport == "tcp" else ""
    return f"<sip:ivrd@{sent_by(flow)}{transport}>"
