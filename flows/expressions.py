"""The flow language's expressions: a small, safe evaluator over plain values.

Conditions (``lookup.balance > 100 and caller.number in vip``) and templates (``"You owe
{{ lookup.balance }} dollars"``) are parsed with Python's own parser, then compiled, at load
time, into closures from a whitelist of node kinds: literals, names, ``a.b`` and ``a[b]`` on
dicts and lists, arithmetic, comparisons, ``and``/``or``/``not``, ``x if c else y`` and a few
functions. No attribute of a Python object is ever reachable, nothing loops, and every
result is bounded in size, so evaluation time is bounded by the expression's length.

Evaluation reads plain values (str, int, float, bool, None, list, dict). A name or key that
is not there is None rather than an error, because call variables are often absent (a lookup
that failed, a caller who said nothing); ``None`` then compares unequal and is falsy.
"""

from __future__ import annotations

import ast
import operator
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Value = Any  # str | int | float | bool | None | list[Value] | dict[str, Value]
Variables = Mapping[str, Value]
Compiled = Callable[[Variables], Value]

MAX_SOURCE = 2000
MAX_NODES = 256
MAX_LENGTH = 10_000  # characters in a string, items in a list
MAX_INT = 10**18


class ExpressionError(Exception):
    """A bad expression (at load) or an evaluation that cannot go on (at run time).

    ``column`` is 1-based within the expression text when known, for ``file:line:col`` reports.
    """

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


def _bounded(value: Value) -> Value:
    if isinstance(value, (str, list)) and len(value) > MAX_LENGTH:
        raise ExpressionError(f"result longer than {MAX_LENGTH}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ExpressionError("number too large")
    return value


def _arith(op: Callable[[Value, Value], Value], symbol: str) -> Callable[[Value, Value], Value]:
    def apply(left: Value, right: Value) -> Value:
        repeats = isinstance(left, (str, list)) and isinstance(right, int)
        if symbol == "*" and repeats and len(left) * right > MAX_LENGTH:  # refuse before building it
            raise ExpressionError(f"result longer than {MAX_LENGTH}")
        try:
            return _bounded(op(left, right))
        except (TypeError, ZeroDivisionError, ValueError) as exc:
            raise ExpressionError(f"cannot compute {_kind(left)} {symbol} {_kind(right)}: {exc}") from None

    return apply


def _compare(op: Callable[[Value, Value], bool], symbol: str) -> Callable[[Value, Value], bool]:
    def apply(left: Value, right: Value) -> bool:
        if symbol in ("==", "!="):
            return op(left, right)
        if left is None or right is None:
            return False  # an absent value is neither more nor less than anything
        try:
            return op(left, right)
        except TypeError:
            raise ExpressionError(f"cannot compare {_kind(left)} {symbol} {_kind(right)}") from None

    return apply


def _member(item: Value, container: Value) -> bool:
    if container is None:
        return False
    if not isinstance(container, (str, list, dict)) or (isinstance(container, str) and not isinstance(item, str)):
        raise ExpressionError(f"cannot look for {_kind(item)} in {_kind(container)}")
    return item in container


def _kind(value: Value) -> str:
    return {str: "text", int: "number", float: "number", bool: "true/false", list: "list", dict: "record",
            type(None): "nothing"}.get(type(value), type(value).__name__)  # fmt: skip


_BINARY: dict[type[ast.operator], Callable[[Value, Value], Value]] = {
    ast.Add: _arith(operator.add, "+"), ast.Sub: _arith(operator.sub, "-"), ast.Mult: _arith(operator.mul, "*"),
    ast.Div: _arith(operator.truediv, "/"), ast.FloorDiv: _arith(operator.floordiv, "//"),
    ast.Mod: _arith(operator.mod, "%"),
}  # fmt: skip
_COMPARE: dict[type[ast.cmpop], Callable[[Value, Value], bool]] = {
    ast.Eq: _compare(operator.eq, "=="), ast.NotEq: _compare(operator.ne, "!="), ast.Lt: _compare(operator.lt, "<"),
    ast.LtE: _compare(operator.le, "<="), ast.Gt: _compare(operator.gt, ">"), ast.GtE: _compare(operator.ge, ">="),
    ast.In: _member, ast.NotIn: lambda a, b: not _member(a, b),
}  # fmt: skip


def _to_number(value: Value, kind: type) -> Value:
    try:
        return _bounded(kind(value))
    except (TypeError, ValueError):
        raise ExpressionError(f"{value!r} is not a number") from None


FUNCTIONS: dict[str, Callable[..., Value]] = {
    "len": lambda v: len(v) if isinstance(v, (str, list, dict)) else 0,
    "lower": lambda v: str(v).lower() if v is not None else "",
    "upper": lambda v: str(v).upper() if v is not None else "",
    "str": lambda v: _bounded("" if v is None else str(v)),
    "int": lambda v: _to_number(v, int),
    "float": lambda v: _to_number(v, float),
    "digits": lambda v: "".join(c for c in str(v) if c.isdigit()) if v is not None else "",
}


@dataclass(frozen=True)
class Expression:
    """A compiled expression: :meth:`evaluate` it as often as needed."""

    source: str
    names: frozenset[str]  # the variables it reads (top-level names), for validation
    _run: Compiled

    def evaluate(self, variables: Variables) -> Value:
        return self._run(variables)

    def truth(self, variables: Variables) -> bool:
        return bool(self._run(variables))


class _Compiler:
    def __init__(self, lead: int) -> None:
        self.names: set[str] = set()
        self.nodes = 0
        self.lead = lead  # characters stripped before parsing, added back to reported columns

    def column(self, node: ast.AST) -> int | None:
        offset = getattr(node, "col_offset", None)
        return offset + 1 + self.lead if offset is not None else None

    def compile(self, node: ast.AST) -> Compiled:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression too long (more than {MAX_NODES} parts)")
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise ExpressionError(f"{_describe(node)} is not allowed here", self.column(node))
        compiled: Compiled = method(node)
        return compiled

    def _Expression(self, node: ast.Expression) -> Compiled:
        return self.compile(node.body)

    def _Constant(self, node: ast.Constant) -> Compiled:
        value = node.value
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise ExpressionError(f"{type(value).__name__} values are not allowed", self.column(node))
        _bounded(value)
        return lambda _: value

    def _Name(self, node: ast.Name) -> Compiled:
        name = node.id
        if name in ("true", "false", "null"):  # the YAML spellings people will write
            value = {"true": True, "false": False, "null": None}[name]
            return lambda _: value
        self.names.add(name)
        return lambda variables: variables.get(name)

    def _Attribute(self, node: ast.Attribute) -> Compiled:
        if node.attr.startswith("_"):
            raise ExpressionError(f"no such field {node.attr!r}", self.column(node))
        inner, key = self.compile(node.value), node.attr
        return lambda variables: _field(inner(variables), key)

    def _Subscript(self, node: ast.Subscript) -> Compiled:
        if isinstance(node.slice, ast.Slice):
            raise ExpressionError("slices are not allowed", self.column(node))
        inner, index = self.compile(node.value), self.compile(node.slice)
        return lambda variables: _field(inner(variables), index(variables))

    def _List(self, node: ast.List) -> Compiled:
        items = [self.compile(item) for item in node.elts]
        return lambda variables: [item(variables) for item in items]

    _Tuple = _List

    def _BoolOp(self, node: ast.BoolOp) -> Compiled:
        parts = [self.compile(value) for value in node.values]
        if isinstance(node.op, ast.And):
            def both(variables: Variables) -> Value:
                value: Value = True
                for part in parts:
                    value = part(variables)
                    if not value:
                        return value
                return value
            return both

        def either(variables: Variables) -> Value:
            value: Value = False
            for part in parts:
                value = part(variables)
                if value:
                    return value
            return value
        return either

    def _UnaryOp(self, node: ast.UnaryOp) -> Compiled:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda variables: not operand(variables)
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            sign = -1 if isinstance(node.op, ast.USub) else 1
            return lambda variables: _arith(operator.mul, "*")(operand(variables), sign)
        raise ExpressionError(f"{_describe(node)} is not allowed here", self.column(node))

    def _BinOp(self, node: ast.BinOp) -> Compiled:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ExpressionError(f"operator {_describe(node.op)} is not allowed", self.column(node))
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda variables: op(left(variables), right(variables))

    def _Compare(self, node: ast.Compare) -> Compiled:
        first = self.compile(node.left)
        rest = [(_COMPARE[type(op)], self.compile(value)) for op, value in zip(node.ops, node.comparators, strict=True)
                if type(op) in _COMPARE or self.refuse(op, node)]  # fmt: skip

        def compare(variables: Variables) -> bool:
            left = first(variables)
            for op, right_of in rest:
                right = right_of(variables)
                if not op(left, right):
                    return False
                left = right
            return True
        return compare

    def refuse(self, op: ast.cmpop, node: ast.AST) -> bool:
        raise ExpressionError(f"comparison {_describe(op)} is not allowed", self.column(node))

    def _IfExp(self, node: ast.IfExp) -> Compiled:
        test, yes, no = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda variables: yes(variables) if test(variables) else no(variables)

    def _Call(self, node: ast.Call) -> Compiled:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ExpressionError(f"unknown function (known: {', '.join(FUNCTIONS)})", self.column(node))
        if node.keywords or len(node.args) != 1:
            raise ExpressionError(f"{node.func.id}() takes exactly one value", self.column(node))
        function, argument = FUNCTIONS[node.func.id], self.compile(node.args[0])
        return lambda variables: function(argument(variables))


def _field(container: Value, key: Value) -> Value:
    if isinstance(container, dict):
        return container.get(key) if isinstance(key, str) else None
    if isinstance(container, (list, str)) and isinstance(key, int) and not isinstance(key, bool):
        return container[key] if -len(container) <= key < len(container) else None
    return None


def _describe(node: ast.AST) -> str:
    names = {"Lambda": "a lambda", "ListComp": "a comprehension", "GeneratorExp": "a comprehension",
             "DictComp": "a comprehension", "SetComp": "a comprehension", "Pow": "**", "NamedExpr": ":=",
             "Is": "'is'", "IsNot": "'is not'", "JoinedStr": "an f-string", "Dict": "a record literal",
             "Set": "a set", "Starred": "*", "Await": "await", "Yield": "yield", "BitAnd": "&", "BitOr": "|",
             "BitXor": "^", "LShift": "<<", "RShift": ">>", "MatMult": "@", "Invert": "~"}  # fmt: skip
    return names.get(type(node).__name__, type(node).__name__)


def compile_expression(text: str) -> Expression:
    """Compile ``text``; raise :class:`ExpressionError` (with a column) if it is not allowed."""
    if len(text) > MAX_SOURCE:
        raise ExpressionError(f"expression longer than {MAX_SOURCE} characters")
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SyntaxWarning)  # e.g. "1if x": ambiguous, refused like an error
            tree = ast.parse(stripped.rstrip(), mode="eval")
    except SyntaxWarning as exc:
        raise ExpressionError(f"not a valid expression: {exc}") from None
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.msg}", (exc.offset or 1) + lead) from None
    except ValueError as exc:  # e.g. a NUL byte
        raise ExpressionError(f"not a valid expression: {exc}") from None
    compiler = _Compiler(lead)
    run = compiler.compile(tree)
    return Expression(text, frozenset(compiler.names), run)


@dataclass(frozen=True)
class Template:
    """Text with ``{{ expression }}`` parts, e.g. ``"Your balance is {{ lookup.balance }} dollars"``."""

    source: str
    parts: tuple[str | Expression, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset().union(*(p.names for p in self.parts if isinstance(p, Expression)))

    def render(self, variables: Variables, escape: Callable[[str], str] | None = None) -> str:
        """The text with each part's value in place (``escape`` applied to values, e.g. for URLs)."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif (value := part.evaluate(variables)) is not None:
                text = value if isinstance(value, str) else _show(value)
                out.append(escape(text) if escape else text)
        return _bounded("".join(out))  # type: ignore[no-any-return]


def _show(value: Value) -> str:
    """How a value reads in text: whole numbers without ``.0``, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def compile_template(text: str) -> Template:
    parts: list[str | Expression] = []
    position = 0
    while (start := text.find("{{", position)) >= 0:
        end = text.find("}}", start + 2)
        if end < 0:
            raise ExpressionError("'{{' without its '}}'", start + 1)
        if start > position:
            parts.append(text[position:start])
        try:
            parts.append(compile_expression(text[start + 2 : end]))
        except ExpressionError as exc:
            column = start + 3 + (exc.column - 1 if exc.column else 0)
            raise ExpressionError(exc.message, column) from None
        position = end + 2
    if position < len(text):
        parts.append(text[position:])
    return Template(text, tuple(parts))
