"""ivrd calls: the call records searched, or the center's numbers over a period."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

from .. import kpi
from ..config import Config, ConfigError, load_config
from ..records import Query, RecordsError, connect, describe, find
from . import report


def calls(args: argparse.Namespace) -> int:
    config = Config()
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            return report(exc)
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
