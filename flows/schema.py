"""What a flow file may say: the step kinds and their keys, as frozen dataclasses bound from YAML.

A flow file is a mapping with ``steps`` (named steps, run in the order written unless a step
says where to go next) and optionally ``answers``/``callers`` (which calls it takes),
``default``, ``params`` (when other flows use it as a sub-flow) and ``description``. Each step
is a mapping whose kind is the one key from :data:`STEP_KINDS` it holds (``say: "Hello"``,
``menu: ...``); the other keys are that kind's options.

Leaves that need their place in the file later (step names, expressions, prompt files) keep
it, so that every check after binding still reports ``file:line:column``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import yaml

from ivrd.sip.dtmf import KEYS
from ivrd.yaml_loader import Problem, bind, scalar, where

from .expressions import Expression, ExpressionError, Template, compile_expression, compile_template

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DTMF_KEYS = frozenset(KEYS)
OverflowReason = Literal["max_wait", "full", "no_agents", "escalated", "callback"]
# Why a caller leaves a queue without an agent, each an exit of the queue step; the router decides all but
# "callback" (the caller asked to be called back, keeping their place: the contact center's doing).
OVERFLOW_REASONS: tuple[OverflowReason, ...] = ("max_wait", "full", "no_agents", "escalated", "callback")
NUMBER = re.compile(r"[A-Za-z0-9+#._-]+\*?|\*")
SIP_URI = re.compile(r"sips?:[^\s<>\"{}]+")
RESERVED = frozenset({"caller", "dialed", "call", "now", "digits", "speech", "menu", "lookup", "params"})
"""Variables ivrd sets itself; a flow may read them but not assign them."""


@dataclass(frozen=True, slots=True)
class Located:
    """A place in a flow file."""

    file: str
    line: int
    column: int

    @classmethod
    def of(cls, node: yaml.Node, file: str) -> Located:
        return cls(file, node.start_mark.line + 1, node.start_mark.column + 1)

    def problem(self, message: str, column_offset: int = 0) -> Problem:
        return Problem(self.file, self.line, self.column + column_offset, message)


def _text(node: yaml.Node, file: str, problems: list[Problem], path: str, what: str) -> str | None:
    """The text of a scalar, whatever it looks like (``1`` and ``#`` stay the strings they are)."""
    if not isinstance(node, yaml.ScalarNode) or scalar(node) is None:
        problems.append(where(node, file, f"{path}: expected {what}"))
        return None
    return str(node.value)


def _valid_text(node: yaml.Node, file: str, problems: list[Problem], path: str, *, what: str,
                valid: Callable[[str], object], complaint: str = "") -> str | None:  # fmt: skip
    """The text of a scalar that ``valid`` accepts; else a problem (``complaint``, or "expected ``what``")."""
    text = _text(node, file, problems, path, what)
    if text is not None and not valid(text):
        problems.append(where(node, file, f"{path}: {complaint or f'expected {what}, got {text!r}'}"))
        return None
    return text


def _lead(node: yaml.Node) -> int:
    """Columns between the node's start and its text (the opening quote)."""
    return 1 if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"') else 0


@dataclass(frozen=True, slots=True)
class Target:
    """The name of a step (or of a flow), to be resolved once every name is known."""

    DESCRIPTION: ClassVar[str] = "a step name"
    name: str
    at: Located

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Target | None:
        complaint = f"{getattr(node, 'value', '')!r} is not a name (letters, digits and _)"
        text = _valid_text(node, file, problems, path, what=cls.DESCRIPTION, valid=NAME.match, complaint=complaint)
        return cls(text, Located.of(node, file)) if text is not None else None


@dataclass(frozen=True, slots=True)
class CalendarName(Target):
    """The name of a calendar in calendars.yaml."""

    DESCRIPTION: ClassVar[str] = "a calendar name"


@dataclass(frozen=True, slots=True)
class QueueName(Target):
    """The name of an agent queue in the configuration's routing.queues."""

    DESCRIPTION: ClassVar[str] = "a queue name"


@dataclass(frozen=True, slots=True)
class FlowName(Target):
    """The name of another flow of the deployment (its file's name)."""

    DESCRIPTION: ClassVar[str] = "a flow name"


@dataclass(frozen=True, slots=True)
class Name:
    """A variable a step stores into."""

    DESCRIPTION: ClassVar[str] = "a variable name"
    name: str

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Name | None:
        text = _text(node, file, problems, path, cls.DESCRIPTION)
        if text is None:
            return None
        return cls(text) if _variable_ok(text, node, file, problems, path) else None


def _variable_ok(text: str, node: yaml.Node, file: str, problems: list[Problem], path: str) -> bool:
    if not NAME.match(text):
        problems.append(where(node, file, f"{path}: {text!r} is not a variable name (letters, digits and _)"))
        return False
    if text in RESERVED:
        problems.append(where(node, file, f"{path}: {text!r} is set by ivrd itself; choose another name"))
        return False
    return True


@dataclass(frozen=True, slots=True)
class Condition:
    """An expression compiled at load (see :mod:`flows.expressions`)."""

    DESCRIPTION: ClassVar[str] = "an expression"
    expression: Expression
    at: Located

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Condition | None:
        if not isinstance(node, yaml.ScalarNode) or scalar(node) is None:
            problems.append(where(node, file, f"{path}: expected {cls.DESCRIPTION}"))
            return None
        at = Located.of(node, file)
        value = scalar(node)
        text = str(value) if isinstance(value, bool) and not node.style else str(node.value)  # true -> True
        try:
            return cls(compile_expression(text), at)
        except ExpressionError as exc:
            offset = _lead(node) + (exc.column - 1 if exc.column else 0)
            problems.append(at.problem(f"{path}: {exc.message}", offset))
            return None


@dataclass(frozen=True, slots=True)
class Text:
    """Text that may hold ``{{ expression }}`` parts."""

    DESCRIPTION: ClassVar[str] = "text"
    template: Template
    at: Located

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Text | None:
        text = _text(node, file, problems, path, cls.DESCRIPTION)
        if text is None:
            return None
        at = Located.of(node, file)
        try:
            return cls(compile_template(text), at)
        except ExpressionError as exc:
            offset = _lead(node) + (exc.column - 1 if exc.column else 0)
            problems.append(at.problem(f"{path}: {exc.message}", offset))
            return None


@dataclass(frozen=True, slots=True)
class Key:
    """One DTMF key: 0-9, *, #, A-D."""

    DESCRIPTION: ClassVar[str] = "a key: 0-9, * or # (quoted: '#'), A-D"
    key: str

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Key | None:
        text = _valid_text(node, file, problems, path, what=cls.DESCRIPTION, valid=DTMF_KEYS.__contains__)
        return cls(text) if text is not None else None


@dataclass(frozen=True, slots=True)
class Pattern:
    """A regular expression the whole of some digits must match."""

    DESCRIPTION: ClassVar[str] = "a pattern (a regular expression)"
    regex: re.Pattern[str]

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Pattern | None:
        text = _text(node, file, problems, path, cls.DESCRIPTION)
        if text is None:
            return None
        try:
            return cls(re.compile(text))
        except re.error as exc:
            problems.append(Located.of(node, file).problem(f"{path}: not a valid pattern: {exc.msg}",
                                                           _lead(node) + (exc.pos or 0)))  # fmt: skip
            return None


@dataclass(frozen=True, slots=True)
class Number:
    """A dialed or calling number pattern: digits, ``+``, and ``*`` for any rest (``0800*``)."""

    DESCRIPTION: ClassVar[str] = "a number, or a prefix ending in * (quoted)"
    text: str
    at: Located

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Number | None:
        text = _valid_text(node, file, problems, path, what=cls.DESCRIPTION, valid=NUMBER.fullmatch)
        return cls(text, Located.of(node, file)) if text is not None else None

    def matches(self, number: str) -> bool:
        if self.text.endswith("*"):
            return number.startswith(self.text[:-1])
        return number == self.text


@dataclass(frozen=True, slots=True)
class PromptPart:
    """One thing to hear: a prompt file (``play``) or text to speak (``say``)."""

    play: str | None = None
    say: Text | None = None
    at: Located | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a caller hears: text (spoken), ``{play: file}``, ``{say: text}``, or a list of those."""

    DESCRIPTION: ClassVar[str] = "text to say, {play: file}, {say: text}, or a list of them"
    parts: tuple[PromptPart, ...]

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Prompt | None:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        parts = []
        for index, item in enumerate(items):
            where_item = f"{path}[{index}]" if isinstance(node, yaml.SequenceNode) else path
            part = _prompt_part(item, file, problems, where_item)
            if part is None:
                return None
            parts.append(part)
        if not parts:
            problems.append(where(node, file, f"{path}: expected {cls.DESCRIPTION}, got an empty list"))
            return None
        return cls(tuple(parts))


@dataclass(frozen=True, slots=True)
class Files(Prompt):
    """Prompt files to play: one file, or a list of them."""

    DESCRIPTION: ClassVar[str] = "a prompt file, or a list of them"

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Files | None:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        parts = []
        for item in items:
            name = _text(item, file, problems, path, cls.DESCRIPTION)
            if name is None:
                return None
            parts.append(PromptPart(play=name, at=Located.of(item, file)))
        return cls(tuple(parts)) if parts else None


def _prompt_part(node: yaml.Node, file: str, problems: list[Problem], path: str) -> PromptPart | None:
    at = Located.of(node, file)
    if isinstance(node, yaml.ScalarNode):
        text = Text.from_yaml(node, file, problems, path)
        return PromptPart(say=text, at=at) if text else None
    if isinstance(node, yaml.MappingNode) and len(node.value) == 1:
        key, value = node.value[0]
        if key.value == "say":
            text = Text.from_yaml(value, file, problems, f"{path}.say")
            return PromptPart(say=text, at=at) if text else None
        if key.value == "play":
            name = _text(value, file, problems, f"{path}.play", "a prompt file")
            return PromptPart(play=name, at=Located.of(value, file)) if name else None
    problems.append(where(node, file, f"{path}: expected {Prompt.DESCRIPTION}"))
    return None


# ---- steps ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Play:
    """Play prompt files (one file or a list)."""

    play: Files
    barge_in: bool = True
    next: Target | None = None


@dataclass(frozen=True, slots=True)
class Say:
    """Speak text (with ``{{ }}`` parts) through text to speech."""

    say: Text
    barge_in: bool = True
    voice: str | None = None
    next: Target | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """One way out of a menu: a key, spoken phrases, or both."""

    goto: Target
    key: Key | None = None
    say: tuple[str, ...] = ()

    def check(self) -> str | None:
        return None if self.key is not None or self.say else "key, say: a choice needs a key, phrases to say, or both"


@dataclass(frozen=True, slots=True)
class Asking:
    """What every step that waits for the caller shares: the VoiceXML no-input/no-match handling."""

    timeout: float = 5.0
    tries: int = 3
    noinput: tuple[Prompt, ...] = ()
    nomatch: tuple[Prompt, ...] = ()
    fallback: Target | None = None
    barge_in: bool = True

    def check_asking(self) -> str | None:
        if not 0 < self.timeout <= 120:
            return "timeout: expected 0-120 seconds"
        if not 1 <= self.tries <= 20:
            return "tries: expected 1-20"
        return None


@dataclass(frozen=True, slots=True)
class Menu(Asking):
    """A prompt, then a choice by key or by voice."""

    menu: Prompt | None = None
    choices: tuple[Choice, ...] = ()
    confidence: float = 0.5
    language: str | None = None

    def check(self) -> str | None:
        if not self.choices:
            return "choices: a menu needs at least one choice"
        keys = [c.key.key for c in self.choices if c.key]
        if len(set(keys)) != len(keys):
            return "choices: the same key leads to two choices"
        phrases = [p.lower() for c in self.choices for p in c.say]
        if len(set(phrases)) != len(phrases):
            return "choices: the same phrase leads to two choices"
        return self.check_asking()


@dataclass(frozen=True, slots=True)
class Collect(Asking):
    """Digits into a variable: length bounds, a terminator, timeouts, a pattern they must match."""

    collect: Prompt | None = None
    into: Name | None = None
    min_digits: int = 1
    max_digits: int = 20
    terminator: Key | None = field(default_factory=lambda: Key("#"))
    digit_timeout: float = 3.0
    pattern: Pattern | None = None
    next: Target | None = None

    def check(self) -> str | None:
        if self.into is None:
            return "into: where the digits go (a variable name) is missing"
        if not 1 <= self.min_digits <= self.max_digits <= 64:
            return "min_digits, max_digits: expected 1 <= min <= max <= 64"
        return self.check_asking()


@dataclass(frozen=True, slots=True)
class Listen(Asking):
    """Speech into a variable: from a list of phrases, or free form when there is none."""

    listen: Prompt | None = None
    into: Name | None = None
    phrases: tuple[str, ...] = ()
    confidence: float = 0.5
    max_speech: float = 15.0
    language: str | None = None
    next: Target | None = None

    def check(self) -> str | None:
        if self.into is None:
            return "into: where the words go (a variable name) is missing"
        if not 0 <= self.confidence <= 1:
            return "confidence: expected 0-1"
        return self.check_asking()


@dataclass(frozen=True, slots=True)
class SetVariables:
    """Give variables values (expressions)."""

    set: dict[str, Condition]
    next: Target | None = None


@dataclass(frozen=True, slots=True)
class When:
    condition: Condition = field(metadata={"yaml": "if"})
    goto: Target = field(metadata={"yaml": "goto"})


@dataclass(frozen=True, slots=True)
class Branch:
    """The first case whose condition holds decides the next step; ``else`` when none does."""

    branch: tuple[When, ...]
    otherwise: Target | None = field(default=None, metadata={"yaml": "else"})


@dataclass(frozen=True, slots=True)
class Goto:
    goto: Target


@dataclass(frozen=True, slots=True)
class GoFlow:
    """Continue in another flow (no return)."""

    flow: Target
    arguments: dict[str, Condition] = field(default_factory=dict, metadata={"yaml": "with"})


@dataclass(frozen=True, slots=True)
class SubFlow:
    """Run another flow (with parameters) and come back to ``next``."""

    subflow: Target
    arguments: dict[str, Condition] = field(default_factory=dict, metadata={"yaml": "with"})
    next: Target | None = None


@dataclass(frozen=True, slots=True)
class Return:
    """End a sub-flow here (in a top-level flow: hang up)."""

    return_: Literal[True] = field(metadata={"yaml": "return"})


@dataclass(frozen=True, slots=True)
class Lookup:
    """Ask a web service (JSON over HTTP); its JSON answer goes into a variable."""

    lookup: Text
    into: Name
    method: Literal["GET", "POST"] = "GET"
    body: dict[str, Condition] | None = None
    timeout: float = 3.0
    on_failure: Target | None = None
    next: Target | None = None

    def check(self) -> str | None:
        if not 0 < self.timeout <= 30:
            return "timeout: expected 0-30 seconds"
        return None if self.method == "POST" or self.body is None else "body: only a POST sends a body"


@dataclass(frozen=True, slots=True)
class Hours:
    """Open, closed or holiday, by a calendar of opening hours."""

    hours: CalendarName
    open: Target
    closed: Target
    holiday: Target | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """Record the caller (voicemail) until silence, a key, or the longest length."""

    record: Prompt | None
    into: Name | None = None
    max_seconds: float = 120.0
    silence_seconds: float = 5.0
    beep: bool = True
    next: Target | None = None

    def check(self) -> str | None:
        if not 1 <= self.max_seconds <= 3600:
            return "max_seconds: expected 1-3600"
        return None if 0.5 <= self.silence_seconds <= 60 else "silence_seconds: expected 0.5-60"


@dataclass(frozen=True, slots=True)
class SipAddress:
    """A SIP URI written out in full."""

    DESCRIPTION: ClassVar[str] = "a SIP address such as sip:desk@pbx.example.com"
    uri: str
    at: Located

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> SipAddress | None:
        text = _valid_text(node, file, problems, path, what=cls.DESCRIPTION, valid=SIP_URI.fullmatch)
        return cls(text, Located.of(node, file)) if text is not None else None


@dataclass(frozen=True, slots=True)
class Transfer:
    """Send the call to a SIP address (written out in full: caller input never builds a target)."""

    transfer: SipAddress
    next: Target | None = None


@dataclass(frozen=True, slots=True)
class Queue:
    """Hand the caller to an agent queue, optionally with a priority and the caller's own skills expression."""

    queue: QueueName
    priority: Condition | None = None  # a number: higher waits less (evaluated as the caller joins)
    skills: Text | None = None  # replaces the queue's skills expression for this caller
    callback_number: Text | None = None  # where a callback goes (default: the caller's number)
    left: dict[str, Target] = field(default_factory=dict)  # the step per reason for leaving without an agent
    next: Target | None = None  # when the caller leaves without an agent, for a reason ``left`` does not name
    survey: FlowName | None = None  # a flow the caller goes on to once the agent hangs up (CSAT)

    def check(self) -> str | None:
        unknown = sorted(set(self.left) - set(OVERFLOW_REASONS))
        if unknown:
            return f"left: {', '.join(unknown)}: expected reasons among {', '.join(OVERFLOW_REASONS)}"
        return None


@dataclass(frozen=True, slots=True)
class Recording:
    """Pause the call's recording (silence in its place: a card number comes next) or resume it."""

    recording: Literal["pause", "resume"]
    next: Target | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    """Silence for some seconds."""

    wait: float
    next: Target | None = None

    def check(self) -> str | None:
        return None if 0 < self.wait <= 86400 else "wait: expected 0-86400 seconds"


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call, after an optional goodbye."""

    hangup: Literal[True] | Prompt


Step = (Play | Say | Menu | Collect | Listen | SetVariables | Branch | Goto | GoFlow | SubFlow | Return | Lookup
        | Hours | Record | Transfer | Queue | Wait | Hangup)  # fmt: skip
STEP_KINDS: dict[str, type[Any]] = {
    "play": Play, "say": Say, "menu": Menu, "collect": Collect, "listen": Listen, "set": SetVariables,
    "branch": Branch, "goto": Goto, "flow": GoFlow, "subflow": SubFlow, "return": Return, "lookup": Lookup,
    "hours": Hours, "record": Record, "transfer": Transfer, "queue": Queue, "wait": Wait, "hangup": Hangup,
    "recording": Recording,
}  # fmt: skip
WAITS_FOR_CALLER = (Menu, Collect, Listen, Record)
PASSES_TIME = (Play, Say, Wait, Lookup, Queue, Transfer)


@dataclass(frozen=True, slots=True)
class StepAt:
    """A step with its name and where it is written."""

    name: str
    step: Step
    at: Located


@dataclass(frozen=True, slots=True)
class Steps:
    DESCRIPTION: ClassVar[str] = "a mapping of step names to steps"
    steps: tuple[StepAt, ...]

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Steps | None:
        if not isinstance(node, yaml.MappingNode) or not node.value:
            problems.append(where(node, file, f"{path}: expected {cls.DESCRIPTION}"))
            return None
        steps = []
        for key, value in node.value:
            name = str(key.value)
            if not NAME.match(name):
                problems.append(where(key, file, f"step {name!r}: a step name is letters, digits and _"))
                continue
            step = _bind_step(name, value, file, problems)
            if step is not None:
                steps.append(StepAt(name, step, Located.of(key, file)))
        return cls(tuple(steps))


def _bind_step(name: str, node: yaml.Node, file: str, problems: list[Problem]) -> Step | None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(where(node, file, f"step {name}: expected a mapping with one of: {', '.join(STEP_KINDS)}"))
        return None
    kinds = [str(k.value) for k, _ in node.value if k.value in STEP_KINDS]
    if len(kinds) != 1:
        near = [m for k, _ in node.value for m in difflib.get_close_matches(str(k.value), STEP_KINDS, 1)]
        found = f"found {', '.join(kinds)}" if kinds else "found none" + (f" (did you mean {near[0]}?)" if near else "")
        problems.append(where(node, file, f"step {name}: expected exactly one kind of step "
                                          f"({', '.join(STEP_KINDS)}); {found}"))  # fmt: skip
        return None
    step: Step | None = bind(STEP_KINDS[kinds[0]], node, file, problems, f"step {name}")
    return step


@dataclass(frozen=True, slots=True)
class FlowFile:
    """One flow file, as written."""

    steps: Steps
    description: str = ""
    answers: tuple[Number, ...] = ()
    callers: tuple[Number, ...] = ()
    default: bool = False
    params: tuple[Name, ...] = ()
    start: Target | None = None
