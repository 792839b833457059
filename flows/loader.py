"""A deployment: every flow in a directory, checked as a whole, with a version for the call records.

``*.yaml`` in the directory are flows, named after their files (``main.yaml`` is the flow
``main``), except ``calendars.yaml``, which holds the opening hours (:mod:`flows.hours`).
:func:`load_deployment` reports every problem at once as ``file:line:column: message``; a
:class:`Deployment` is immutable, so a reload builds a new one to the side and swaps one reference.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
from collections.abc import Callable, Collection, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ivrd.yaml_loader import ConfigError, Problem, bind, compose_file, find

from .hours import Calendar
from .schema import (
    NAME,
    PASSES_TIME,
    WAITS_FOR_CALLER,
    Branch,
    CalendarName,
    Collect,
    FlowFile,
    FlowName,
    GoFlow,
    Goto,
    Hangup,
    Hours,
    Listen,
    Located,
    Menu,
    Prompt,
    PromptPart,
    Queue,
    QueueName,
    Return,
    StepAt,
    Steps,
    SubFlow,
    Target,
    Text,
    Transfer,
)

CALENDARS = "calendars.yaml"
MAX_FILES = 500
END = ""  # the pseudo-step after the last one: the flow ends (a hang-up, or back from a sub-flow)


@dataclass(frozen=True, slots=True)
class Flow:
    """One flow, its steps in file order and where each goes when it does not say."""

    name: str
    file: str
    directory: Path
    spec: FlowFile
    steps: Mapping[str, StepAt]
    following: Mapping[str, str]  # step -> the step written after it (END after the last)
    start: str
    targets: Mapping[str, tuple[Target, ...]]  # step -> the steps it names (walked once: checks ask often)

    def successors(self, name: str) -> Iterator[str]:
        """The steps ``name`` may lead to (END when it may end the flow; other flows are not followed)."""
        step = self.steps[name].step
        yield from (target.name for target in self.targets[name])
        if isinstance(step, (Menu, Collect, Listen)) and step.fallback is None:
            yield END  # out of tries with nowhere to go: goodbye
        if isinstance(step, (Hangup, Return, GoFlow)):
            yield END
        elif isinstance(step, Branch) and step.otherwise is None:
            yield self.following[name]
        elif isinstance(step, Hours) and step.holiday is None:
            yield step.closed.name
        elif not isinstance(step, (Menu, Hours, Goto, Branch)) and getattr(step, "next", None) is None:
            yield self.following[name]

    def reachable(self) -> set[str]:
        """The steps some way from the start leads to (END among them when the flow can end)."""
        reached = {self.start}
        todo = [self.start]
        while todo:
            name = todo.pop()
            for nxt in self.successors(name) if name in self.steps else ():
                if nxt not in reached:
                    reached.add(nxt)
                    todo.append(nxt)
        return reached


def _targets(step: object) -> list[Target]:
    """Every step reference held in a step (through choices and branch cases), in the order written."""
    found: list[Target] = []
    todo = [step]
    while todo:
        value = todo.pop()
        if value is None or isinstance(value, (str, int, float, CalendarName, QueueName, FlowName)):
            continue
        if isinstance(value, Target):
            found.append(value)
        elif isinstance(value, (tuple, dict)):
            todo.extend(reversed(list(value.values() if isinstance(value, dict) else value)))
        elif isinstance(value, SubFlow):
            if value.next is not None:
                found.append(value.next)
        elif hasattr(value, "__dataclass_fields__") and not isinstance(value, GoFlow):
            todo.extend(getattr(value, name) for name in reversed(value.__dataclass_fields__))
    return found


@dataclass(frozen=True, slots=True)
class Deployment:
    directory: Path
    version: str
    flows: Mapping[str, Flow]
    calendars: Mapping[str, Calendar]
    prompts: Mapping[str, Any]  # resolved path -> what the prompt loader made of it

    @property
    def default(self) -> Flow:
        return next(f for f in self.flows.values() if f.spec.default)

    def flow_for(self, dialed: str, caller: str) -> Flow:
        """The flow that answers a call to ``dialed`` from ``caller``: the most specific match
        (an exact number before a prefix, a longer prefix first, a caller condition first)."""
        best: tuple[tuple[int, int, int], Flow] | None = None
        for flow in self.flows.values():
            spec = flow.spec
            if spec.callers and not any(n.matches(caller) for n in spec.callers):
                continue
            for number in spec.answers:
                if number.matches(dialed):
                    rank = (int(not number.text.endswith("*")), len(number.text), int(bool(spec.callers)))
                    if best is None or rank > best[0]:
                        best = (rank, flow)
        return best[1] if best else self.default


PromptLoader = Callable[[Path], Any]


PhraseCheck = Callable[[str | None, Sequence[str]], str | None]
StageProgress = Callable[[str, int, int], None]  # (stage, done, total)


def load_deployment(directory: Path, load_prompt: PromptLoader | None = None, *,
                    transfer_targets: Collection[str] | None = None, queues: Collection[str] | None = None,
                    check_phrases: PhraseCheck | None = None,
                    unreachable_ok: bool = False, progress: StageProgress | None = None) -> Deployment:  # fmt: skip
    """Read and check every flow under ``directory``; raise :class:`ConfigError` with all problems.

    ``load_prompt`` loads one prompt file (raising ``ValueError`` or ``OSError`` with a reason
    when it cannot); without it prompt files are only checked to exist. ``transfer_targets``
    are the SIP addresses transfers may go to (``sip:*@pbx.example.com`` style patterns);
    None leaves transfer steps unchecked (when the daemon's configuration is not known); so do
    ``queues``, the names of the agent queues.
    ``check_phrases(language, phrases)`` says what is wrong with listening for those phrases
    (no model for the language, words outside its vocabulary), or None. ``unreachable_ok`` lets steps
    that nothing leads to pass (to draw a flow being written). ``progress(stage, done, total)`` hears
    how far the reading of the files ("reading flows") and the prompts ("loading prompts") is.
    """
    problems: list[Problem] = []
    where_dir = str(directory)
    try:
        paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    except OSError as exc:
        raise ConfigError([Problem(where_dir, 1, 1, f"cannot read the flows directory: {exc.strerror}")]) from None
    if len(paths) > MAX_FILES:
        raise ConfigError([Problem(where_dir, 1, 1, f"more than {MAX_FILES} flow files")])
    digest = hashlib.sha256()
    flows: dict[str, Flow] = {}
    calendars: dict[str, Calendar] = {}
    for done, path in enumerate(paths):
        if progress is not None:
            progress("reading flows", done, len(paths))
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        try:
            node = compose_file(path, problems)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if node is None:
            problems.append(Problem(str(path), 1, 1, "the file is empty"))
        elif path.name == CALENDARS:
            calendars.update(bind(dict[str, Calendar], node, str(path), problems, "calendars") or {})
        elif not NAME.match(path.stem):
            problems.append(Problem(str(path), 1, 1, "a flow file is named like a step: letters, digits and _"))
        else:
            spec = bind(FlowFile, node, str(path), problems, "")
            if spec is not None:
                flows[path.stem] = _flow(path, spec)
            else:
                _check_targets_of_broken(node, str(path), problems)
    if progress is not None:
        progress("reading flows", len(paths), len(paths))
    if not flows and not problems:
        problems.append(Problem(where_dir, 1, 1, "no flows here (expected *.yaml files)"))
    for flow in flows.values():
        _check_flow(flow, flows, calendars, problems, unreachable_ok)
    _check_deployment(flows, problems)
    prompts = _load_prompts(flows, load_prompt, problems, digest, progress)
    _check_speech(flows, problems)
    if transfer_targets is not None:
        _check_transfers(flows, transfer_targets, problems)
    if queues is not None:
        _check_queues(flows, queues, problems)
    if check_phrases is not None:
        _check_listening(flows, check_phrases, problems)
    if problems:
        raise ConfigError(sorted(set(problems), key=lambda p: (p.file, p.line, p.column, p.message)))
    return Deployment(directory, digest.hexdigest()[:12], flows, calendars, prompts)


def _flow(path: Path, spec: FlowFile) -> Flow:
    names = [s.name for s in spec.steps.steps]
    following = dict(zip(names, [*names[1:], END], strict=True))
    start = spec.start.name if spec.start else names[0] if names else END
    steps = {s.name: s for s in spec.steps.steps}
    targets = {name: tuple(_targets(s.step)) for name, s in steps.items()}
    return Flow(path.stem, str(path), path.parent, spec, steps, following, start, targets)


def _check_flow(flow: Flow, flows: Mapping[str, Flow], calendars: Mapping[str, Calendar],
                problems: list[Problem], unreachable_ok: bool) -> None:  # fmt: skip
    seen: dict[str, Located] = {}
    for step_at in flow.spec.steps.steps:
        if step_at.name in seen:
            continue  # the YAML loader has reported the duplicate key
        seen[step_at.name] = step_at.at
        step = step_at.step
        problems.extend(_missing_targets(step_at, flow.steps))
        if isinstance(step, (GoFlow, SubFlow)):
            _check_call(step_at, step, flows, problems)
        if isinstance(step, Queue) and step.survey is not None and step.survey.name not in flows:
            problems.append(step.survey.at.problem(f"step {step_at.name}: no flow called {step.survey.name!r} "
                                                   "for the survey"))  # fmt: skip
        if isinstance(step, Hours) and step.hours.name not in calendars:
            known = ", ".join(calendars) or f"none: write them in {CALENDARS}"
            message = f"step {step_at.name}: no calendar {step.hours.name!r} (known: {known})"
            problems.append(step.hours.at.problem(message))
    if flow.spec.start and flow.spec.start.name not in flow.steps:
        problems.append(flow.spec.start.at.problem(f"start: no step called {flow.spec.start.name!r}"))
    if any(p.file == flow.file for p in problems):
        return  # the graph checks below need every target to exist
    _check_graph(flow, problems, unreachable_ok)


def _missing_targets(step_at: StepAt, names: Container[str]) -> Iterator[Problem]:
    for target in _targets(step_at.step):
        if target.name not in names:
            yield target.at.problem(f"step {step_at.name}: no step called {target.name!r} in this flow")


def _check_targets_of_broken(node: yaml.Node, file: str, problems: list[Problem]) -> None:
    """A flow file with problems is not checked as a whole; its good steps still get their targets checked."""
    steps = find(node, "steps")
    if not isinstance(steps, yaml.MappingNode):
        return
    names = {str(key.value) for key, _ in steps.value}
    bound = Steps.from_yaml(steps, file, [], "steps")  # its own problems are reported already
    for step_at in bound.steps if bound else ():
        problems.extend(_missing_targets(step_at, names))


def _check_call(step_at: StepAt, step: GoFlow | SubFlow, flows: Mapping[str, Flow], problems: list[Problem]) -> None:
    target = step.flow if isinstance(step, GoFlow) else step.subflow
    called = flows.get(target.name)
    if called is None:
        problems.append(target.at.problem(f"step {step_at.name}: no flow called {target.name!r}"))
        return
    params = {p.name for p in called.spec.params}
    for arg in step.arguments:
        if arg not in params:
            known = ", ".join(sorted(params)) or "none"
            problems.append(step_at.at.problem(f"step {step_at.name}: flow {target.name} has no parameter "
                                               f"{arg!r} (its parameters: {known})"))  # fmt: skip
    missing = params - set(step.arguments)
    if missing:
        problems.append(step_at.at.problem(f"step {step_at.name}: flow {target.name} needs "
                                           f"{', '.join(sorted(missing))} (give them under with:)"))  # fmt: skip


def _check_graph(flow: Flow, problems: list[Problem], unreachable_ok: bool) -> None:
    """Unreachable steps (unless ``unreachable_ok``), and loops the caller can never leave."""
    graph = {name: set(flow.successors(name)) for name in flow.steps}
    reached = flow.reachable()
    for name, step_at in flow.steps.items():
        if name not in reached and not unreachable_ok:
            problems.append(step_at.at.problem(f"step {name}: unreachable (no step leads here)"))
    for component in _loops(graph):
        leaves = any(nxt not in component for name in component for nxt in graph[name])
        if leaves or not component <= reached:
            continue
        kinds = [flow.steps[n].step for n in component]
        asks = any(isinstance(step, WAITS_FOR_CALLER) for step in kinds)
        if not asks and any(isinstance(step, PASSES_TIME) for step in kinds):
            continue  # prompts over and over until the caller hangs up: music on hold
        first = min(component, key=lambda n: (flow.steps[n].at.line, n))
        names = ", ".join(sorted(component, key=lambda n: flow.steps[n].at.line))
        what = "waits for the caller again and again" if asks else "runs forever without waiting for anything"
        problems.append(flow.steps[first].at.problem(f"steps {names}: a loop with no way out that {what} "
                                                     "(give it a fallback, a choice or a condition that leaves)"))


def _loops(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """Strongly connected components that loop (Tarjan, iteratively: flows may be long)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(component)
    return found


def _check_deployment(flows: Mapping[str, Flow], problems: list[Problem]) -> None:
    defaults = [f for f in flows.values() if f.spec.default]
    if flows and not defaults:
        first = min(flows.values(), key=lambda f: f.file)
        problems.append(Problem(first.file, 1, 1, "no default flow: mark the one that answers other calls "
                                                  "with 'default: true'"))  # fmt: skip
    twice = f"default: true here and in {defaults[0].file} too; only one flow can be the default" if defaults else ""
    problems.extend(Problem(extra.file, 1, 1, twice) for extra in defaults[1:])
    claimed: dict[tuple[str, tuple[str, ...]], str] = {}
    for flow in flows.values():
        callers = tuple(sorted(n.text for n in flow.spec.callers))
        for number in flow.spec.answers:
            other = claimed.setdefault((number.text, callers), flow.name)
            if other != flow.name:
                problems.append(number.at.problem(f"answers: {number.text!r} is answered by flow {other} too"))
    for flow in flows.values():  # sub-flows calling themselves would never come back
        chain = _subflow_cycle(flow.name, flows, [])
        if chain:
            problems.append(Problem(flow.file, 1, 1, "sub-flows call each other in a circle: " + " -> ".join(chain)))


def _subflow_cycle(name: str, flows: Mapping[str, Flow], chain: list[str]) -> list[str] | None:
    if name in chain:
        return [*chain, name] if chain[0] == name else None
    flow = flows.get(name)
    if flow is None:
        return None
    for step_at in flow.steps.values():
        if isinstance(step_at.step, SubFlow):
            found = _subflow_cycle(step_at.step.subflow.name, flows, [*chain, name])
            if found:
                return found
    return None


def _parts(value: object) -> Iterator[PromptPart]:
    """Every part of every prompt in a step (the text of ``say`` steps included)."""
    if isinstance(value, Prompt):
        yield from value.parts
    elif isinstance(value, Text):
        yield PromptPart(say=value, at=value.at)
    elif isinstance(value, tuple):
        for item in value:
            yield from _parts(item)
    elif hasattr(value, "__dataclass_fields__") and not isinstance(value, Located):
        for name in value.__dataclass_fields__:
            if name != "lookup":  # a URL, not something said
                yield from _parts(getattr(value, name))


def _check_transfers(flows: Mapping[str, Flow], allowed: Collection[str], problems: list[Problem]) -> None:
    """Transfers go only where ops allow (toll fraud: a flow edit must not open a way to premium numbers)."""
    for flow in flows.values():
        for step_at in flow.steps.values():
            step = step_at.step
            if isinstance(step, Transfer) and not any(fnmatch.fnmatchcase(step.transfer.uri, p) for p in allowed):
                problems.append(step.transfer.at.problem(
                    f"step {step_at.name}: {step.transfer.uri} is not in flows.transfer_targets of the "
                    "configuration (transfers go only where it allows)"))  # fmt: skip


def _check_queues(flows: Mapping[str, Flow], queues: Collection[str], problems: list[Problem]) -> None:
    for flow in flows.values():
        for step_at in flow.steps.values():
            step = step_at.step
            if isinstance(step, Queue) and step.queue.name not in queues:
                known = ", ".join(sorted(queues)) or "none are configured"
                problems.append(step.queue.at.problem(
                    f"step {step_at.name}: no agent queue {step.queue.name!r} in routing.queues ({known})"))


def _check_listening(flows: Mapping[str, Flow], check: PhraseCheck, problems: list[Problem]) -> None:
    """Spoken answers need a model for their language that knows their words: found at load, not on a call."""
    for flow in flows.values():
        for step_at in flow.steps.values():
            step = step_at.step
            if isinstance(step, Menu):
                phrases: Sequence[str] = [p for choice in step.choices for p in choice.say]
                if not phrases:
                    continue
            elif isinstance(step, Listen):
                phrases = step.phrases
            else:
                continue
            message = check(step.language, phrases)
            if message:
                problems.append(step_at.at.problem(f"step {step_at.name}: {message}"))


def _check_speech(flows: Mapping[str, Flow], problems: list[Problem]) -> None:
    """Text to say needs the synthesizer: refuse it at load when espeak-ng is not installed."""
    if shutil.which("espeak-ng") is not None:
        return
    for flow in flows.values():
        for step_at in flow.steps.values():
            problems.extend(part.at.problem(f"step {step_at.name}: saying text needs espeak-ng, which is not "
                                            "installed (apt-get install espeak-ng)")
                            for part in _parts(step_at.step) if part.say is not None and part.at)  # fmt: skip


def _load_prompts(flows: Mapping[str, Flow], load_prompt: PromptLoader | None, problems: list[Problem],
                  digest: Any, progress: StageProgress | None) -> dict[str, Any]:  # fmt: skip
    # by the name the interpreter gives each file (playing it needs no file system access): the places
    # that play it, each told when it cannot be loaded
    wanted: dict[str, list[tuple[str, str, Located]]] = {}
    for flow in flows.values():
        for step_at in flow.steps.values():
            for part in _parts(step_at.step):
                if part.play is not None and part.at is not None:
                    wanted.setdefault(str(flow.directory / part.play), []).append((step_at.name, part.play, part.at))
    prompts: dict[str, Any] = {}
    for done, (key, uses) in enumerate(wanted.items()):
        if progress is not None:
            progress("loading prompts", done, len(wanted))
        path, name = Path(key), uses[0][1]
        try:
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
            prompts[key] = load_prompt(path) if load_prompt else None
        except FileNotFoundError:
            problems.extend(at.problem(f"step {step}: no prompt file {name!r} (looked for {path.resolve()})")
                            for step, name, at in uses)  # fmt: skip
        except (OSError, ValueError) as exc:
            problems.extend(at.problem(f"step {step}: {exc}") for step, _, at in uses)
    if progress is not None and wanted:
        progress("loading prompts", len(wanted), len(wanted))
    return prompts


__all__ = ["END", "ConfigError", "Deployment", "Flow", "load_deployment"]
