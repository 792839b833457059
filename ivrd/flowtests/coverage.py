"""Which steps of a deployment's flows the tests reached, and where the others are written."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flows.loader import Deployment


@dataclass(frozen=True, slots=True)
class FlowCoverage:
    flow: str
    file: str
    steps: int
    missed: tuple[tuple[int, str], ...]  # (line, step) never entered by any test, in file order

    @property
    def reached(self) -> int:
        return self.steps - len(self.missed)


def coverage(deployment: Deployment, entered: Iterable[tuple[str, str]]) -> list[FlowCoverage]:
    """Each flow's steps against the (flow, step) pairs the tests entered."""
    seen = set(entered)
    found = []
    for name, flow in sorted(deployment.flows.items()):
        missed = tuple((at.at.line, step) for step, at in flow.steps.items() if (name, step) not in seen)
        found.append(FlowCoverage(name, flow.file, len(flow.steps), missed))
    return found


def percent(flows: Iterable[FlowCoverage]) -> float:
    """The share of all steps reached, in percent (100 when there are none)."""
    flows = list(flows)
    steps = sum(f.steps for f in flows)
    return 100.0 * sum(f.reached for f in flows) / steps if steps else 100.0


def report(flows: list[FlowCoverage]) -> list[str]:
    """Lines for people: one per flow, then every step no test reached, as file:line name."""
    lines = [f"coverage: {percent(flows):.0f}% of steps ("
             + ", ".join(f"{f.flow} {f.reached}/{f.steps}" for f in flows) + ")"]
    missed = [f"  {f.file}:{line} {step}" for f in flows for line, step in f.missed]
    if missed:
        lines.append("never reached by any test:")
        lines.extend(missed)
    return lines
