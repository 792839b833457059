"""Running a flow for one call, sans-IO: events and ``now`` in, actions and one deadline out.

The daemon (and ``ivrd simulate``) turns the actions into sound, recognizers, HTTP requests and
SIP, and feeds back what happened. The run keeps the call's path (each step, what the caller
pressed or said, what a lookup found) and its variables, as plain values for the call record
and the agent. ``now`` is wall-clock seconds (opening hours and ``now.hour`` depend on it).

Input steps follow VoiceXML: the prompt plays (a key or speech stops it when ``barge_in``),
then ``timeout`` seconds of silence is a no-input; a key or phrase that is not a choice is a
no-match; each failed try plays the matching ``noinput``/``nomatch`` message (the n-th, or the
last one again) before the prompt again; after ``tries`` failed tries the step goes to
``fallback`` (or says goodbye). Keys pressed while nothing asks for them wait for the next step
that does (type-ahead).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, assert_never
from urllib.parse import quote

from .expressions import ExpressionError
from .loader import END, Deployment, Flow
from .schema import (
    Asking,
    Branch,
    Collect,
    GoFlow,
    Goto,
    Hangup,
    Hours,
    Listen,
    Located,
    Lookup,
    Menu,
    Play,
    Prompt,
    Queue,
    Record,
    Recording,
    Return,
    Say,
    SetVariables,
    Step,
    SubFlow,
    Text,
    Transfer,
    Wait,
)

MAX_STEPS_PER_EVENT = 200  # steps run without waiting for anything: beyond this the flow is stuck
MAX_DEPTH = 8  # sub-flows within sub-flows
MAX_TYPE_AHEAD = 32
MAX_MENU_SPEECH = 10.0  # seconds a caller may talk to answer a menu
SPEECH_GRACE = 2.0  # after the longest speech, for the recognizer's final result
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@functools.lru_cache(maxsize=16)
def _clock_face(zone: dt.tzinfo, minute: int) -> dict[str, Any]:
    """The ``now`` variables in ``minute`` (since the epoch) in ``zone``: the same all the minute long (time
    zones are offsets of whole minutes), so made once a minute rather than for every call and event."""
    local = dt.datetime.fromtimestamp(minute * 60, zone)
    return {"hour": local.hour, "minute": local.minute, "weekday": DAY_NAMES[local.weekday()],
            "date": local.date().isoformat(), "time": local.strftime("%H:%M")}  # fmt: skip


# ---- what the run asks for ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sound:
    """One part of a prompt: a prompt file (a resolved path) or text to speak."""

    file: str | None = None
    text: str | None = None
    voice: str | None = None


@dataclass(frozen=True, slots=True)
class PlayPrompt:
    """Play these, in order, after anything already playing; report :class:`PromptDone`."""

    sounds: tuple[Sound, ...]
    barge_in: bool


@dataclass(frozen=True, slots=True)
class StopPrompt:
    pass


@dataclass(frozen=True, slots=True)
class StartListening:
    """Recognize speech: from ``phrases`` (free form when empty); report :class:`SpeechHeard`."""

    phrases: tuple[str, ...]
    language: str | None
    max_speech: float


@dataclass(frozen=True, slots=True)
class StopListening:
    pass


@dataclass(frozen=True, slots=True)
class Fetch:
    """An HTTP request whose JSON answer comes back as :class:`LookupDone`."""

    method: str
    url: str
    body: dict[str, Any] | None
    timeout: float


@dataclass(frozen=True, slots=True)
class StartRecording:
    """Record the caller; report :class:`RecordingDone` on silence, the longest length or :class:`StopRecording`."""

    max_seconds: float
    silence_seconds: float
    beep: bool


@dataclass(frozen=True, slots=True)
class StopRecording:
    pass


@dataclass(frozen=True, slots=True)
class TransferCall:
    """Send the call to ``uri``; on failure report :class:`TransferFailed`."""

    uri: str


@dataclass(frozen=True, slots=True)
class JoinQueue:
    """Hand the caller to a queue: report :class:`AgentConnected` when an agent takes the call, or
    :class:`QueueLeft` when the caller leaves the queue without one."""

    queue: str
    priority: int = 0
    skills: str | None = None
    callback_number: str | None = None  # where to call back (None: the caller's number)


@dataclass(frozen=True, slots=True)
class EndCall:
    pass


@dataclass(frozen=True, slots=True)
class SetRecording:
    """Silence in the call's recording from now on (``paused``), or its audio again."""

    paused: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """Something ops should know (an expression that failed on this call's values)."""

    message: str


Action = (PlayPrompt | StopPrompt | StartListening | StopListening | Fetch | StartRecording | StopRecording
          | TransferCall | JoinQueue | EndCall | Notice | SetRecording)  # fmt: skip


class ActionHandler(Protocol):
    """What carries a run's actions out, one method an action: a call, or the simulator."""

    def play_prompt(self, action: PlayPrompt) -> None: ...

    def stop_prompt(self, action: StopPrompt) -> None: ...

    def start_listening(self, action: StartListening) -> None: ...

    def stop_listening(self, action: StopListening) -> None: ...

    def fetch(self, action: Fetch) -> None: ...

    def start_recording(self, action: StartRecording) -> None: ...

    def stop_recording(self, action: StopRecording) -> None: ...

    def transfer(self, action: TransferCall) -> None: ...

    def join_queue(self, action: JoinQueue) -> None: ...

    def end_call(self, action: EndCall) -> None: ...

    def notice(self, action: Notice) -> None: ...

    def set_recording(self, action: SetRecording) -> None: ...


def carry_out(action: Action, handler: ActionHandler) -> None:
    """Hand ``action`` to the ``handler`` method for its kind (every kind has one)."""
    if isinstance(action, PlayPrompt):
        handler.play_prompt(action)
    elif isinstance(action, StopPrompt):
        handler.stop_prompt(action)
    elif isinstance(action, StartListening):
        handler.start_listening(action)
    elif isinstance(action, StopListening):
        handler.stop_listening(action)
    elif isinstance(action, Fetch):
        handler.fetch(action)
    elif isinstance(action, StartRecording):
        handler.start_recording(action)
    elif isinstance(action, StopRecording):
        handler.stop_recording(action)
    elif isinstance(action, TransferCall):
        handler.transfer(action)
    elif isinstance(action, JoinQueue):
        handler.join_queue(action)
    elif isinstance(action, EndCall):
        handler.end_call(action)
    elif isinstance(action, Notice):
        handler.notice(action)
    elif isinstance(action, SetRecording):
        handler.set_recording(action)
    else:
        assert_never(action)

# ---- what happened --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyPressed:
    key: str


@dataclass(frozen=True, slots=True)
class PromptDone:
    pass


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    pass


@dataclass(frozen=True, slots=True)
class SpeechHeard:
    text: str
    confidence: float
    alternatives: tuple[tuple[str, float], ...] = ()  # less likely readings: (text, confidence)


@dataclass(frozen=True, slots=True)
class LookupDone:
    result: Any = None  # plain JSON values
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingDone:
    path: str | None
    seconds: float


@dataclass(frozen=True, slots=True)
class TransferFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class Transferred:
    """The caller is now talking to the transfer target; this call is over."""


@dataclass(frozen=True, slots=True)
class QueueLeft:
    reason: str  # one of flows.schema.OVERFLOW_REASONS
    callback: str | None = None  # the number a callback will go to (reason "callback")


@dataclass(frozen=True, slots=True)
class AgentConnected:
    """An agent answered: the caller talks to them until one of them hangs up; the flow has done its part."""

    agent: str
    waited: float


@dataclass(frozen=True, slots=True)
class AgentDone:
    """The agent hung up while the caller stays on: the queue step's survey runs, if it names one."""

    agent: str
    queue: str


FlowEvent = (KeyPressed | PromptDone | SpeechStarted | SpeechHeard | LookupDone | RecordingDone | TransferFailed
         | Transferred | QueueLeft | AgentConnected | AgentDone)  # fmt: skip

# ---- the run --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Asking:
    """Where an input step is: its prompt, the tries so far, the keys so far."""

    phase: Literal["prompting", "waiting", "collecting", "hearing"] = "prompting"
    failures: int = 0
    noinputs: int = 0
    nomatches: int = 0
    keys: str = ""
    listening: bool = False


@dataclass(slots=True)
class _Frame:
    flow: Flow
    back_to: str | None  # the step in the calling flow to go on with (None: the top-level flow)


@dataclass(slots=True)
class CallInfo:
    """What the network says about the call."""

    call_id: str = ""
    caller: str = ""
    caller_name: str = ""
    dialed: str = ""


@dataclass
class FlowRun:
    """One call's way through a deployment's flows."""

    deployment: Deployment
    call: CallInfo
    zone: zoneinfo.ZoneInfo | dt.tzinfo = dt.UTC
    variables: dict[str, Any] = field(default_factory=dict)
    path: list[dict[str, Any]] = field(default_factory=list)
    trace: list[tuple[str, str]] | None = None  # when a list: every (flow, step) entered, in order (flow tests)
    finished: bool = False
    deadline: float | None = None
    _actions: list[Action] = field(default_factory=list)
    _stack: list[_Frame] = field(default_factory=list)
    _step: str = END
    _asking: _Asking | None = None
    _waiting_for: type | tuple[type, ...] | None = None
    _type_ahead: deque[str] = field(default_factory=deque)
    _started: float = 0.0

    # ---- driving it -------------------------------------------------------------------------------

    def start(self, now: float, flow: Flow | None = None) -> None:
        """Begin with ``flow``, or the one the deployment picks for the dialed number and caller."""
        flow = flow or self.deployment.flow_for(self.call.dialed, self.call.caller)
        self._started = now
        self.variables.update({
            "caller": {"number": self.call.caller, "name": self.call.caller_name},
            "dialed": {"number": self.call.dialed},
            "call": {"id": self.call.call_id, "flow": flow.name, "version": self.deployment.version},
        })  # fmt: skip
        self._stack = [_Frame(flow, None)]
        self._set_now(now)
        self._go(flow.start, now)

    def feed(self, event: FlowEvent, now: float) -> None:
        if self.finished:
            return
        self._set_now(now)
        if isinstance(event, KeyPressed):
            self._on_key(event.key, now)
        elif self._waiting_for is not None and isinstance(event, self._waiting_for):
            self._on_awaited(event, now)
        elif isinstance(event, SpeechStarted) and self._asking is not None:
            self._on_speech_started(now)

    def on_timer(self, now: float) -> None:
        if self.finished or self.deadline is None or now < self.deadline:
            return
        self.deadline = None
        self._set_now(now)
        step = self._current()
        if isinstance(step, Wait):
            self._continue(step.next, now)
        elif isinstance(step, Collect) and self._asking and self._asking.phase == "collecting":
            self._finish_digits(step, now)
        elif isinstance(step, Asking) and self._asking is not None:
            self._failed("nomatch" if self._asking.phase == "hearing" else "noinput", now)

    def hung_up(self, now: float, reason: str) -> None:
        """The call ended (the caller hung up, or the network did)."""
        if not self.finished:
            self._record(now, "hangup", by="caller", reason=reason)
            self.finished = True
            self.deadline = None

    def take_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    @property
    def flow(self) -> Flow:
        return self._stack[-1].flow

    @property
    def step(self) -> str:
        return self._step

    @property
    def asks_caller(self) -> bool:
        """Whether the run now waits for the caller (keys, speech, a message) rather than for time or a result."""
        return self._asking is not None or self._waiting_for is RecordingDone

    # ---- moving between steps ---------------------------------------------------------------------

    def _current(self) -> Step | None:
        found = self.flow.steps.get(self._step)
        return found.step if found else None

    def _continue(self, target: Any, now: float) -> None:
        """Go to a step's ``next`` (a Target), or the step written after it."""
        self._go(target.name if target is not None else self.flow.following[self._step], now)

    def _go(self, name: str, now: float) -> None:
        for _ in range(MAX_STEPS_PER_EVENT):
            self._asking = None
            self._waiting_for = None
            self.deadline = None
            if name == END:
                name_or_none = self._end_of_flow(now)
                if name_or_none is None:
                    return
                name = name_or_none
                continue
            self._step = name
            if self.trace is not None:
                self.trace.append((self.flow.name, name))
            next_name = self._enter(self.flow.steps[name].step, now)
            if next_name is None:
                return  # the step waits for something
            name = next_name
        self._notice(f"flow {self.flow.name}: more than {MAX_STEPS_PER_EVENT} steps without waiting "
                     f"(last: {name}); ending the call")  # fmt: skip
        self._hang_up(now, "loop")

    def _end_of_flow(self, now: float) -> str | None:
        """The flow ran out of steps: back to the calling flow, or the call ends."""
        frame = self._stack.pop()
        if not self._stack:
            self._stack.append(frame)
            self._hang_up(now, "end")
            return None
        self._record(now, "return", flow=frame.flow.name)
        return frame.back_to or END

    def _hang_up(self, now: float, reason: str) -> None:
        self._record(now, "hangup", by="flow", reason=reason)
        self._actions.append(EndCall())
        self.finished = True

    def _enter(self, step: Step, now: float) -> str | None:
        """Run ``step``; the name of the step to run next, or None when it now waits."""
        fall = self.flow.following[self._step]

        def after(target: Any) -> str:
            return str(target.name) if target is not None else fall

        if isinstance(step, (Play, Say)):
            sounds = self._sounds(step.play) if isinstance(step, Play) else self._say(step.say, step.voice)
            self._record(now, _kind(step), heard=[s.text or Path(s.file or "").name for s in sounds])
            if not sounds:
                return after(step.next)
            self._actions.append(PlayPrompt(sounds, step.barge_in))
            self._waiting_for = PromptDone
            return None
        if isinstance(step, Asking):
            self._asking = _Asking()
            self._record(now, _kind(step))
            self._ask(step, None, now)
            return None
        if isinstance(step, Recording):
            paused = step.recording == "pause"
            self._record(now, "recording", paused=paused)
            self._actions.append(SetRecording(paused))
            return after(step.next)
        if isinstance(step, SetVariables):
            values = {name: self._evaluate(cond.expression.evaluate, cond.at) for name, cond in step.set.items()}
            self.variables.update(values)
            self._record(now, "set", values=values)
            return after(step.next)
        if isinstance(step, Branch):
            for case in step.branch:
                if self._evaluate(case.condition.expression.truth, case.condition.at):
                    self._record(now, "branch", taken=case.condition.expression.source)
                    return case.goto.name
            self._record(now, "branch", taken="else")
            return after(step.otherwise)
        if isinstance(step, Goto):
            return step.goto.name
        if isinstance(step, (GoFlow, SubFlow)):
            return self._call_flow(step, now)
        if isinstance(step, Return):
            return END
        if isinstance(step, Lookup):
            return self._lookup(step, now)
        if isinstance(step, Hours):
            state = self.deployment.calendars[step.hours.name].state(now)
            self._record(now, "hours", state=state)
            if state == "open":
                return step.open.name
            return step.holiday.name if state == "holiday" and step.holiday else step.closed.name
        if isinstance(step, Record):
            self._record(now, "record")
            if step.record is not None:
                self._actions.append(PlayPrompt(self._sounds(step.record), False))
                self._waiting_for = PromptDone
            else:
                self._start_recording(step)
            return None
        if isinstance(step, Transfer):
            self._record(now, "transfer", to=step.transfer.uri)
            self._actions.append(TransferCall(step.transfer.uri))
            self._waiting_for = (TransferFailed, Transferred)
            return None
        if isinstance(step, Queue):
            priority = self._evaluate(step.priority.expression.evaluate, step.priority.at) if step.priority else 0
            if not isinstance(priority, (int, float)) or isinstance(priority, bool):
                if step.priority is not None:
                    self._notice(f"{_where(step.priority.at)}: the priority is {priority!r}, not a number; 0 is used")
                priority = 0
            skills = self._evaluate(step.skills.template.render, step.skills.at) if step.skills else None
            number = (self._evaluate(step.callback_number.template.render, step.callback_number.at)
                      if step.callback_number else None)  # fmt: skip
            self._record(now, "queue", queue=step.queue.name, priority=int(priority), skills=skills)
            self._actions.append(JoinQueue(step.queue.name, int(priority), skills or None, number or None))
            self._waiting_for = (QueueLeft, AgentConnected)
            return None
        if isinstance(step, Wait):
            self._record(now, "wait", seconds=step.wait)
            self.deadline = now + step.wait
            return None
        if isinstance(step, Hangup):
            if step.hangup is True:
                self._hang_up(now, "hangup step")
            else:
                self._record(now, "goodbye")
                self._actions.append(PlayPrompt(self._sounds(step.hangup), False))
                self._waiting_for = PromptDone
            return None
        raise AssertionError(f"unknown step {step!r}")

    def _survey(self, step: Queue, done: AgentDone, now: float) -> None:
        """The agent hung up: the caller goes on to the step's survey flow (told ``survey.agent``,
        ``survey.queue``, ``survey.call``; its answer in ``csat``), or the call is over."""
        if step.survey is None:
            self._hang_up(now, "agent")
            return
        flow = self.deployment.flows[step.survey.name]
        call = self.variables.get("call")
        self.variables["survey"] = {"agent": done.agent, "queue": done.queue,
                                    "call": call.get("id") if isinstance(call, dict) else None}  # fmt: skip
        self._record(now, "survey", to=flow.name, agent=done.agent)
        self._stack = [_Frame(flow, None)]
        self._go(flow.start, now)

    def _call_flow(self, step: GoFlow | SubFlow, now: float) -> str | None:
        target = step.flow if isinstance(step, GoFlow) else step.subflow
        flow = self.deployment.flows[target.name]
        values = {name: self._evaluate(c.expression.evaluate, c.at) for name, c in step.arguments.items()}
        self.variables.update(values)
        self._record(now, "flow" if isinstance(step, GoFlow) else "subflow", to=flow.name, arguments=values)
        if isinstance(step, GoFlow):
            self._stack[-1] = _Frame(flow, self._stack[-1].back_to)
        elif len(self._stack) >= MAX_DEPTH:
            self._notice(f"flow {self.flow.name}: sub-flows nested deeper than {MAX_DEPTH}; ending the call")
            self._hang_up(now, "depth")
            return None
        else:
            back = step.next.name if step.next else self.flow.following[self._step]
            self._stack.append(_Frame(flow, back))
        return flow.start

    # ---- events -----------------------------------------------------------------------------------

    def _on_awaited(self, event: FlowEvent, now: float) -> None:
        step = self._current()
        self._waiting_for = None
        if isinstance(step, (Play, Say)):
            self._continue(step.next, now)
        elif isinstance(step, Hangup):
            self._hang_up(now, "hangup step")
        elif isinstance(step, Asking) and isinstance(event, PromptDone):
            self._prompt_finished(step, now)
        elif isinstance(step, Asking) and isinstance(event, SpeechHeard):
            self._heard(step, event, now)
        elif isinstance(step, Lookup) and isinstance(event, LookupDone):
            self._looked_up(step, event, now)
        elif isinstance(step, Record) and isinstance(event, PromptDone):
            self._start_recording(step)
        elif isinstance(step, Record) and isinstance(event, RecordingDone):
            if step.into is not None:
                self.variables[step.into.name] = event.path
            self._record(now, "recorded", file=event.path, seconds=round(event.seconds, 2))
            self._continue(step.next, now)
        elif isinstance(step, Transfer) and isinstance(event, Transferred):
            self._record(now, "transferred")
            self._hang_up(now, "transferred")
        elif isinstance(step, Transfer) and isinstance(event, TransferFailed):
            self._record(now, "transfer_failed", reason=event.reason)
            self._continue(step.next, now)
        elif isinstance(step, Queue) and isinstance(event, QueueLeft):
            self._record(now, "queue_left", reason=event.reason, callback=event.callback)
            self._continue(step.left.get(event.reason, step.next), now)
        elif isinstance(step, Queue) and isinstance(event, AgentConnected):
            self._record(now, "agent", agent=event.agent, waited=round(event.waited, 1))
            self._waiting_for = AgentDone  # the caller talks to the agent until one of them hangs up
        elif isinstance(step, Queue) and isinstance(event, AgentDone):
            self._survey(step, event, now)

    def _on_key(self, key: str, now: float) -> None:
        step = self._current()
        asking = self._asking
        if isinstance(step, (Menu, Collect)) and asking is not None:
            if asking.phase == "prompting":
                if not step.barge_in:
                    return  # VoiceXML: input during a prompt that cannot be interrupted is dropped
                self._actions.append(StopPrompt())
            self._take_key(step, key, now)
        elif isinstance(step, Record) and self._waiting_for is RecordingDone:
            self._actions.append(StopRecording())
        elif isinstance(step, (Play, Say)) and step.barge_in and self._waiting_for is PromptDone:
            self._actions.append(StopPrompt())
            self._keep(key)
            self._waiting_for = None
            self._continue(step.next, now)
        else:
            self._keep(key)

    def _keep(self, key: str) -> None:
        if len(self._type_ahead) < MAX_TYPE_AHEAD:
            self._type_ahead.append(key)

    def _on_speech_started(self, now: float) -> None:
        step = self._current()
        asking = self._asking
        if not isinstance(step, (Menu, Listen)) or asking is None:
            return
        if asking.phase == "prompting" and step.barge_in:
            self._actions.append(StopPrompt())
        if asking.phase in ("prompting", "waiting") and (asking.phase == "waiting" or step.barge_in):
            asking.phase = "hearing"
            self._waiting_for = SpeechHeard
            self.deadline = now + (step.max_speech if isinstance(step, Listen) else MAX_MENU_SPEECH) + SPEECH_GRACE

    # ---- input steps ------------------------------------------------------------------------------

    def _ask(self, step: Asking, message: Prompt | None, now: float) -> None:
        """Start a try: take type-ahead keys, or play the (re)prompt and listen."""
        asking = self._asking
        assert asking is not None
        asking.phase = "prompting"
        asking.keys = ""
        if isinstance(step, (Menu, Collect)) and self._type_ahead:
            failures = asking.failures
            while self._type_ahead and self._asking is asking and asking.failures == failures:
                self._take_key(step, self._type_ahead.popleft(), now)
            if self._asking is not asking or asking.failures != failures or asking.phase != "prompting":
                return  # the keys answered, or failed (that try has played its own prompt), or digits go on
        prompt = _prompt_of(step)
        sounds = (self._sounds(message) if message else ()) + (self._sounds(prompt) if prompt else ())
        if sounds:
            self._actions.append(PlayPrompt(sounds, step.barge_in))
            self._waiting_for = (PromptDone, SpeechHeard)
            if step.barge_in:
                self._listen(step)
        else:
            self._prompt_finished(step, now)

    def _prompt_finished(self, step: Asking, now: float) -> None:
        asking = self._asking
        if asking is None or asking.phase != "prompting":
            return
        asking.phase = "waiting"
        self._waiting_for = SpeechHeard
        self.deadline = now + step.timeout
        self._listen(step)

    def _take_key(self, step: Menu | Collect, key: str, now: float) -> None:
        asking = self._asking
        assert asking is not None
        if isinstance(step, Menu):
            self._stop_listening(step)
            choice = next((c for c in step.choices if c.key is not None and c.key.key == key), None)
            if choice is None:
                self._failed("nomatch", now, key=key)
                return
            self.variables["menu"] = key
            self._record(now, "choice", key=key, goto=choice.goto.name)
            self._go(choice.goto.name, now)
            return
        if step.terminator is not None and key == step.terminator.key:
            self._finish_digits(step, now)
            return
        asking.keys += key
        if len(asking.keys) >= step.max_digits:
            self._finish_digits(step, now)
            return
        asking.phase = "collecting"
        self._waiting_for = None
        self.deadline = now + step.digit_timeout

    def _finish_digits(self, step: Collect, now: float) -> None:
        asking = self._asking
        assert asking is not None and step.into is not None
        digits = asking.keys
        if not digits:
            self._failed("noinput", now)
            return
        if len(digits) < step.min_digits or (step.pattern is not None and not step.pattern.regex.fullmatch(digits)):
            self._failed("nomatch", now, digits=digits)
            return
        self.variables[step.into.name] = digits
        self.variables["digits"] = digits
        self._record(now, "digits", digits=digits)
        self._continue(step.next, now)

    def _heard(self, step: Asking, heard: SpeechHeard, now: float) -> None:
        text = _normal(heard.text)
        self._waiting_for = None
        if not text:  # heard someone, understood nothing: a no-match; heard nobody: a no-input
            asking = self._asking
            self._failed("nomatch" if asking is not None and asking.phase == "hearing" else "noinput", now)
            return
        self.variables["speech"] = {"text": heard.text, "confidence": heard.confidence,
                                    "alternatives": [{"text": t, "confidence": c} for t, c in heard.alternatives]}
        if isinstance(step, Menu):
            choice = next((c for c in step.choices if text in {_normal(p) for p in c.say}), None)
            if choice is None or heard.confidence < step.confidence:
                self._failed("nomatch", now, **_said(heard))
                return
            self.variables["menu"] = choice.say[0]
            self._record(now, "choice", **_said(heard), goto=choice.goto.name)
            self._go(choice.goto.name, now)
        elif isinstance(step, Listen):
            matched = not step.phrases or text in {_normal(p) for p in step.phrases}
            if not matched or heard.confidence < step.confidence:
                self._failed("nomatch", now, **_said(heard))
                return
            assert step.into is not None
            self.variables[step.into.name] = heard.text
            self._record(now, "speech", **_said(heard))
            self._continue(step.next, now)

    def _failed(self, what: Literal["noinput", "nomatch"], now: float, **details: Any) -> None:
        step = self._current()
        asking = self._asking
        assert isinstance(step, Asking) and asking is not None
        self._stop_listening(step)
        asking.failures += 1
        if what == "noinput":
            asking.noinputs += 1
            count = asking.noinputs
        else:
            asking.nomatches += 1
            count = asking.nomatches
        self._record(now, what, count=count, **details)
        if asking.failures >= step.tries:
            self._record(now, "fallback", goto=step.fallback.name if step.fallback else None)
            if step.fallback is not None:
                self._go(step.fallback.name, now)
            else:
                self._hang_up(now, "no input" if what == "noinput" else "no match")
            return
        messages = step.noinput if what == "noinput" else step.nomatch
        message = messages[min(count, len(messages)) - 1] if messages else None
        self._type_ahead.clear()  # keys after a no-match would be answered against a prompt not heard
        self._ask(step, message, now)

    def _listen(self, step: Asking) -> None:
        asking = self._asking
        assert asking is not None
        if asking.listening:
            return
        if isinstance(step, Listen) or (isinstance(step, Menu) and any(c.say for c in step.choices)):
            phrases = step.phrases if isinstance(step, Listen) else tuple(p for c in step.choices for p in c.say)
            max_speech = step.max_speech if isinstance(step, Listen) else MAX_MENU_SPEECH
            self._actions.append(StartListening(phrases, step.language, max_speech))
            asking.listening = True

    def _stop_listening(self, step: Step) -> None:
        if self._asking is not None and self._asking.listening:
            self._actions.append(StopListening())
            self._asking.listening = False

    # ---- other steps ------------------------------------------------------------------------------

    def _lookup(self, step: Lookup, now: float) -> str | None:
        try:
            url = step.lookup.template.render(self.variables, escape=lambda v: quote(v, safe=""))
            body = {k: c.expression.evaluate(self.variables) for k, c in (step.body or {}).items()} or None
        except ExpressionError as exc:
            self._notice(f"{_where(step.lookup.at)}: {exc.message}")
            return self._looked_up(step, LookupDone(error=f"expression: {exc.message}"), now, waiting=False)
        if not re.match(r"^https?://", url):
            return self._looked_up(step, LookupDone(error=f"not an http(s) URL: {url!r}"), now, waiting=False)
        self._record(now, "lookup", url=url)
        self._actions.append(Fetch(step.method, url, body, step.timeout))
        self._waiting_for = LookupDone
        return None

    def _looked_up(self, step: Lookup, done: LookupDone, now: float, *, waiting: bool = True) -> str | None:
        ok = done.error is None
        self.variables[step.into.name] = done.result if ok else None
        self.variables["lookup"] = done.result if ok else None
        self._record(now, "lookup_result", ok=ok, result=done.result if ok else None, error=done.error)
        target = step.next if ok or step.on_failure is None else step.on_failure
        if not waiting:
            return target.name if target is not None else self.flow.following[self._step]
        self._continue(target, now)
        return None

    def _start_recording(self, step: Record) -> None:
        self._actions.append(StartRecording(step.max_seconds, step.silence_seconds, step.beep))
        self._waiting_for = RecordingDone

    # ---- values -----------------------------------------------------------------------------------

    def _set_now(self, now: float) -> None:
        self.variables["now"] = dict(_clock_face(self.zone, int(now // 60)))

    def _evaluate(self, function: Any, at: Located) -> Any:
        try:
            return function(self.variables)
        except ExpressionError as exc:
            self._notice(f"{_where(at)}: {exc.message}")
            return None

    def _say(self, text: Text, voice: str | None) -> tuple[Sound, ...]:
        try:
            return (Sound(text=text.template.render(self.variables), voice=voice),)
        except ExpressionError as exc:
            self._notice(f"{_where(text.at)}: {exc.message}")
            return ()

    def _sounds(self, prompt: Prompt) -> tuple[Sound, ...]:
        sounds: list[Sound] = []
        for part in prompt.parts:
            if part.play is not None:
                sounds.append(Sound(file=str(self.flow.directory / part.play)))  # loaded with the flows, by this name
            elif part.say is not None:
                sounds.extend(self._say(part.say, None))
        return tuple(sounds)

    def _notice(self, message: str) -> None:
        self._actions.append(Notice(message))

    def _record(self, now: float, what: str, **details: Any) -> None:
        entry = {"at": round(now - self._started, 3), "flow": self.flow.name, "step": self._step, "event": what}
        entry.update({k: v for k, v in details.items() if v is not None})
        self.path.append(entry)


def _said(heard: SpeechHeard) -> dict[str, Any]:
    """What the path keeps of an answer heard: the words, their confidence, the other readings (n-best)."""
    return {"said": heard.text, "confidence": heard.confidence,
            "alternatives": [text for text, _ in heard.alternatives] or None}  # fmt: skip


def _kind(step: Step) -> str:
    return type(step).__name__.lower()


def _prompt_of(step: Asking) -> Prompt | None:
    if isinstance(step, Menu):
        return step.menu
    if isinstance(step, Collect):
        return step.collect
    if isinstance(step, Listen):
        return step.listen
    return None


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _where(at: Located) -> str:
    return f"{at.file}:{at.line}:{at.column}"


def summary(run: FlowRun) -> Mapping[str, Any]:
    """The run as plain values, for the call record and the agent."""
    user = {k: v for k, v in run.variables.items() if k not in ("now",)}
    return {"flow": run.flow.name, "version": run.deployment.version, "path": run.path, "variables": user}
