"""What the center's rooms share: the caller as the center sees it, a caller's place in line, the
clock it runs on, and where agents' desktops are told what happens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flows.interpreter import AgentConnected, Notice, QueueLeft

from ..media.player import Clip
from ..media.rtp_session import RtpSession

if TYPE_CHECKING:
    from ..webrtc.leg import BrowserLeg


class Timer(Protocol):
    def cancel(self) -> None: ...

    def when(self) -> float: ...


class Clock(Protocol):
    """The event loop's clock and timers (a fake one in unit tests)."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> Timer: ...

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer: ...


class Caller(Protocol):
    """A call in the center's hands: who it is, and how the center tells it what happens."""

    @property
    def id(self) -> str: ...

    @property
    def call_id(self) -> str: ...

    @property
    def number(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def dialed(self) -> str: ...

    def context(self) -> dict[str, object]:
        """What the agent should know of the call."""

    def queue_event(self, happened: QueueLeft | AgentConnected) -> None:
        """The caller left the queue without an agent, or an agent took them."""

    def hold(self, music: Clip | None) -> None:
        """Loop ``music`` while they wait (None: stop)."""

    def announce(self, text: str) -> None:
        """Say ``text`` over the hold music."""

    def notice(self, notice: Notice) -> None:
        """A problem of the flow's making, for the log."""

    def bridge(self, media: RtpSession) -> RtpSession | None:
        """Hear ``media`` both ways from now on; the caller's own session, or None when it has none."""

    def agent_gone(self, talk: float, hold: float, wrap_up: float) -> None:
        """The agent's call ended: the call is over for the caller too."""

    def pause_recording(self, paused: bool) -> bool:
        """Silence in the call's recording from now on, or the audio again (False: not recorded, or no change)."""


class Desktops(Protocol):
    """Where agents' desktops hear of offers and calls (the HTTP server's WebSockets)."""

    def push(self, agent_id: str, what: str, context: dict[str, object]) -> None: ...


class BrowserDesks(Protocol):
    """The agents' desks (/desk) as phones: for agents whose contact is ``browser``."""

    def is_open(self, agent_id: str) -> bool:
        """Whether the agent has a desk open (their phone is reachable)."""

    def ring(self, agent_id: str, caller: Caller) -> BrowserLeg | None:
        """Ring the agent's open desk for ``caller``; None when they have none open."""

    def closed(self, leg: BrowserLeg) -> None:
        """``leg`` ended: its media's counts are kept."""


@dataclass(eq=False)
class Waiting:
    """A caller's place in a queue's line (kept, for a callback, after they hung up)."""

    caller: Caller
    queue: str
    priority: int
    joined: float
    announcer: Timer | None = None
    offer: Any = None  # the AgentCall ringing for them, if any
    callback: str | None = None  # the number to call back, once the caller asked for it
    skills: str | None = None  # the caller's own skills expression, if the flow gave one
    callback_from: str | None = None  # the number a flow gave for callbacks (None: the caller's own)
    attempts: int = 0  # calls back placed so far
