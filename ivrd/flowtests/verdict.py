"""What a test expected against what its call did: failures with the test file's line and both sides."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .cases import Case, End
from .runner import Outcome

MISSING = object()


@dataclass(frozen=True, slots=True)
class Failure:
    where: str  # file:line of what failed
    test: str
    what: str
    detail: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "\n".join([f"{self.where}: {self.test}: {self.what}", *(f"    {line}" for line in self.detail)])


def judge(case: Case, outcome: Outcome) -> list[Failure]:
    """Every way ``outcome`` falls short of what ``case`` expects (empty: the test passes)."""
    expect = case.spec.expect
    failures = [Failure(f"{case.file}:{line}", case.name, f"script: {why}") for line, why in outcome.trouble]
    failures += [Failure(case.where(""), case.name, f"the flow warned: {notice}") for notice in outcome.notices]
    first_flow = outcome.steps[0][0] if outcome.steps else ""
    visited = [f"{flow}.{step}" for flow, step in outcome.steps]
    checks = (("heard", expect.heard, outcome.heard, _hears),
              ("steps", tuple(s if "." in s else f"{first_flow}.{s}" for s in expect.steps), visited, _same))
    for part, items, actual, fits in checks:  # fmt: skip
        missing = _first_missing(items, actual, fits)
        if missing is not None:
            after = f" after {_show(items[missing - 1])}" if missing else ""
            failures.append(Failure(case.where(part), case.name, f"{part}: {_show(items[missing])} not{after}",
                                    (f"expected, in this order: {_list(items)}",
                                     f"actual: {_list(actual)}")))  # fmt: skip
    for name, value in expect.variables.items():
        actual_value = _lookup(outcome.variables, name)
        if actual_value is MISSING or actual_value != value.value:
            wanted, shown = _show(value.value), "not set" if actual_value is MISSING else _show(actual_value)
            if wanted.strip('"') == shown.strip('"'):  # 5 against "5": say which is text
                wanted, shown = _typed(value.value), _typed(actual_value)
            failures.append(Failure(case.where(f"variables.{name}"), case.name, f"variables: {name}",
                                    (f"expected: {wanted}", f"actual:   {shown}")))  # fmt: skip
    if expect.end is not None and not _ends_as(expect.end, outcome.end):
        failures.append(Failure(case.where("end"), case.name, "end",
                                (f"expected: {_end(_wanted(expect.end))}", f"actual:   {_end(outcome.end)}")))
    return failures


def _hears(wanted: str, heard: str) -> bool:
    """A prompt file by its name, or a spoken text by any run of its words."""
    return wanted == heard or f" {_words(wanted)} " in f" {_words(heard)} "


def _same(wanted: str, actual: str) -> bool:
    return wanted == actual


def _words(text: str) -> str:
    """Lower case, without punctuation (a decimal point stays: 42.5)."""
    return " ".join(re.sub(r"[^\w\s.]|(?<!\d)\.|\.(?!\d)", " ", text.lower()).split())


def _first_missing(wanted: Sequence[str], actual: Sequence[str], fits: Any) -> int | None:
    """The index of the first of ``wanted`` not found, in order, in ``actual`` (None: all are)."""
    position = 0
    for index, item in enumerate(wanted):
        while position < len(actual) and not fits(item, actual[position]):
            position += 1
        if position == len(actual):
            return index
        position += 1
    return None


def _lookup(variables: dict[str, Any], dotted: str) -> Any:
    value: Any = variables
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _wanted(end: End) -> dict[str, Any]:
    return {k: v for k in ("queue", "skills", "priority", "transfer", "voicemail", "hangup")
            if (v := getattr(end, k)) is not None}  # fmt: skip


def _ends_as(end: End, actual: dict[str, Any]) -> bool:
    wanted = _wanted(end)
    if wanted.get("hangup") is True:
        return actual.get("hangup") is not None
    return all(actual.get(key, MISSING) == value for key, value in wanted.items())


def _end(how: dict[str, Any]) -> str:
    if not how:
        return "the call did not end"
    return ", ".join(f"{key} {_show(value)}" for key, value in how.items())


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _typed(value: Any) -> str:
    return f"{_show(value)} ({'text' if isinstance(value, str) else type(value).__name__})"


def _list(items: Sequence[str]) -> str:
    return " | ".join(_shorten(item) for item in items) or "(none)"


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."

