"""YAML for files people edit: no YAML 1.1 surprises, duplicate keys refused, every node keeps its line.

``yes``/``no``/``on``/``off`` stay strings (only ``true``/``false`` are booleans), ``0755`` is not
octal, dates stay strings, and :func:`compose_file` returns the node tree so that every error can
name ``file:line:column``. Files over :data:`MAX_FILE_BYTES` and documents over
:data:`MAX_NODES` nodes (alias bombs) are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

MAX_FILE_BYTES = 1 << 20
MAX_NODES = 100_000


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ConfigError(Exception):
    """One or more problems in files ops edit, each with its location."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-like scalars (see the module docstring)."""


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (
        "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}  # fmt: skip
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def where(node: yaml.Node, file: str, message: str) -> Problem:
    mark = node.start_mark
    return Problem(file, mark.line + 1, mark.column + 1, message)


def compose_file(path: Path, problems: list[Problem]) -> yaml.Node | None:
    """The node tree of one YAML file (None when it is empty).

    Duplicate keys are appended to ``problems`` (so they are reported with every other problem);
    an unreadable file, a syntax error or an alias bomb raises :class:`ConfigError` at once.
    """
    name = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError([Problem(name, 1, 1, f"file larger than {MAX_FILE_BYTES} bytes")])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(name, 1, 1, f"cannot read: {exc}")]) from None
    try:
        node = yaml.compose(text, Loader=StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([Problem(name, line, column, f"YAML syntax: {exc.problem}")]) from None
    if node is not None:
        _check(node, name, problems)
    return node


def _check(root: yaml.Node, file: str, problems: list[Problem]) -> None:
    """Refuse duplicate keys and oversized (alias-expanded) documents."""
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConfigError([where(root, file, f"document expands to more than {MAX_NODES} nodes")])
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, yaml.Node] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        first = seen[key.value].start_mark.line + 1
                        problems.append(where(key, file, f"duplicate key {key.value!r} (first at line {first})"))
                    seen[key.value] = key
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def scalar(node: yaml.ScalarNode) -> str | int | float | bool | None:
    """The value of a scalar node under the strict resolvers (quoted scalars are always strings)."""
    tag = node.tag.rsplit(":", 1)[-1]
    text = str(node.value)
    if tag == "bool":
        return text == "true"
    if tag == "int":
        return int(text)
    if tag == "float":
        return float(text)
    if tag == "null":
        return None
    return text
