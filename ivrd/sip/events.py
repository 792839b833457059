"""What the SIP core hands out: the datagrams to send, and the events the application acts on."""

from __future__ import annotations

from dataclasses import dataclass

from .flow import SipFlow
from .leg import CallLeg
from .sdp import AudioSession


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` to ``host``:``port``; on a stream flow whose connection is open, over that connection."""

    data: bytes
    host: str
    port: int
    flow: SipFlow


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new call: the application rings, answers or rejects ``leg``."""

    leg: CallLeg


@dataclass(frozen=True, slots=True)
class CallConfirmed:
    """The ACK of our 2xx came: the call is up."""

    leg: CallLeg


@dataclass(frozen=True, slots=True)
class CallRinging:
    """A call we placed is ringing (a provisional response above 100)."""

    leg: CallLeg


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A call we placed was answered and acknowledged; ``leg.audio`` is what the two sides agreed."""

    leg: CallLeg


@dataclass(frozen=True, slots=True)
class MediaChanged:
    """A re-INVITE changed the media (hold, resume, new address)."""

    leg: CallLeg
    audio: AudioSession


@dataclass(frozen=True, slots=True)
class DtmfInfo:
    """A key in a SIP INFO (application/dtmf-relay or application/dtmf)."""

    leg: CallLeg
    digit: str
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The leg is over, for ``reason``."""

    leg: CallLeg
    # "bye", "cancel", "hangup", "rejected", "ack-timeout", "bye-timeout"; for a call we placed that was
    # not answered, "failed" (its status in leg.final_status), "timeout" or "cancel"
    reason: str


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """A message that could not be processed; for logs and counters."""

    flow: SipFlow
    status: int | None  # the status answered, or None when dropped
    reason: str


@dataclass(frozen=True, slots=True)
class ReferAnswered:
    """The final response to our REFER (202: the transferee tries the target; else it will not)."""

    leg: CallLeg
    status: int


@dataclass(frozen=True, slots=True)
class ReferProgress:
    """How the transferee's call to the target ended (a final status from a NOTIFY's message/sipfrag)."""

    leg: CallLeg
    status: int


@dataclass(frozen=True, slots=True)
class Registered:
    """An account's bindings after a REGISTER it proved (none: it unregistered)."""

    user: str
    contacts: tuple[str, ...]
    flow: SipFlow


@dataclass(frozen=True, slots=True)
class Refused:
    """A request within a call that did not come from the call's peer (403; one log line each, for fail2ban)."""

    flow: SipFlow
    method: str
    call_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """A request whose credentials did not prove an account (one log line each, for fail2ban)."""

    flow: SipFlow
    user: str
    reason: str


SipEvent = (IncomingCall | CallConfirmed | CallRinging | CallAnswered | MediaChanged | DtmfInfo | CallEnded
            | MessageRejected | ReferAnswered | ReferProgress | Registered | AuthFailed | Refused)  # fmt: skip
