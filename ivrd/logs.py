"""Structured logs: one logfmt line per event (``ts=… level=… event=… key=value …``)."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

_NEEDS_QUOTES = re.compile(r'[ ="\\\n\t]')


def _quote(value: Any) -> str:
    text = value if type(value) is str else str(value)
    if text and _NEEDS_QUOTES.search(text) is None:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # a busy second's lines share the formatted part
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        parts = [f"ts={self._stamp}.{int(record.msecs):03d}Z", f"level={record.levelname.lower()}",
                 f"event={_quote(record.getMessage())}"]  # fmt: skip
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts.extend(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)
        if record.exc_info:
            parts.append(f"exception={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def setup(level: str) -> None:
    # The lines hold none of these; the logging HOWTO's "Optimization" section: not gathering them saves
    # a stack walk and three lookups on every line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def event(logger: logging.Logger, name: str, level: int = logging.INFO, /, **fields: Any) -> None:
    """Log event ``name`` with ``fields`` (None values are left out)."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})
