"""ivrd status, agent, hangup and reload: the running daemon, through its HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
from urllib.parse import quote

from .. import remote
from ..config import Config, ConfigError, load_config
from . import report


def through_api(args: argparse.Namespace) -> int:
    """status, agent, hangup, reload: through the running daemon's API."""
    try:
        http = load_config(args.config).http if args.config else Config().http
    except ConfigError as exc:
        return report(exc)
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
