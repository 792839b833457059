"""The ``ivrd`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import textwrap
import time
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uvloop

from asr.base import AsrError
from flows.interpreter import CallInfo
from flows.loader import Deployment, load_deployment

from . import __version__, flowtests, kpi, remote
from .config import Config, ConfigError, load_config
from .flowset import BUILTIN
from .flowtests.cases import TESTS_DIR
from .flowtests.coverage import percent as coverage_percent
from .flowtests.coverage import report as coverage_report
from .logs import setup
from .media.player import load_wav
from .models import FetchError, fetch_model
from .pictures import FORMATS, PictureError, flow_dot, render
from .progress import Stages, on_stream
from .records import OUTCOMES, Query, RecordsError, connect, describe, find
from .server import STRAY_GRACE, Daemon, StuckTasks
from .simulate import load_fixtures, simulate
from .speech import Speech

EXIT_CONFIG = 2
NAMES_SHOWN = 12  # flows named in `ivrd check`'s answer
PROGRESS_DELAY = 0.5  # seconds of work before it shows its progress


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


def _calls(args: argparse.Namespace) -> int:
    config = Config()
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            return _report(exc)
        path = Path(config.calls.records)
    else:
        path = args.db or Path(config.calls.records)
    if not path.is_file():
        print(f"ivrd: no call records at {path}", file=sys.stderr)
        return 1
    if args.kpi:
        return _kpi(args, path, config)
    query = Query(since=args.since, until=args.until, caller=args.caller, outcome=args.outcome, queue=args.queue,
                  text=args.text, disposition=args.disposition, limit=args.limit)  # fmt: skip
    try:
        connection = connect(path, readonly=True)
        found = list(find(connection, query))
    except (RecordsError, sqlite3.Error) as exc:
        print(f"ivrd: {path}: {exc}", file=sys.stderr)
        return 1
    for record in found:
        print(json.dumps(record, ensure_ascii=False) if args.json else describe(record))
    return 0


def _kpi(args: argparse.Namespace, path: Path, config: Config) -> int:
    until = args.until if args.until is not None else time.time()
    since = args.since if args.since is not None else until - 86400
    try:
        found = kpi.read(connect(path, readonly=True), since, until, config.routing.queues,
                         frozenset(config.kpi.resolved))  # fmt: skip
    except (RecordsError, sqlite3.Error) as exc:
        print(f"ivrd: {path}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({f"{kind} {name}".strip(): {"offered": f.offered, "service_level": f.service_level,
                                                      "asa": f.asa, "abandonment": f.abandonment, "aht": f.aht,
                                                      "csat": f.csat, "surveyed": f.surveyed, "fcr": f.fcr,
                                                      "disposed": f.disposed}
                          for (kind, name), f in found.items()}))  # fmt: skip
    else:
        print(kpi.table(found))
    return 0


def _report(exc: ConfigError) -> int:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    return EXIT_CONFIG


def _load(flows: Path, **checks: Any) -> Deployment:
    """The flows under ``flows`` with their prompts (``checks`` as load_deployment takes them); how far the
    loading is on standard error when it takes a while."""
    stages = Stages(lambda stage, total: on_stream(sys.stderr, stage, total=total, unit="files",
                                                   delay=PROGRESS_DELAY))  # fmt: skip
    try:
        return load_deployment(flows, load_wav, progress=stages, **checks)
    finally:
        stages.end()


def _flows_of(config: Config) -> Path:
    return Path(config.flows.dir) if config.flows.dir else BUILTIN


def _check(paths: list[Path]) -> int:
    """Check configurations (with their flows) and flows directories (against the default speech models)."""
    failed = False
    for path in paths:
        try:
            config = Config() if path.is_dir() else load_config(path)
            speech = Speech(config.asr)
            speech.load()
            try:
                deployment = _load(path if path.is_dir() else _flows_of(config),
                                   transfer_targets=None if path.is_dir() else config.flows.transfer_targets,
                                   queues=None if path.is_dir() else config.routing.queues,
                                   check_phrases=speech.check_phrases)  # fmt: skip
            finally:
                speech.shutdown()
        except AsrError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed = True
            continue
        except ConfigError as exc:
            _report(exc)
            failed = True
            continue
        names = sorted(deployment.flows)
        listed = ", ".join(names[:NAMES_SHOWN]) + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN
                                                     else "")  # fmt: skip
        print(f"{path}: ok (flows {listed}; version {deployment.version})")
    return EXIT_CONFIG if failed else 0


def _deployment_of_flow(args: argparse.Namespace, *, unreachable_ok: bool = False) -> Deployment | int:
    """The deployment of ``--flows`` or ``-c`` (else etc/flows) holding flow ``args.flow``, or the exit code
    after saying why not."""
    try:
        flows = args.flows or (_flows_of(load_config(args.config)) if args.config else Path("etc/flows"))
        deployment = _load(flows, unreachable_ok=unreachable_ok)
    except ConfigError as exc:
        return _report(exc)
    if args.flow not in deployment.flows:
        print(f"ivrd: no flow {args.flow!r} in {flows} (flows: {', '.join(sorted(deployment.flows))})",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    return deployment


def _simulate(args: argparse.Namespace) -> int:
    try:
        fixtures = load_fixtures(args.fixtures) if args.fixtures else None
    except ConfigError as exc:
        return _report(exc)
    deployment = _deployment_of_flow(args)
    if isinstance(deployment, int):
        return deployment
    simulate(deployment, args.flow, CallInfo("simulated", args.caller, "", args.dialed), fixtures, at=args.at)
    return 0


def _test(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config) if args.config else None
        flows = args.dir or (_flows_of(config) if config else Path("etc/flows"))
        deployment = _load(flows, transfer_targets=config.flows.transfer_targets if config else None,
                           queues=config.routing.queues if config else None)  # fmt: skip
        suite = flowtests.suite_of(deployment, args.tests, only=args.only)
    except ConfigError as exc:
        return _report(exc)
    if not suite.results:
        named = f" named *{args.only}*" if args.only else ""
        print(f"ivrd: no flow tests in {args.tests or flows / TESTS_DIR}{named}", file=sys.stderr)
        return 1
    for result in suite.results:
        case = result.case
        print(f"{'FAIL' if result.failures else 'ok  '} {case.file}:{case.line} {case.name}")
        for failure in result.failures:
            print(textwrap.indent(str(failure), "  "))
    failed = len(suite.failed)
    print(f"{len(suite.results)} tests: {len(suite.results) - failed} passed, {failed} failed")
    print("\n".join(coverage_report(suite.coverage)))
    reached = coverage_percent(suite.coverage)
    if args.min_coverage is not None and reached < args.min_coverage:
        print(f"coverage {reached:.1f}% is under --min-coverage {args.min_coverage:g}%")
        return 1
    return 1 if failed else 0


def _graph(args: argparse.Namespace) -> int:
    fmt = args.output.suffix.lstrip(".").lower() if args.output else "svg"
    if fmt not in FORMATS:
        print(f"ivrd: {args.output}: expected a file ending in {', '.join('.' + f for f in FORMATS)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    deployment = _deployment_of_flow(args, unreachable_ok=True)
    if isinstance(deployment, int):
        return deployment
    try:
        picture = render(flow_dot(deployment, args.flow, coverage=not args.no_coverage), fmt)
    except PictureError as exc:
        print(f"ivrd: {exc}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_bytes(picture)
    else:
        sys.stdout.buffer.write(picture)
    return 0


def _remote(args: argparse.Namespace) -> int:
    """status, agent, hangup, reload: through the running daemon's API."""
    try:
        http = load_config(args.config).http if args.config else Config().http
    except ConfigError as exc:
        return _report(exc)
    daemon = remote.Daemon.of(http)
    if args.url:
        daemon = remote.Daemon(args.url.rstrip("/"), daemon.token, daemon.context)
    if args.token:
        daemon = remote.Daemon(daemon.url, args.token, daemon.context)
    try:
        if args.command == "status" and args.watch:
            try:
                remote.watch(daemon, max(args.watch, 0.5), lambda text: print(text, flush=True))
            except KeyboardInterrupt:
                return 0
        if args.command == "status":
            found = daemon.call("GET", "/status")
            print(json.dumps(found) if args.json else remote.status_text(found))
        elif args.command == "agent":
            view = daemon.call("POST", f"/agents/{quote(args.agent, safe='')}/state",
                               {"state": args.state, "reason": args.reason})  # fmt: skip
            print(json.dumps(view) if args.json else f"{view['id']}: {view['state']}"
                  + (f" ({view['reason']})" if view.get("reason") else ""))  # fmt: skip
        elif args.command == "hangup":
            daemon.call("DELETE", f"/calls/{quote(args.call, safe='')}")
            print(f"{args.call}: hanging up")
        else:
            done = daemon.call("POST", "/reload")
            print(f"reloaded: flows {done['flows']}")
    except remote.RemoteError as exc:
        print(f"ivrd: {exc}", file=sys.stderr)
        return 1
    return 0


def _fetch(args: argparse.Namespace) -> int:
    try:
        model = fetch_model(args.url, args.sha256, args.to)
    except FetchError as exc:
        print(f"ivrd: {exc}", file=sys.stderr)
        return 1
    print(f"{model}: a Vosk model; use it with, in ivrd.yaml:  asr: {{models: {{LANGUAGE: {model.resolve()}}}}}")
    return 0


def run_loop(serving: Coroutine[Any, Any, None]) -> None:
    """``serving`` on a uvloop event loop, as ``uvloop.run`` would, except that the daemon cancels what is
    left itself, within a bound (``uvloop.run`` waits for every task without one: a library's task stuck
    past its cancellation would keep the stopped daemon from exiting)."""
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serving)
    except StuckTasks:
        pass  # logged; they go with the process
    except BaseException:  # it did not start: what it started goes, within the same bound
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=STRAY_GRACE))
        raise
    else:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        return _check(args.paths)
    if args.command == "simulate":
        return _simulate(args)
    if args.command in ("status", "agent", "hangup", "reload"):
        return _remote(args)
    if args.command == "graph":
        return _graph(args)
    if args.command == "test":
        return _test(args)
    if args.command == "fetch-model":
        return _fetch(args)
    if args.command == "calls":
        return _calls(args)
    try:
        config = load_config(args.config) if args.config else Config()
    except ConfigError as exc:
        return _report(exc)
    setup(config.log.level)

    async def serve() -> None:
        await Daemon(config, args.config).serve()

    try:
        run_loop(serve())
    except ConfigError as exc:  # the flows, loaded before the listeners open
        return _report(exc)
    except (AsrError, RecordsError) as exc:  # a speech model that does not load, records that cannot be kept
        print(f"ivrd: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:  # a listener that cannot bind: say which, no traceback
        print(f"ivrd: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
