"""Stand-ins for what the contact center talks to: a clock to turn by hand, legs placed nowhere, callers
that write down what they are told."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

from flows.interpreter import AgentConnected, Notice, QueueLeft
from ivrd.center.center import ContactCenter
from ivrd.config import HttpConfig, RoutingConfig
from ivrd.metrics import Metrics
from ivrd.sip.events import CallAnswered, CallEnded, CallRinging


@dataclass(eq=False)
class FakeTimer:
    deadline: float
    callback: Any
    args: tuple[Any, ...]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True

    def when(self) -> float:
        return self.deadline


class FakeClock:
    """The loop's clock and timers, turned by :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any, *args: Any) -> FakeTimer:
        timer = FakeTimer(when, callback, args)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def call_later(self, delay: float, callback: Any, *args: Any) -> FakeTimer:
        return self.call_at(self.now + delay, callback, *args)

    def advance(self, to: float) -> None:
        """Run every timer due by ``to``, in order, each at its own time."""
        while self._timers and self._timers[0][0] <= to:
            when, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self.now = max(self.now, when)
                timer.callback(*timer.args)
        self.now = to


@dataclass(eq=False)
class FakeMedia:
    codec: str = "PCMU"
    bridged_to: Any = None
    started: bool = True

    @property
    def player(self) -> Any:
        return self

    def stop(self) -> None:
        pass

    def unbridge(self) -> None:
        if self.bridged_to is not None:
            self.bridged_to.bridged_to = None
        self.bridged_to = None

    def summary(self) -> dict[str, object]:
        return {}


@dataclass(eq=False)
class FakeLeg:
    """A call the center placed: where to, and what became of it."""

    to: str
    caller: str
    extra: tuple[tuple[str, str], ...]
    call_id: str
    on_event: Any = None
    on_digit: Any = None  # what the center asked to be told of the agent's keys
    media: FakeMedia | None = None
    ended: bool = False
    confirmed: bool = False
    final_status: int | None = None
    hung_up: bool = False
    said: list[str] = field(default_factory=list)

    # what the far end does
    def rings(self) -> None:
        self.on_event(CallRinging(self))  # type: ignore[arg-type]

    def answers(self) -> None:
        self.confirmed = True
        self.on_event(CallAnswered(self))  # type: ignore[arg-type]

    def ends(self, reason: str, status: int | None = None) -> None:
        self.ended, self.confirmed, self.final_status = True, False, status
        self.on_event(CallEnded(self, reason))  # type: ignore[arg-type]


class FakeDialer:
    """Places legs nowhere; ``unreachable``: agents with no phone."""

    def __init__(self) -> None:
        self.placed: list[FakeLeg] = []
        self.unreachable: set[str] = set()
        self._ids = itertools.count(1)

    def reach(self, agent: Any) -> str | None:
        return None if agent.id in self.unreachable else f"sip:{agent.id}@phones"

    def route(self, target: str) -> str | None:
        return target

    def place(self, route: str, *, caller: str, caller_name: str, extra: tuple[tuple[str, str], ...] = ()) -> FakeLeg:
        leg = FakeLeg(route, caller, extra, f"placed-{next(self._ids)}")
        self.placed.append(leg)
        return leg

    def hang_up(self, placed: FakeLeg) -> None:
        placed.hung_up = True

    def open_media(self, placed: FakeLeg, on_digit: Any = None) -> FakeMedia:
        placed.media = FakeMedia()
        placed.on_digit = on_digit
        return placed.media

    def close(self, placed: FakeLeg) -> None:
        pass

    def say(self, placed: FakeLeg, text: str) -> None:
        placed.said.append(text)

    @staticmethod
    def bridge(one: FakeMedia, other: FakeMedia) -> None:
        one.bridged_to, other.bridged_to = other, one

    def ringing(self) -> list[FakeLeg]:
        return [leg for leg in self.placed if not leg.ended]


class FakeCaller:
    """A call in a queue, writing down what the center tells it."""

    def __init__(self, caller_id: str, number: str = "+4930123456") -> None:
        self.id = caller_id
        self.call_id = f"call-{caller_id}"
        self.number = number
        self.name = caller_id.title()
        self.dialed = "100"
        self.events: list[QueueLeft | AgentConnected] = []
        self.heard: list[str] = []
        self.music: list[object] = []
        self.notices: list[Notice] = []
        self.media = FakeMedia()
        self.gone: tuple[float, float, float] | None = None
        self.recording_paused = False

    def context(self) -> dict[str, object]:
        return {"id": self.id}

    def queue_event(self, happened: QueueLeft | AgentConnected) -> None:
        self.events.append(happened)

    def hold(self, music: object) -> None:
        self.music.append(music)

    def announce(self, text: str) -> None:
        self.heard.append(text)

    def notice(self, notice: Notice) -> None:
        self.notices.append(notice)

    def bridge(self, media: FakeMedia) -> FakeMedia:
        self.media.bridged_to, media.bridged_to = media, self.media
        return self.media

    def agent_gone(self, talk: float, hold: float, wrap_up: float) -> None:
        self.gone = (talk, hold, wrap_up)

    def pause_recording(self, paused: bool) -> bool:
        changed = paused != self.recording_paused
        self.recording_paused = paused
        return changed


class FakeDesktops:
    def __init__(self) -> None:
        self.pushed: list[tuple[str, str]] = []

    def push(self, agent_id: str, what: str, context: dict[str, object]) -> None:
        self.pushed.append((agent_id, what))


class FakeRecords:
    def __init__(self) -> None:
        self.added: list[Any] = []
        self.noted: list[Any] = []

    def add(self, record: Any) -> None:
        self.added.append(record)

    def annotate(self, wrap_up: Any) -> None:
        self.noted.append(wrap_up)


@dataclass
class Center:
    """A contact center wired to fakes, and the fakes."""

    center: ContactCenter
    clock: FakeClock
    dialer: FakeDialer
    desktops: FakeDesktops
    records: FakeRecords
    metrics: Metrics

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def make_center(routing: RoutingConfig) -> Center:
    clock, dialer, desktops, records = FakeClock(), FakeDialer(), FakeDesktops(), FakeRecords()
    metrics = Metrics(routing)
    center = ContactCenter(routing, HttpConfig(), clock=clock, dialer=dialer, metrics=metrics,  # type: ignore[arg-type]
                           desktops=desktops, records=records, hold_music={})  # type: ignore[arg-type]
    return Center(center, clock, dialer, desktops, records, metrics)
