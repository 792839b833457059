"""Flow tests: scripted callers against the daemon's own flow engine, with step coverage (``ivrd test``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from flows.loader import Deployment

from .cases import TESTS_DIR, Case, load_cases, test_files
from .coverage import FlowCoverage, coverage
from .runner import Outcome, play
from .verdict import Failure, judge


@dataclass(frozen=True, slots=True)
class Result:
    case: Case
    outcome: Outcome
    failures: list[Failure]


@dataclass(frozen=True, slots=True)
class Suite:
    results: list[Result]
    coverage: list[FlowCoverage]

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.failures]


def run_suite(deployment: Deployment, cases: list[Case], now: float | None = None) -> Suite:
    """Every case against ``deployment`` (a case without ``at`` calls ``now``), and the steps they reached."""
    now = time.time() if now is None else now
    results = []
    for case in cases:
        outcome = play(deployment, case, now)
        results.append(Result(case, outcome, judge(case, outcome)))
    entered = (pair for result in results for pair in result.outcome.steps)
    return Suite(results, coverage(deployment, entered))


def suite_of(deployment: Deployment, tests: Path | None = None, *, only: str | None = None) -> Suite:
    """The tests beside ``deployment``'s flows (or in ``tests``; those named with ``only`` in them), run;
    ConfigError when they do not load."""
    cases = load_cases(test_files(tests or deployment.directory / TESTS_DIR), deployment.flows)
    return run_suite(deployment, [c for c in cases if only is None or only in c.name])


__all__ = ["Case", "Failure", "FlowCoverage", "Result", "Suite", "run_suite", "suite_of"]
