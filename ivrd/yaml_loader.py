"""YAML for files people edit: no YAML 1.1 surprises, duplicate keys refused, every node keeps its line.

``yes``/``no``/``on``/``off`` stay strings (only ``true``/``false`` are booleans), ``0755`` is not
octal, dates stay strings, and :func:`compose_file` returns the node tree so that every error can
name ``file:line:column``. Files over :data:`MAX_FILE_BYTES` and documents over
:data:`MAX_NODES` nodes (alias bombs) are refused.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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


# libyaml's parser where PyYAML was built with it (Debian's and PyPI's wheels are): the same nodes and
# marks, read ten times faster, which counts for a deployment of hundreds of flows
_Parser: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastStrictLoader(_Parser):  # type: ignore[valid-type,misc]
    """StrictLoader's scalars over libyaml's parser (the resolvers are shared below)."""


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
_FastStrictLoader.yaml_implicit_resolvers = StrictLoader.yaml_implicit_resolvers


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
        node = yaml.compose(text, Loader=_FastStrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([Problem(name, line, column, f"YAML syntax: {exc.problem}")]) from None
    except RecursionError:  # PyYAML's own parser, where libyaml is missing, recurses per level
        raise ConfigError([Problem(name, 1, 1, "YAML nested too deeply")]) from None
    if node is not None:
        _check(node, name, problems, text.splitlines())
    return node


def _check(root: yaml.Node, file: str, problems: list[Problem], lines: list[str]) -> None:
    """Refuse duplicate keys, oversized (alias-expanded) documents, and ``key: #`` (a comment, not a '#')."""
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
                    column = _commented_out(key, value, lines)
                    if column is not None:
                        problems.append(Problem(file, key.end_mark.line + 1, column, f"{key.value}: nothing before "
                                                "the comment; a # key is written in quotes: '#'"))  # fmt: skip
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _commented_out(key: yaml.ScalarNode, value: yaml.Node, lines: list[str]) -> int | None:
    """``key: # ...``: the value is empty because a ``#`` meant as a value starts a comment.
    The 1-based column of that ``#``, or None."""
    if not (isinstance(value, yaml.ScalarNode) and value.value == "" and not value.style):  # plain: None or ""
        return None
    line, start = key.end_mark.line, key.end_mark.column
    rest = lines[line][start:] if line < len(lines) else ""
    if not rest.lstrip(" :").startswith("#"):
        return None
    return start + rest.index("#") + 1


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


def find(node: yaml.Node, *keys: str) -> yaml.Node | None:
    """The value node at ``keys`` in a tree of mappings."""
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        found = [value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key]
        if not found:
            return None
        node = found[0]
    return node


def describe(tp: Any) -> str:
    """What a value of type ``tp`` looks like, for people: "an integer", "a list of a string"."""
    if hasattr(tp, "DESCRIPTION"):
        return str(tp.DESCRIPTION)
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of names to {describe(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "nothing (null)"}.get(tp, str(tp))  # fmt: skip


def bind(tp: Any, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Any:
    """Build a value of type ``tp`` from ``node``; append problems and return None when it cannot.

    ``tp`` is a frozen dataclass (its optional ``check()`` returns a message when the values do
    not fit together), ``tuple[X, ...]``, ``dict[str, X]``, a union, a ``Literal``, a scalar type,
    or a class with a ``from_yaml(node, file, problems, path)`` classmethod of its own.
    """
    origin = typing.get_origin(tp)
    if hasattr(tp, "from_yaml"):
        return tp.from_yaml(node, file, problems, path)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _bind_dataclass(tp, node, file, problems, path)
    if origin is dict:
        if not isinstance(node, yaml.MappingNode):
            problems.append(where(node, file, f"{path}: expected {describe(tp)}"))
            return None
        value_type = typing.get_args(tp)[1]
        return {str(k.value): bind(value_type, v, file, problems, f"{path}.{k.value}") for k, v in node.value}
    if origin is tuple:
        if not isinstance(node, yaml.SequenceNode):
            problems.append(where(node, file, f"{path}: expected {describe(tp)}"))
            return None
        item_type = typing.get_args(tp)[0]
        items = [bind(item_type, item, file, problems, f"{path}[{i}]") for i, item in enumerate(node.value)]
        return tuple(items)
    if origin in (types.UnionType, typing.Union):
        null = isinstance(node, yaml.ScalarNode) and scalar(node) is None
        fitting = [option for option in typing.get_args(tp)
                   if _shape(option) in (type(node), None) and (option is not type(None) or null)]  # fmt: skip
        if len(fitting) == 1:  # one candidate: its own problems say most
            return bind(fitting[0], node, file, problems, path)
        for option in fitting:
            attempt: list[Problem] = []
            value = bind(option, node, file, attempt, path)
            if not attempt:
                return value
        problems.append(where(node, file, f"{path}: expected {describe(tp)}"))
        return None
    if not isinstance(node, yaml.ScalarNode):
        problems.append(where(node, file, f"{path}: expected {describe(tp)}"))
        return None
    value = scalar(node)
    if origin is Literal:
        if value in typing.get_args(tp) and type(value) in {type(a) for a in typing.get_args(tp)}:
            return value
    elif tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif tp is type(None) and value is None:
        return None
    elif type(value) is tp:
        return value
    problems.append(where(node, file, f"{path}: expected {describe(tp)}, got {node.value!r}"))
    return None


def _shape(tp: Any) -> type[yaml.Node] | None:
    """The kind of node a value of ``tp`` is written as (None: it cannot be told from the type)."""
    if hasattr(tp, "from_yaml"):
        return None
    if dataclasses.is_dataclass(tp) or typing.get_origin(tp) is dict:
        return yaml.MappingNode
    if typing.get_origin(tp) is tuple:
        return yaml.SequenceNode
    return yaml.ScalarNode


@functools.cache
def _schema_of(tp: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field[Any]]]:
    """A dataclass's field types, and its fields by the key written in YAML ("if", "else")."""
    return typing.get_type_hints(tp), {f.metadata.get("yaml", f.name): f for f in dataclasses.fields(tp)}


def _bind_dataclass(tp: type, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        problems.append(where(node, file, f"{path or 'top level'}: expected a mapping"))
        return None
    hints, fields = _schema_of(tp)
    values: dict[str, Any] = {}
    before = len(problems)
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in fields:
            known = ", ".join(fields)
            where_key = f"{path + '.' if path else ''}{key}"
            problems.append(where(key_node, file, f"{where_key}: unknown key (expected one of {known})"))
            continue
        name = fields[key].name
        values[name] = bind(hints[name], value_node, file, problems, f"{path + '.' if path else ''}{key}")
    missing = [key for key, f in fields.items() if f.name not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # fmt: skip
    if missing:
        problems.append(where(node, file, f"{path or 'top level'}: missing {', '.join(missing)}"))
    if len(problems) != before:
        return None
    instance = tp(**values)
    check = getattr(instance, "check", None)
    message = check() if check is not None else None
    if message:
        # a message about one key ("name: ...") points at that key when the file has it
        named = message.split(":", 1)[0]
        at = next((k for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value == named), node)
        problems.append(where(at, file, f"{path + '.' if path else ''}{message}"))
        return None
    return instance
