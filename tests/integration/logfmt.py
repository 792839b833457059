"""Reading the daemon's structured log: one logfmt line per event."""

from __future__ import annotations

import re

_FIELD = re.compile(r'([\w.]+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_line(line: str) -> dict[str, str]:
    fields = {}
    for key, raw in _FIELD.findall(line):
        fields[key] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
    return fields


def events(log: str, name: str) -> list[dict[str, str]]:
    """Every event called ``name`` in the log, as field dictionaries."""
    parsed = (parse_line(line) for line in log.splitlines())
    return [fields for fields in parsed if fields.get("event") == name]
