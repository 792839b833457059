"""A flow as a Graphviz picture (DOT text): steps as boxes with what the caller hears, edges by why.

Edges are labelled with the key and phrases of a menu choice, a branch's condition, an opening-hours
state, a queue's reason for leaving, a lookup or transfer that failed, a fallback; other flows
(``flow:``, ``subflow:``, a queue's ``survey:``) are folders, queue steps are filled blue, steps no
test reached are filled amber and dashed, steps nothing leads to are red. ``dot -Tsvg`` draws it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Iterator

from .loader import END, Flow
from .schema import (
    OVERFLOW_REASONS,
    Branch,
    Collect,
    GoFlow,
    Goto,
    Hangup,
    Hours,
    Listen,
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
    Transfer,
    Wait,
)

LABEL_WIDTH = 36
LABEL_LINES = 4
QUEUE_COLOUR = "#cfe3ff"
UNCOVERED_COLOUR = "#ffd88a"
UNREACHABLE_COLOUR = "#ff9d9d"
END_NODE = "__end__"


def dot(flow: Flow, *, uncovered: Collection[str] = (), reachable: Collection[str] | None = None) -> str:
    """The DOT text of ``flow``; ``uncovered`` steps no test reached, steps outside ``reachable`` (when
    given) nothing leads to."""
    lines = [f"digraph {_quote(flow.name)} {{",
             f"  graph [label={_quote(_title(flow))}, labelloc=t, fontname=\"Helvetica\", rankdir=TB];",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=10];',
             f'  {END_NODE} [label="end", shape=circle, fillcolor="#dddddd", width=0.4, fixedsize=true];']  # fmt: skip
    others: set[str] = set()
    for name, step_at in flow.steps.items():
        step = step_at.step
        attributes = {"label": _label(name, step, step_at.at.line)}
        if isinstance(step, Queue):
            attributes["fillcolor"] = QUEUE_COLOUR
        if name in uncovered:
            attributes.update(fillcolor=UNCOVERED_COLOUR, style="rounded,filled,dashed")
        if reachable is not None and name not in reachable:
            attributes.update(fillcolor=UNREACHABLE_COLOUR, style="rounded,filled,bold", color="#b00000")
        lines.append(f"  {_quote(name)} [{_attributes(attributes)}];")
        for target, label, style in _edges(flow, name, step):
            if target.startswith("flow:"):
                others.add(target)
            lines.append(f"  {_quote(name)} -> {_quote(target)} [{_attributes({'label': label, 'style': style})}];")
    lines.extend(f'  {_quote(other)} [label={_quote(other[5:] + " flow")}, shape=folder, fillcolor="#eeeeee"];'
                 for other in sorted(others))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _edges(flow: Flow, name: str, step: Step) -> Iterator[tuple[str, str, str]]:
    """(target, label, style) for each way out of ``step``; "flow:NAME" targets are other flows."""
    following = flow.following[name]
    nxt = getattr(step, "next", None)
    then = nxt.name if nxt is not None else following
    target = END_NODE if then == END else then
    if isinstance(step, Menu):
        for choice in step.choices:
            said = ", ".join(f'"{p}"' for p in choice.say[:3]) + (" ..." if len(choice.say) > 3 else "")
            label = " / ".join(part for part in (choice.key.key if choice.key else "", said) if part)
            yield choice.goto.name, label, "solid"
    elif isinstance(step, (Collect, Listen)):
        yield target, "digits" if isinstance(step, Collect) else "heard", "solid"
    elif isinstance(step, Branch):
        for case in step.branch:
            yield case.goto.name, _wrap(case.condition.expression.source, 28), "solid"
        otherwise = step.otherwise.name if step.otherwise else following
        yield END_NODE if otherwise == END else otherwise, "else", "solid"
    elif isinstance(step, Hours):
        yield step.open.name, "open", "solid"
        yield step.closed.name, "closed", "solid"
        if step.holiday is not None:
            yield step.holiday.name, "holiday", "solid"
    elif isinstance(step, Goto):
        yield step.goto.name, "", "solid"
    elif isinstance(step, GoFlow):
        yield f"flow:{step.flow.name}", "continues in", "bold"
    elif isinstance(step, SubFlow):
        yield f"flow:{step.subflow.name}", "runs", "bold"
        yield target, "back", "solid"
    elif isinstance(step, (Return, Hangup)):
        yield END_NODE, "return" if isinstance(step, Return) else "", "solid"
    elif isinstance(step, Lookup):
        yield target, "found", "solid"
        if step.on_failure is not None:
            yield step.on_failure.name, "failed", "dashed"
    elif isinstance(step, Transfer):
        yield target, "transfer failed", "dashed"
    elif isinstance(step, Queue):
        for reason, left in sorted(step.left.items()):
            yield left.name, reason, "dashed"
        if set(step.left) != set(OVERFLOW_REASONS):
            yield target, "left" if step.left else "left the queue", "dashed"
        if step.survey is not None:
            yield f"flow:{step.survey.name}", "agent hung up: survey", "bold"
        else:
            yield END_NODE, "agent", "solid"
    else:
        yield target, "", "solid"
    if isinstance(step, (Menu, Collect, Listen)):
        fallback = step.fallback.name if step.fallback else END_NODE
        yield fallback, f"after {step.tries} tries", "dashed"


def _label(name: str, step: Step, line: int) -> str:
    kind, detail = _describe(step)
    text = _wrap(detail, LABEL_WIDTH) if detail else ""
    return f"{name}\n{kind} (line {line})" + (f"\n{text}" if text else "")


def _describe(step: Step) -> tuple[str, str]:
    """The step's kind, and what it says or does, for people."""
    if isinstance(step, Play):
        return "play", _prompt(step.play)
    if isinstance(step, Say):
        return "say", step.say.template.source
    if isinstance(step, Menu):
        return "menu", _prompt(step.menu) if step.menu else ""
    if isinstance(step, Collect):
        return f"collect into {step.into.name if step.into else ''}", _prompt(step.collect) if step.collect else ""
    if isinstance(step, Listen):
        return f"listen into {step.into.name if step.into else ''}", _prompt(step.listen) if step.listen else ""
    if isinstance(step, SetVariables):
        return "set", ", ".join(f"{k} = {v.expression.source}" for k, v in step.set.items())
    if isinstance(step, Lookup):
        return f"lookup into {step.into.name}", step.lookup.template.source
    if isinstance(step, Hours):
        return "hours", step.hours.name
    if isinstance(step, Record):
        return "record", _prompt(step.record) if step.record else ""
    if isinstance(step, Transfer):
        return "transfer", step.transfer.uri
    if isinstance(step, Queue):
        skills = f" skills {step.skills.template.source}" if step.skills else ""
        return f"queue {step.queue.name}", skills.strip()
    if isinstance(step, Wait):
        return "wait", f"{step.wait:g} s"
    if isinstance(step, Hangup):
        return "hang up", "" if step.hangup is True else _prompt(step.hangup)
    if isinstance(step, Recording):
        return f"recording {step.recording}", ""
    if isinstance(step, (GoFlow, SubFlow)):
        target = step.flow if isinstance(step, GoFlow) else step.subflow
        return f"{'flow' if isinstance(step, GoFlow) else 'subflow'} {target.name}", ""
    return type(step).__name__.lower(), ""


def _prompt(prompt: Prompt) -> str:
    return " ".join(part.play or (part.say.template.source if part.say else "") for part in prompt.parts)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width, max_lines=LABEL_LINES, placeholder=" ..."))


def _title(flow: Flow) -> str:
    description = flow.spec.description
    return f"{flow.name}: {description}" if description else flow.name


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _attributes(attributes: dict[str, str]) -> str:
    return ", ".join(f"{key}={_quote(value)}" for key, value in attributes.items() if value)
