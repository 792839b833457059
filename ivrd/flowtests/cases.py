"""Flow test files: what a scripted caller does and what must happen, bound from YAML with their lines.

A test file (``tests/*.yaml`` beside the flows) holds defaults for its tests (``caller``,
``dialed``, ``at``, ``fixtures``) and ``tests``, each a named case::

    tests:
      billing_by_voice:
        at: "2026-12-07T10:00-05:00"          # the calendars see this time (no offset: this machine's zone)
        script: [{say: billing}]               # press, say, silence, hangup, agent, agent_hangs_up, ...
        expect:
          heard: [welcome.wav, "For billing"]  # prompts in this order (a file's name, or words of a text)
          steps: [main_menu, balance.find_account]
          variables: {department: billing}
          end: {queue: general, skills: "billing >= 1"}

Every problem is reported as ``file:line:column: message``, all at once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from flows.schema import DTMF_KEYS, OVERFLOW_REASONS
from ivrd.yaml_loader import ConfigError, Problem, StrictLoader, bind, compose_file, find, scalar, where

TESTS_DIR = "tests"


def _plain(node: yaml.Node) -> Any:
    """A node as plain values, read with the flows' YAML rules."""
    loader = StrictLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


@dataclass(frozen=True, slots=True)
class Plain:
    """Any YAML value (a lookup's answer, a variable's value), as plain Python values."""

    value: Any
    DESCRIPTION = "any value"

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Plain:
        return cls(_plain(node))


@dataclass(frozen=True, slots=True)
class Moment:
    """When the call comes, as seconds since the epoch."""

    timestamp: float
    DESCRIPTION = "a time like 2026-12-07T10:00-05:00"

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Moment | None:
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        try:
            return cls(datetime.fromisoformat(str(text).strip()).timestamp())
        except ValueError:
            problems.append(where(node, file, f"{path}: expected {cls.DESCRIPTION}, got {text!r}"))
            return None


ScriptKind = Literal["press", "say", "silence", "hangup", "agent", "agent_hangs_up", "leave_queue",
                     "transfer_fails"]  # fmt: skip
WORDLESS = ("silence", "hangup", "agent_hangs_up")
SCRIPT_FORMS = ("press: KEYS, say: WORDS, silence, hangup, agent: AGENT, agent_hangs_up, "
                f"leave_queue: ({'|'.join(OVERFLOW_REASONS)}), transfer_fails: REASON")  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScriptLine:
    """One thing the caller (or the world around the call) does: ``press: 1``, ``say: billing``, ``silence``..."""

    kind: ScriptKind
    value: str
    line: int
    confidence: float = 1.0

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> ScriptLine | None:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode) and node.value in WORDLESS:
            return cls(node.value, "", line)
        pairs = node.value if isinstance(node, yaml.MappingNode) else []
        keys = [str(k.value) for k, _ in pairs]
        kind = keys[0] if keys else ""
        if kind not in ("press", "say", "agent", "leave_queue", "transfer_fails") or set(keys) - {kind, "confidence"}:
            problems.append(where(node, file, f"{path}: expected one of {SCRIPT_FORMS}"))
            return None
        value_node = pairs[0][1]
        value = scalar(value_node) if isinstance(value_node, yaml.ScalarNode) else None
        text = "" if value is None or isinstance(value, bool) else str(value)
        confidence = 1.0
        for key, item in pairs[1:]:
            number = scalar(item) if isinstance(item, yaml.ScalarNode) else None
            if kind != "say" or not isinstance(number, int | float) or isinstance(number, bool) or not 0 <= number <= 1:
                problems.append(where(key, file, f"{path}.confidence: only with say, a number from 0 to 1"))
                return None
            confidence = float(number)
        if not text:
            problems.append(where(value_node, file, f"{path}.{kind}: expected a value"))
        elif kind == "press" and not set(text.upper()) <= DTMF_KEYS:
            problems.append(where(value_node, file, f"{path}.press: expected keys (0-9 * # A-D), got {text!r}"))
        elif kind == "leave_queue" and text not in OVERFLOW_REASONS:
            problems.append(where(value_node, file, f"{path}.leave_queue: expected one of "
                                                    f"{', '.join(OVERFLOW_REASONS)}, got {text!r}"))  # fmt: skip
        else:
            return cls(kind, text.upper() if kind == "press" else text, line, confidence)  # type: ignore[arg-type]
        return None


@dataclass(frozen=True, slots=True)
class End:
    """How the call must end: in a queue, transferred, after a voicemail message, or hung up."""

    queue: str | None = None
    skills: str | None = None
    priority: int | None = None
    transfer: str | None = None
    voicemail: Literal[True] | None = None
    hangup: Literal[True, "flow", "caller"] | None = None

    def check(self) -> str | None:
        kinds = [k for k in ("queue", "transfer", "voicemail", "hangup") if getattr(self, k) is not None]
        if not kinds:
            return "queue: missing (or transfer, voicemail, hangup: how the call ends)"
        if len(kinds) > 1:
            return f"{kinds[1]}: one end only ({kinds[0]} is given)"
        if kinds != ["queue"] and (self.skills is not None or self.priority is not None):
            return "skills: and priority: go with queue:"
        return None


@dataclass(frozen=True, slots=True)
class Expect:
    heard: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    variables: dict[str, Plain] = field(default_factory=dict)
    end: End | None = None


@dataclass(frozen=True, slots=True)
class CaseSpec:
    """One test as written; the file's defaults fill what it leaves out."""

    script: tuple[ScriptLine, ...] = ()
    expect: Expect = Expect()
    description: str | None = None
    flow: str | None = None
    caller: str | None = None
    dialed: str | None = None
    at: Moment | None = None
    fixtures: dict[str, Plain] | None = None


@dataclass(frozen=True, slots=True)
class FileSpec:
    tests: dict[str, CaseSpec]
    caller: str = "+15555550123"
    dialed: str = "100"
    at: Moment | None = None
    fixtures: dict[str, Plain] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Case:
    """A test ready to run, with where its parts are written (for failures)."""

    name: str
    file: str
    line: int
    spec: CaseSpec
    flow: str | None
    caller: str
    dialed: str
    at: float | None
    fixtures: dict[str, Any]
    lines: dict[str, int]  # "end", "heard", "steps", "variables", "variables.NAME" -> its line

    def where(self, part: str) -> str:
        return f"{self.file}:{self.lines.get(part, self.line)}"


def test_files(tests: Path) -> list[Path]:
    """The test files in a directory (a flows directory keeps them in ``tests/``)."""
    if not tests.is_dir():
        return []
    return sorted(p for p in tests.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_cases(paths: list[Path], flows: Collection[str]) -> list[Case]:
    """Every case of these files, checked (flow names against ``flows``); raise ConfigError with all problems."""
    problems: list[Problem] = []
    cases: list[Case] = []
    for path in paths:
        try:
            node = compose_file(path, problems)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if node is None:
            problems.append(Problem(str(path), 1, 1, "the file is empty (expected tests:)"))
            continue
        spec = bind(FileSpec, node, str(path), problems, "")
        _check_flows(node, str(path), flows, problems)
        if spec is not None and isinstance(node, yaml.MappingNode):
            cases.extend(_cases(spec, node, str(path)))
    if problems:
        raise ConfigError(sorted(set(problems), key=lambda p: (p.file, p.line, p.column, p.message)))
    return cases


def _check_flows(node: yaml.Node, file: str, flows: Collection[str], problems: list[Problem]) -> None:
    """The flows the tests name exist (checked on the nodes: a file with other problems gets this one too)."""
    tests = find(node, "tests")
    for key, case_node in tests.value if isinstance(tests, yaml.MappingNode) else ():
        flow = find(case_node, "flow")
        if isinstance(flow, yaml.ScalarNode) and flow.value not in flows:
            known = ", ".join(sorted(flows))
            problems.append(where(flow, file, f"tests.{key.value}.flow: no flow {flow.value!r} (flows: {known})"))


def _cases(spec: FileSpec, node: yaml.MappingNode, file: str) -> list[Case]:
    tests = find(node, "tests")
    assert isinstance(tests, yaml.MappingNode)
    found = []
    for key, case_node in tests.value:
        name = str(key.value)
        case = spec.tests[name]
        at = case.at or spec.at
        fixtures = {**spec.fixtures, **(case.fixtures or {})}
        found.append(Case(name, file, key.start_mark.line + 1, case, case.flow, case.caller or spec.caller,
                          case.dialed or spec.dialed, at.timestamp if at else None,
                          {url: answer.value for url, answer in fixtures.items()}, _lines(case_node)))  # fmt: skip
    return found


def _lines(case: yaml.MappingNode) -> dict[str, int]:
    lines: dict[str, int] = {}
    expect = next((v for k, v in case.value if k.value == "expect"), None)
    for key, value in expect.value if isinstance(expect, yaml.MappingNode) else ():
        lines[str(key.value)] = key.start_mark.line + 1
        if key.value == "variables" and isinstance(value, yaml.MappingNode):
            lines.update({f"variables.{k.value}": k.start_mark.line + 1 for k, _ in value.value})
    return lines
