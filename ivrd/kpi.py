"""The contact center's numbers over a period, from the call records (``ivrd calls --kpi``): per queue,
per agent and for the whole center.

- service level: answered within the queue's ``service_level`` seconds, of those answered or abandoned
  (short abandons, under ``short_abandon``, left out: the usual definition, and the metrics' own);
- ASA: the mean wait of those answered; abandonment: abandoned (short ones left out) of those offered;
- AHT: the mean of talk + hold + wrap-up of those answered;
- FCR: of the calls an agent gave a disposition, those disposed resolved (``kpi.resolved``) whose caller
  did not call again within ``kpi.repeat_window``;
- CSAT: the mean score (1-5) of the surveys answered; callers who hung up or gave no score are counted
  apart (``surveyed``), never as a score.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .config import QueueConfig

ROWS = ("SELECT queue, agent, outcome, wait, talk, hold, wrap_up, disposition, repeated, csat FROM calls "
        "WHERE queue IS NOT NULL AND started >= ? AND started < ?")  # fmt: skip


@dataclass(slots=True)
class Figures:
    """Sums over one queue's, one agent's or the center's calls; the rates come from them."""

    offered: int = 0
    answered: int = 0
    in_time: int = 0
    abandoned: int = 0  # short abandons not counted
    waited: float = 0.0  # the answered calls' waits
    handled: float = 0.0  # the answered calls' talk + hold + wrap-up
    disposed: int = 0
    resolved: int = 0  # disposed resolved, and not called again about
    surveyed: int = 0
    scored: int = 0  # of those, the ones with a score
    scores: int = 0  # their sum

    @property
    def service_level(self) -> float | None:
        return self.in_time / (self.answered + self.abandoned) if self.answered + self.abandoned else None

    @property
    def asa(self) -> float | None:
        return self.waited / self.answered if self.answered else None

    @property
    def abandonment(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    @property
    def aht(self) -> float | None:
        return self.handled / self.answered if self.answered else None

    @property
    def fcr(self) -> float | None:
        return self.resolved / self.disposed if self.disposed else None

    @property
    def csat(self) -> float | None:
        return self.scores / self.scored if self.scored else None


def figures(rows: Iterable[Mapping[str, object]], queues: Mapping[str, QueueConfig],
            resolved: frozenset[str]) -> dict[tuple[str, str], Figures]:  # fmt: skip
    """``("queue", name)``, ``("agent", id)`` and ``("center", "")`` -> their figures. A queue the
    configuration no longer has counts with the embedded default targets."""
    found: dict[tuple[str, str], Figures] = {}
    default = QueueConfig()
    for row in rows:
        queue, agent, outcome = str(row["queue"]), row["agent"], row["outcome"]
        targets = queues.get(queue, default)
        wait = _number(row["wait"])
        keys = [("center", ""), ("queue", queue)] + ([("agent", str(agent))] if agent else [])
        for key in keys:
            f = found.setdefault(key, Figures())
            if key[0] != "agent":
                f.offered += 1
                f.abandoned += outcome == "abandoned" and wait >= targets.short_abandon
            if outcome == "agent":
                f.answered += 1
                f.in_time += wait <= targets.service_level
                f.waited += wait
                f.handled += sum(_number(row[k]) for k in ("talk", "hold", "wrap_up"))
            if row["disposition"] is not None:
                f.disposed += 1
                f.resolved += row["disposition"] in resolved and row["repeated"] is None
            score = row["csat"]
            if score is not None:
                f.surveyed += 1
                if score != "none":
                    f.scored += 1
                    f.scores += int(str(score))
    return found


def read(connection: sqlite3.Connection, since: float, until: float, queues: Mapping[str, QueueConfig],
         resolved: frozenset[str]) -> dict[tuple[str, str], Figures]:  # fmt: skip
    return figures(connection.execute(ROWS, (since, until)), queues, resolved)


def table(found: Mapping[tuple[str, str], Figures]) -> str:
    """The figures for a person, 80 columns: the center first, then each queue, then each agent."""
    head = f"{'':<22}{'offered':>8}{'SL':>7}{'ASA':>7}{'aband.':>8}{'AHT':>7}{'CSAT':>6}{'FCR':>7}{'disp.':>7}"
    lines = [head]
    order = sorted(found, key=lambda key: ({"center": 0, "queue": 1, "agent": 2}[key[0]], key[1]))
    for kind, name in order:
        f = found[(kind, name)]
        label = "center" if kind == "center" else f"{kind} {name}"
        offered = str(f.offered) if kind != "agent" else "-"
        lines.append(f"{label[:22]:<22}{offered:>8}{_share(f.service_level):>7}{_seconds(f.asa):>7}"
                     f"{_share(f.abandonment):>8}{_seconds(f.aht):>7}{_score(f.csat):>6}{_share(f.fcr):>7}"
                     f"{f.disposed:>7}")  # fmt: skip
    return "\n".join(lines)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"
