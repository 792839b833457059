"""Structured logs: one logfmt line per event (``ts=… level=… event=… key=value …``)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

_NEEDS_QUOTES = frozenset(' ="\\\n\t')


def _quote(value: Any) -> str:
    text = str(value)
    if text and not any(c in _NEEDS_QUOTES for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        parts = [f"ts={ts}", f"level={record.levelname.lower()}", f"event={_quote(record.getMessage())}"]
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
