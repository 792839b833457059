"""``ivrd simulate``: walk through a flow in a terminal, with the daemon's own flow engine.

What the caller would hear is printed; a typed line of keys (``12#``) is pressed, a line
starting with ``say`` (``say billing``) is spoken, an empty line lets the time run out, and the
end of input hangs up. Lookups go to the network unless ``--fixtures`` gives their answers.
At the end the path and the variables are printed as JSON, as a call record would hold them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from flows.interpreter import (
    CallInfo,
    EndCall,
    Fetch,
    FlowEvent,
    FlowRun,
    JoinQueue,
    KeyPressed,
    LookupDone,
    Notice,
    PlayPrompt,
    PromptDone,
    QueueLeft,
    RecordingDone,
    SetRecording,
    SpeechHeard,
    StartListening,
    StartRecording,
    StopListening,
    StopPrompt,
    StopRecording,
    TransferCall,
    carry_out,
    summary,
)
from flows.loader import Deployment
from flows.schema import DTMF_KEYS

from .call import LOCAL_ZONE
from .lookup import Lookups
from .yaml_loader import ConfigError, Problem, StrictLoader, compose_file

SIMULATED_MESSAGE_SECONDS = 3.0


def load_fixtures(path: Path) -> dict[str, Any]:
    """Lookup answers by URL (or URL prefix); ``{error: reason}`` makes that lookup fail."""
    problems: list[Problem] = []
    node = compose_file(path, problems)
    if node is None or not isinstance(node, yaml.MappingNode):
        problems.append(Problem(str(path), 1, 1, "expected a mapping of URLs to answers"))
    if problems:
        raise ConfigError(problems)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)
    return {str(k): v for k, v in data.items()}


class Simulation:
    def __init__(self, deployment: Deployment, flow: str, info: CallInfo, *, fixtures: dict[str, Any] | None,
                 out: TextIO, read_line: Callable[[], Awaitable[str]], at: float | None = None) -> None:  # fmt: skip
        """``at``: when the call comes (default: now); the flow's clock runs from there."""
        self.run = FlowRun(deployment, info, zone=LOCAL_ZONE)
        self.flow = deployment.flows[flow]
        self.fixtures = fixtures
        self.out = out
        self.read_line = read_line
        self.now = time.time() if at is None else at
        self.pending: deque[FlowEvent] = deque()
        self.fetching: deque[Fetch] = deque()
        self.lookups = Lookups(1 << 20)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def main(self) -> None:
        run = self.run
        run.start(self.now, self.flow)
        try:
            while True:
                for action in run.take_actions():
                    carry_out(action, self)
                while self.fetching:
                    self.pending.append(await self._look_up(self.fetching.popleft()))
                if run.finished:
                    break
                if self.pending:
                    run.feed(self.pending.popleft(), self.now)
                    continue
                if not run.asks_caller and run.deadline is not None:  # a pause: let the time pass
                    self.now = run.deadline
                    run.on_timer(self.now)
                    continue
                await self.caller_turn()
        finally:
            await self.lookups.close()
        record = summary(run)
        self.say("path: " + json.dumps(record["path"], default=str))
        self.say("variables: " + json.dumps(record["variables"], default=str))

    async def caller_turn(self) -> None:
        run = self.run
        self.say(f"[{run.flow.name}.{run.step}] your turn: keys, 'say <words>', empty for silence")
        line = await self.read_line()
        if not line:  # end of input: the caller hangs up
            self.say("(caller hangs up)")
            run.hung_up(self.now, "caller")
            return
        line = line.strip()
        self.now += 1.0
        if line.lower().startswith("say "):
            run.feed(SpeechHeard(line[4:].strip(), 1.0), self.now)
        elif not line:
            if run.deadline is not None:
                self.now = max(self.now, run.deadline)
                run.on_timer(self.now)
        elif all(key in DTMF_KEYS for key in line.upper()):
            for key in line.upper():
                run.feed(KeyPressed(key), self.now)
        else:
            self.say(f"not keys (0-9 * # A-D) and not 'say ...': {line!r}")

    # ---- the run's actions (a flows.interpreter.ActionHandler) -----------------------------------------

    def play_prompt(self, action: PlayPrompt) -> None:
        for sound in action.sounds:
            self.say(f"  play: {Path(sound.file).name}" if sound.file else f"  say: {sound.text}")
        self.pending.append(PromptDone())

    def stop_prompt(self, action: StopPrompt) -> None:
        self.say("  (prompt cut short)")

    def start_listening(self, action: StartListening) -> None:
        self.say(f"  listening for: {', '.join(action.phrases)}" if action.phrases else "  listening")

    def stop_listening(self, action: StopListening) -> None:
        pass  # the caller's next line is read whatever it is

    def fetch(self, action: Fetch) -> None:
        self.fetching.append(action)  # answered before the run goes on (main awaits it)

    def start_recording(self, action: StartRecording) -> None:
        self.say(f"  (recording a message, up to {action.max_seconds:g} s)")
        self.pending.append(RecordingDone(None, SIMULATED_MESSAGE_SECONDS))

    def stop_recording(self, action: StopRecording) -> None:
        pass  # the simulated message is over at once

    def transfer(self, action: TransferCall) -> None:
        self.say(f"  transfer to {action.uri}")
        self.run.hung_up(self.now, "transferred")

    def join_queue(self, action: JoinQueue) -> None:
        self.say(f"  queue: {action.queue} (no agents in a simulation)")
        self.pending.append(QueueLeft("simulation"))

    def end_call(self, action: EndCall) -> None:
        self.say("  hang up")

    def set_recording(self, action: SetRecording) -> None:
        self.say("  recording paused: silence in its place" if action.paused else "  recording resumed")

    def notice(self, action: Notice) -> None:
        self.say(f"  warning: {action.message}")

    async def _look_up(self, request: Fetch) -> LookupDone:
        if self.fixtures is None:
            self.say(f"  lookup: {request.method} {request.url}")
            done = await self.lookups.fetch(request)
        else:
            self.say(f"  lookup (fixture): {request.method} {request.url}")
            done = fixture_answer(self.fixtures, request)
        self.say(f"  -> {json.dumps(done.result) if done.error is None else 'failed: ' + done.error}")
        return done


def fixture_answer(fixtures: Mapping[str, Any], request: Fetch) -> LookupDone:
    """A lookup answered from fixtures: the longest URL (or URL prefix) that fits; ``{error: reason}`` fails it."""
    keys = [k for k in fixtures if request.url == k or request.url.startswith(k)]
    if not keys:
        return LookupDone(error="no fixture for this URL")
    value = fixtures[max(keys, key=len)]
    failed = isinstance(value, dict) and set(value) == {"error"}
    return LookupDone(error=str(value["error"])) if failed else LookupDone(result=value)


def simulate(deployment: Deployment, flow: str, info: CallInfo, fixtures: dict[str, Any] | None, *,
             at: float | None = None) -> None:  # fmt: skip
    """Run ``flow`` against standard input and output, the call coming ``at`` (default: now)."""

    async def read_line() -> str:
        return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    asyncio.run(Simulation(deployment, flow, info, fixtures=fixtures, out=sys.stdout, read_line=read_line,
                           at=at).main())  # fmt: skip
