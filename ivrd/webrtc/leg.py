"""An offer to an agent whose phone is their browser, and the call once they take it.

The leg rings on the agent's desk (the page is told, with the caller's context); the agent accepts
with their browser's SDP offer, or lets it pass; the center ends it when nobody answers in time or
the caller hangs up; the agent hangs up from the page. Whatever ends it, ``on_ended`` says why, once.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Callable
from typing import Any

from ..logs import event
from ..media.rtp_session import RtpSession
from ..tasks import TaskSet
from .peer import BrowserPeer, WebRtcError

log = logging.getLogger("ivrd.webrtc")

Tell = Callable[[dict[str, Any]], None]  # a message to the agent's desk pages


class LegState(enum.Enum):
    RINGING = "ringing"
    CONNECTING = "connecting"  # accepted: ICE and DTLS under way
    UP = "up"
    ENDED = "ended"


class BrowserLeg:
    """See the module docstring. ``make_peer(on_up, on_gone)`` builds the leg's :class:`BrowserPeer` when
    the agent accepts; ``tell`` reaches the agent's pages; ``on_answered`` and ``on_ended(reason)`` are
    the center's."""

    def __init__(self, agent: str, *, make_peer: Callable[[Callable[[], None], Callable[[str], None]], BrowserPeer],
                 tell: Tell, tasks: TaskSet) -> None:  # fmt: skip
        self.id = secrets.token_urlsafe(12)
        self.agent = agent
        self.state = LegState.RINGING
        self.peer: BrowserPeer | None = None
        self.held = False
        self.on_answered: Callable[[], None] = lambda: None
        self.on_ended: Callable[[str], None] = lambda _: None
        self._make_peer = make_peer
        self._tell = tell
        self._tasks = tasks

    # what the center reads of any agent's leg
    @property
    def call_id(self) -> str:
        return f"browser-{self.id}"

    @property
    def media(self) -> RtpSession | None:
        return self.peer.session if self.peer is not None and self.state is LegState.UP else None

    @property
    def ended(self) -> bool:
        return self.state is LegState.ENDED

    final_status = None  # a SIP leg's final response when it failed; a browser leg has none

    # ---- the agent's page ---------------------------------------------------------------------------

    async def accept(self, offer: str) -> str:
        """The agent takes the call: the answer to their browser's ``offer`` (raises :class:`WebRtcError`)."""
        if self.state is not LegState.RINGING:
            raise WebRtcError(f"the call is {self.state.value}, not ringing")
        self.state = LegState.CONNECTING
        self.peer = self._make_peer(self._up, self._lost)
        try:
            return await self.peer.answer(offer)
        except WebRtcError:
            self._end("failed")
            raise

    def decline(self) -> None:
        """The agent let it pass: a miss, as on a phone."""
        if self.state is LegState.RINGING:
            self._end("declined")

    def agent_hung_up(self) -> None:
        if self.state is not LegState.ENDED:
            self._end("agent")

    # ---- the center -------------------------------------------------------------------------------

    def hang_up(self) -> None:
        """Stop it ringing (no answer in time, the caller left), or end the call (the caller hung up)."""
        if self.state is not LegState.ENDED:
            self._end("timeout" if self.state is not LegState.UP else "caller")

    # ---- inside ---------------------------------------------------------------------------------

    def _up(self) -> None:
        if self.state is LegState.CONNECTING:
            self.state = LegState.UP
            self.on_answered()

    def _lost(self, reason: str) -> None:
        if self.state is not LegState.ENDED:
            event(log, "webrtc.lost", logging.WARNING, agent=self.agent, leg=self.id, reason=reason)
            self._end("lost")

    def _end(self, reason: str) -> None:
        self.state = LegState.ENDED
        self._tell({"type": "ended", "leg": self.id, "reason": reason})
        if self.peer is not None:
            self._tasks.spawn(self.peer.close())
        self.on_ended(reason)
