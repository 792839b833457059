"""The RFC 4475 / RFC 5118 messages in ../shared/sip-torture, with their labels."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

TORTURE_DIR = Path(__file__).resolve().parents[2] / "shared" / "sip-torture"


@dataclass(frozen=True)
class Case:
    file: str
    section: str
    expected: str  # valid, invalid, valid-syntax, invalid-semantics, tolerate, n/a

    @property
    def data(self) -> bytes:
        return (TORTURE_DIR / self.file).read_bytes()


def cases() -> list[Case]:
    table = TORTURE_DIR / "CLASSIFICATION.tsv"
    if not table.exists():
        return []
    with table.open() as f:
        rows = [row for row in csv.reader(f, delimiter="\t") if row and not row[0].startswith("#")]
    return [Case(row[0], row[1], row[2]) for row in rows]
