"""One call's signalling state, and the table of how it may change.

A leg is an incoming call or one we place. Its state moves only through :func:`advance`, by the
table :data:`TRANSITIONS`; any other change is a bug, raised as :class:`LegStateError` (the
transport turns a bug into one lost message, never a dead daemon).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote

from .dialog import AnswerRetransmitter, Dialog
from .errors import ParseError
from .flow import SipFlow
from .message import Request
from .sdp import AudioSession, SessionDescription
from .transaction import ClientInviteTransaction, ServerInviteTransaction
from .uri import Uri


class LegState(enum.Enum):
    INCOMING = "incoming"  # INVITE received, no final response yet
    CALLING = "calling"  # our INVITE is out, no final response yet
    ANSWERED = "answered"  # 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"
    ENDING = "ending"  # our BYE is out
    ENDED = "ended"


class LegInput(enum.Enum):
    ANSWER = "answer"  # we sent a 2xx to the INVITE
    ACK = "ack"  # the ACK of our 2xx came
    ANSWERED = "answered"  # a 2xx to our INVITE came (and we ACKed it)
    BYE = "bye"  # we sent a BYE
    END = "end"  # the leg is over (BYE answered or received, CANCEL, failure, timeout)


_LIVE = (LegState.INCOMING, LegState.CALLING, LegState.ANSWERED, LegState.CONFIRMED, LegState.ENDING)
TRANSITIONS: dict[tuple[LegState, LegInput], LegState] = {
    (LegState.INCOMING, LegInput.ANSWER): LegState.ANSWERED,
    (LegState.ANSWERED, LegInput.ACK): LegState.CONFIRMED,
    (LegState.CALLING, LegInput.ANSWERED): LegState.CONFIRMED,
    (LegState.ANSWERED, LegInput.BYE): LegState.ENDING,  # no ACK came: §13.3.1.4 ends the dialog with a BYE
    (LegState.CONFIRMED, LegInput.BYE): LegState.ENDING,
    **{(state, LegInput.END): LegState.ENDED for state in _LIVE},
}


class LegStateError(Exception):
    """A state change the table does not allow: a bug in the core."""


def advance(leg: CallLeg, happened: LegInput) -> LegState:
    """Move ``leg`` by the table; its new state."""
    new = TRANSITIONS.get((leg.state, happened))
    if new is None:
        raise LegStateError(f"{happened.value} in state {leg.state.value} ({leg.call_id})")
    leg.state = new
    return new


@dataclass(slots=True, eq=False)
class CallLeg:
    """One call's signalling state: an incoming call, or one we place (``outgoing``)."""

    invite: Request
    flow: SipFlow
    transaction: ServerInviteTransaction | ClientInviteTransaction
    local_tag: str
    offer: SessionDescription | None
    audio: AudioSession | None  # what offer/answer agreed (a preview until answered)
    state: LegState = LegState.INCOMING
    dialog: Dialog | None = None
    local_sdp: SessionDescription | None = None
    awaiting_answer: SessionDescription | None = None  # our offer in a 2xx, answered in the ACK
    retransmitter: AnswerRetransmitter | None = None
    hangup_after_ack: bool = False
    refer_after_ack: str | None = None  # a transfer asked for before the ACK came (§13.3.1.4)
    sdp_version: int = 0
    end_reason: str = "hangup"  # reported when our BYE completes
    answer_route: tuple[str, int, SipFlow] | None = None  # where a 2xx being retransmitted goes
    outgoing: bool = False
    peer: tuple[str, int] | None = None  # outgoing: where in-dialog requests go when no route set says otherwise
    final_status: int | None = None  # outgoing: the final response our INVITE got
    provisional: bool = False  # outgoing: a provisional response came (a CANCEL may be sent)
    cancelled: bool = False  # outgoing: we gave up on it
    cancel_deadline: float | None = None  # outgoing: no final response after our CANCEL by then: ended (§9.1)
    ack: bytes = b""  # outgoing: the ACK of the 2xx, sent again for each retransmission of it

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def caller(self) -> str:
        return str(self.invite.from_.uri)

    @property
    def callee(self) -> str:
        return self.invite.uri

    @property
    def caller_number(self) -> str:
        """The user part of the From URI (the number of a tel: URI), unescaped; "" when there is none."""
        return _number(self.invite.from_.uri)

    @property
    def caller_name(self) -> str:
        """The From display name, its quotes and escapes taken off."""
        display = (self.invite.from_.display or "").strip()
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = re.sub(r"\\(.)", r"\1", display[1:-1])
        return display

    @property
    def dialed_number(self) -> str:
        """The user part of the Request-URI (the number dialed); "" when there is none."""
        try:
            return _number(self.invite.request_uri)  # parsed once, when the INVITE was checked
        except ParseError:
            return ""


def _number(uri: Uri) -> str:
    if uri.scheme == "tel":
        return unquote((uri.opaque or "").split(";", 1)[0])
    return unquote(uri.user or "")
