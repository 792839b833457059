"""The daemon's log lines: logfmt that the log's readers (and ops' tools) parse back to the same fields."""

from __future__ import annotations

import logging

from ivrd.logs import LogfmtFormatter
from tests.integration.logfmt import parse_line


def _record(created: float, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("ivrd.call", logging.WARNING, "", 0, "call.end", None, None)
    record.created, record.msecs = created, (created % 1) * 1000
    record.fields = fields
    return record


def test_a_line_holds_every_field_but_the_empty_ones_and_quotes_what_would_break_it():
    fields = {"plain": "bye", "spaced": "two words", "quoted": 'say "hi"', "slash": "a\\b", "equals": "a=b",
              "tab": "a\tb", "empty": "", "number": 1.5, "none": None}  # fmt: skip
    line = LogfmtFormatter().format(_record(1765000000.25, **fields))
    assert line.startswith("ts=2025-12-06T05:46:40.250Z level=warning event=call.end plain=bye ")
    assert 'empty="" ' in line and "none" not in line
    parsed = parse_line(line)
    assert {key: parsed[key] for key in fields if key != "none"} == {key: str(value) for key, value in fields.items()
                                                                    if value is not None}  # fmt: skip


def test_each_line_has_its_own_time_across_seconds():
    formatter = LogfmtFormatter()
    stamps = [parse_line(formatter.format(_record(created)))["ts"]
              for created in (1765000000.999, 1765000001.0, 1765000001.5, 1765000000.5)]  # fmt: skip
    assert stamps == ["2025-12-06T05:46:40.999Z", "2025-12-06T05:46:41.000Z", "2025-12-06T05:46:41.500Z",
                      "2025-12-06T05:46:40.500Z"]  # fmt: skip
