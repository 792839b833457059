"""ivrd check, simulate, test and graph: the flows without a running daemon."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from asr.base import AsrError
from flows.interpreter import CallInfo
from flows.loader import Deployment, load_deployment

from .. import flowtests
from .. import simulate as simulator
from ..config import Config, ConfigError, load_config
from ..flowset import BUILTIN
from ..flowtests.cases import TESTS_DIR
from ..flowtests.coverage import percent as coverage_percent
from ..flowtests.coverage import report as coverage_report
from ..media.player import load_wav
from ..pictures import FORMATS, PictureError, flow_dot, render
from ..progress import Stages, on_stream
from ..speech import Speech
from . import EXIT_CONFIG, report

NAMES_SHOWN = 12  # flows named in `ivrd check`'s answer
PROGRESS_DELAY = 0.5  # seconds of work before it shows its progress


def _load(flows: Path, **checks: Any) -> Deployment:
    """The flows under ``flows`` with their prompts (``checks`` as load_deployment takes them); how far the
    loading is on standard error when it takes a while."""
    stages = Stages(lambda stage, total: on_stream(sys.stderr, stage, total=total, unit="files",
                                                   delay=PROGRESS_DELAY))  # fmt: skip
    try:
        return load_deployment(flows, load_wav, progress=stages, **checks)
    finally:
        stages.end()


def flows_of(config: Config) -> Path:
    return Path(config.flows.dir) if config.flows.dir else BUILTIN


def check(args: argparse.Namespace) -> int:
    """Check configurations (with their flows) and flows directories (against the default speech models)."""
    failed = False
    for path in args.paths:
        try:
            config = Config() if path.is_dir() else load_config(path)
            speech = Speech(config.asr)
            speech.load()
            try:
                deployment = _load(path if path.is_dir() else flows_of(config),
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
            report(exc)
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
        flows = args.flows or (flows_of(load_config(args.config)) if args.config else Path("etc/flows"))
        deployment = _load(flows, unreachable_ok=unreachable_ok)
    except ConfigError as exc:
        return report(exc)
    if args.flow not in deployment.flows:
        print(f"ivrd: no flow {args.flow!r} in {flows} (flows: {', '.join(sorted(deployment.flows))})",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    return deployment


def simulate(args: argparse.Namespace) -> int:
    try:
        fixtures = simulator.load_fixtures(args.fixtures) if args.fixtures else None
    except ConfigError as exc:
        return report(exc)
    deployment = _deployment_of_flow(args)
    if isinstance(deployment, int):
        return deployment
    simulator.simulate(deployment, args.flow, CallInfo("simulated", args.caller, "", args.dialed), fixtures, at=args.at)
    return 0


def test(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config) if args.config else None
        flows = args.dir or (flows_of(config) if config else Path("etc/flows"))
        deployment = _load(flows, transfer_targets=config.flows.transfer_targets if config else None,
                           queues=config.routing.queues if config else None)  # fmt: skip
        suite = flowtests.suite_of(deployment, args.tests, only=args.only)
    except ConfigError as exc:
        return report(exc)
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


def graph(args: argparse.Namespace) -> int:
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
