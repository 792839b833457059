"""The ``ivrd`` command: its arguments; each command's module is imported only when it runs."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from . import __version__
from .records import OUTCOMES

# command -> (module under ivrd.commands, its function taking the parsed arguments)
COMMANDS = {"run": ("daemon", "run"), "check": ("flows", "check"), "simulate": ("flows", "simulate"),
            "test": ("flows", "test"), "graph": ("flows", "graph"), "status": ("console", "through_api"),
            "agent": ("console", "through_api"), "hangup": ("console", "through_api"),
            "reload": ("console", "through_api"), "fetch-model": ("fetch", "fetch"), "calls": ("calls", "calls")}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivrd", description="Voice IVR and call-routing server.")
    parser.add_argument("--version", action="version", version=f"ivrd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("-c", "--config", type=Path, help="configuration file (default: the embedded defaults)")
    check = commands.add_parser("check", help="check a configuration file (and its flows) or a flows directory")
    check.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="ivrd.yaml, or a flows directory")
    sim = commands.add_parser("simulate", help="walk through a flow in the terminal, without a phone")
    sim.add_argument("flow", help="the flow's name (its file name without .yaml)")
    where = sim.add_mutually_exclusive_group()
    where.add_argument("--flows", type=Path, help="the flows directory (default: the one in -c, else etc/flows)")
    where.add_argument("-c", "--config", type=Path, help="take the flows directory from this configuration")
    sim.add_argument("--fixtures", type=Path, help="answers for lookups, by URL (YAML), instead of the network")
    sim.add_argument("--caller", default="+15555550123", help="the calling number (default: %(default)s)")
    sim.add_argument("--dialed", default="100", help="the dialed number (default: %(default)s)")
    sim.add_argument("--at", type=_moment, help="the time the call comes, as the flow's calendars see it: "
                     "2026-12-07 10:00 (this machine's zone, as the daemon's clock), or with an offset "
                     "(2026-12-07T10:00-05:00); default: now")
    test = commands.add_parser("test", help="run the flow tests (tests/*.yaml beside the flows), with step coverage")
    test.add_argument("dir", type=Path, nargs="?", metavar="DIR", help="the flows directory (default: the one in -c, "
                      "else etc/flows)")
    test.add_argument("-c", "--config", type=Path, help="take the flows from this configuration, and check their "
                      "queues and transfer targets against it")
    test.add_argument("--tests", type=Path, help="the test files' directory (default: DIR/tests)")
    test.add_argument("-k", dest="only", help="only the tests whose name contains this")
    test.add_argument("--min-coverage", type=float, metavar="PERCENT", help="fail when the tests reach fewer of "
                      "the flows' steps")
    graph = commands.add_parser("graph", help="draw a flow (Graphviz): steps, what they say, and where each goes")
    graph.add_argument("flow", help="the flow's name (its file name without .yaml)")
    where = graph.add_mutually_exclusive_group()
    where.add_argument("--flows", type=Path, help="the flows directory (default: the one in -c, else etc/flows)")
    where.add_argument("-c", "--config", type=Path, help="take the flows directory from this configuration")
    graph.add_argument("-o", "--output", type=Path, help="the picture: .svg, .png, .pdf, or .dot for Graphviz's "
                       "text (default: SVG on standard output)")
    graph.add_argument("--no-coverage", action="store_true", help="do not run the flow tests to mark the steps "
                       "they miss")
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument("-c", "--config", type=Path, help="the daemon's configuration (its http address, port, "
                        "token, certificate; default: the embedded defaults)")
    remote.add_argument("--url", help="the daemon's API instead, e.g. http://10.0.0.5:9460")
    remote.add_argument("--token", default=os.environ.get("IVRD_TOKEN"), help="the API's bearer token (default: "
                        "IVRD_TOKEN, else http.token of -c)")
    status = commands.add_parser("status", parents=[remote], help="the running daemon: calls, queues, agents")
    status.add_argument("--watch", nargs="?", type=float, const=2.0, metavar="SECONDS", help="again and again "
                        "(every 2 s unless given), until Ctrl-C")
    status.add_argument("--json", action="store_true", help="the API's status document")
    agent = commands.add_parser("agent", parents=[remote], help="log an agent in (available) or out (away)")
    agent.add_argument("agent", help="the agent's id")
    agent.add_argument("state", choices=("available", "away"))
    agent.add_argument("--reason", default="", help="why away (a break, lunch, training)")
    agent.add_argument("--json", action="store_true")
    hangup = commands.add_parser("hangup", parents=[remote], help="end a call in progress (its id, or SIP Call-ID)")
    hangup.add_argument("call")
    commands.add_parser("reload", parents=[remote], help="read the configuration and flows again (as SIGHUP)")
    fetch = commands.add_parser("fetch-model", help="download, verify and unpack a Vosk model for asr.models")
    fetch.add_argument("url", help="the model archive (zip or tar), e.g. from https://alphacephei.com/vosk/models")
    fetch.add_argument("--sha256", required=True, help="the archive's SHA-256, as its publisher gives it")
    fetch.add_argument("--to", type=Path, required=True, help="the new model directory")
    calls = commands.add_parser("calls", help="search the call records, newest first")
    source = calls.add_mutually_exclusive_group()
    source.add_argument("-c", "--config", type=Path, help="the daemon's configuration (its calls.records)")
    source.add_argument("--db", type=Path, help="the records database (default: calls.db here)")
    calls.add_argument("--since", type=_when, help="from this time: 2026-11-24, 2026-11-24T09:30, or 30m, 2h, 7d ago")
    calls.add_argument("--until", type=_when, help="before this time (same forms)")
    calls.add_argument("--caller", help="the calling number, exactly")
    calls.add_argument("--outcome", choices=OUTCOMES)
    calls.add_argument("--queue")
    calls.add_argument("--text", help="words the caller said, anything in their path through the flows, or in the "
                                      "agent's wrap-up note")
    calls.add_argument("--disposition", help="what the agent said of the call at wrap-up, exactly")
    calls.add_argument("--limit", type=int, default=50, help="at most this many (default: %(default)s)")
    calls.add_argument("--json", action="store_true", help="one JSON object per record, every field")
    calls.add_argument("--kpi", action="store_true", help="instead of the calls: service level, ASA, abandonment, "
                       "AHT, CSAT and FCR per queue and agent over --since/--until (default: the last 24 hours)")
    return parser


def _moment(text: str) -> float:
    """A moment on the command line: ISO 8601, local time unless it carries an offset."""
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time like 2026-12-07 10:00, got {text!r}") from None


def _when(text: str) -> float:
    """A time on the command line: ISO 8601 (local time unless it says otherwise) or an age (30m, 2h, 7d)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return time.time() - int(text[:-1]) * units[text[-1]]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        expected = "expected 2026-11-24, 2026-11-24T09:30 or an age like 2h"
        raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    module, function = COMMANDS[args.command]
    code: int = getattr(importlib.import_module(f"ivrd.commands.{module}"), function)(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
