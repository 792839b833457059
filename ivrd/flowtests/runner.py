"""Run a flow test: the daemon's own flow engine driven by the case's script on a simulated clock.

Prompts finish at once, pauses and timeouts move the clock to their deadline, lookups are
answered from the case's fixtures only (a URL without one fails, as an unreachable service would),
a voicemail message is left as soon as it is asked for, a transfer succeeds unless the script says
``transfer_fails``, and a queue holds the caller until the script says ``agent`` or ``leave_queue``.
When the script runs out while the flow waits for the caller, the caller hangs up; while the caller
waits in a queue, the call ends there (the end a test of a queue step checks).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.interpreter import (
    AgentConnected,
    AgentDone,
    CallInfo,
    EndCall,
    Fetch,
    FlowEvent,
    FlowRun,
    JoinQueue,
    KeyPressed,
    Notice,
    PlayPrompt,
    PromptDone,
    QueueLeft,
    RecordingDone,
    SetRecording,
    SpeechHeard,
    SpeechStarted,
    StartListening,
    StartRecording,
    StopListening,
    StopPrompt,
    StopRecording,
    TransferCall,
    TransferFailed,
    Transferred,
    carry_out,
)
from flows.loader import Deployment

from ..call import LOCAL_ZONE
from ..simulate import SIMULATED_MESSAGE_SECONDS, fixture_answer
from .cases import Case, ScriptLine

MAX_ROUNDS = 10_000  # a flow that never waits for the caller (prompts in a loop) is stopped here
SCRIPT_STEP_SECONDS = 1.0  # the clock moves this much for each thing the caller does


@dataclass
class Outcome:
    """What happened on a test's call."""

    heard: list[str] = field(default_factory=list)  # prompt file names and spoken texts, in order
    steps: list[tuple[str, str]] = field(default_factory=list)  # (flow, step) entered, in order
    variables: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    trouble: list[tuple[int, str]] = field(default_factory=list)  # (line, what): the script did not fit


class ScriptedCall:
    """One case's call: carries out the run's actions (a flows.interpreter.ActionHandler) and plays the script."""

    def __init__(self, deployment: Deployment, case: Case, now: float) -> None:
        self.case = case
        self.outcome = Outcome()
        info = CallInfo(f"test-{case.name}", case.caller, "", case.dialed)
        self.run = FlowRun(deployment, info, zone=LOCAL_ZONE, trace=self.outcome.steps)
        self.flow = deployment.flows[case.flow] if case.flow else None
        self.now = case.at if case.at is not None else now
        self.script: deque[ScriptLine] = deque(case.spec.script)
        self.pending: deque[FlowEvent] = deque()
        self.queued: JoinQueue | None = None
        self.agent: str | None = None
        self.transferring: str | None = None
        self.recorded = False

    def play(self) -> Outcome:
        run = self.run
        run.start(self.now, self.flow)
        for _ in range(MAX_ROUNDS):
            for action in run.take_actions():
                carry_out(action, self)
            if run.finished:
                break
            if self.pending:
                run.feed(self.pending.popleft(), self.now)
            elif self.transferring is not None:
                self._transfer_outcome()
            elif self.queued is None and not run.asks_caller and run.deadline is not None:
                self.now = run.deadline  # a pause, or digits' end: no caller needed
                run.on_timer(self.now)
            elif not self.script:
                if self.queued is None:
                    self._end(hangup="caller")
                    run.hung_up(self.now, "caller")
                break
            else:
                self._caller_turn(self.script.popleft())
        else:
            self.outcome.trouble.append((self.case.line, f"the flow did not wait for the caller in {MAX_ROUNDS} "
                                                         f"rounds (last step {run.flow.name}.{run.step})"))  # fmt: skip
        if self.script:
            left = self.script[0]
            self.outcome.trouble.append((left.line, f"the call was over (at {run.flow.name}.{run.step}) before this "
                                                    f"script line ({len(self.script)} left)"))  # fmt: skip
        self.outcome.variables = {k: v for k, v in run.variables.items() if k != "now"}
        return self.outcome

    def _caller_turn(self, line: ScriptLine) -> None:
        run = self.run
        self.now += SCRIPT_STEP_SECONDS
        waiting = f"the caller waits in queue {self.queued.queue}" if self.queued else None
        if line.kind in ("agent", "agent_hangs_up", "leave_queue"):
            if self.queued is None:
                self._misfit(line, f"the flow waits at {run.flow.name}.{run.step}, not in a queue")
            elif line.kind == "agent":
                self.agent = line.value
                run.feed(AgentConnected(line.value, SCRIPT_STEP_SECONDS), self.now)
            elif line.kind == "agent_hangs_up":
                if self.agent is None:
                    self._misfit(line, "no agent has the call (agent: first)")
                else:
                    agent, queue = self.agent, self.queued.queue
                    self._leave_queue()
                    run.feed(AgentDone(agent, queue), self.now)
            else:
                self._leave_queue()
                run.feed(QueueLeft(line.value, self.run.call.caller if line.value == "callback" else None), self.now)
        elif waiting is not None and line.kind != "hangup":
            self._misfit(line, f"{waiting} (expected agent, leave_queue or hangup)")
        elif line.kind == "transfer_fails":
            self._misfit(line, f"no transfer is under way (the flow is at {run.flow.name}.{run.step})")
        elif line.kind == "hangup":  # in a queue too: the caller gave up waiting
            self.outcome.end = {"hangup": "caller"}
            run.hung_up(self.now, "caller")
        elif line.kind == "silence":
            if run.deadline is not None:
                self.now = max(self.now, run.deadline)
                run.on_timer(self.now)
        elif line.kind == "say":
            run.feed(SpeechStarted(), self.now)
            run.feed(SpeechHeard(line.value, line.confidence), self.now)
        else:
            for key in line.value:
                run.feed(KeyPressed(key), self.now)

    def _leave_queue(self) -> None:
        self.queued = None
        self.agent = None
        self.outcome.end = {}

    def _transfer_outcome(self) -> None:
        uri, self.transferring = self.transferring, None
        if self.script and self.script[0].kind == "transfer_fails":
            self.run.feed(TransferFailed(self.script.popleft().value), self.now)
        else:
            self._end(transfer=uri)
            self.run.feed(Transferred(), self.now)

    def _misfit(self, line: ScriptLine, why: str) -> None:
        self.outcome.trouble.append((line.line, f"{line.kind}: {why}"))

    def _end(self, **how: Any) -> None:
        if not self.outcome.end:
            self.outcome.end = how

    # ---- the run's actions ---------------------------------------------------------------------

    def play_prompt(self, action: PlayPrompt) -> None:
        self.outcome.heard.extend(Path(s.file).name if s.file else s.text or "" for s in action.sounds)
        self.pending.append(PromptDone())

    def stop_prompt(self, action: StopPrompt) -> None:
        pass  # prompts are over as soon as they are asked for

    def start_listening(self, action: StartListening) -> None:
        pass  # what the caller says comes from the script

    def stop_listening(self, action: StopListening) -> None:
        pass

    def fetch(self, action: Fetch) -> None:
        self.pending.append(fixture_answer(self.case.fixtures, action))

    def start_recording(self, action: StartRecording) -> None:
        self.recorded = True
        self.pending.append(RecordingDone(f"{self.case.name}.wav", SIMULATED_MESSAGE_SECONDS))

    def stop_recording(self, action: StopRecording) -> None:
        pass

    def transfer(self, action: TransferCall) -> None:
        self.transferring = action.uri

    def join_queue(self, action: JoinQueue) -> None:
        self.queued = action
        self.outcome.end = {"queue": action.queue, "skills": action.skills, "priority": action.priority}

    def end_call(self, action: EndCall) -> None:
        self._end(voicemail=True) if self.recorded else self._end(hangup="flow")

    def set_recording(self, action: SetRecording) -> None:
        pass

    def notice(self, action: Notice) -> None:
        self.outcome.notices.append(action.message)


def play(deployment: Deployment, case: Case, now: float) -> Outcome:
    """Run ``case`` against ``deployment``; ``now`` is when the call comes unless the case says ``at``."""
    return ScriptedCall(deployment, case, now).play()
