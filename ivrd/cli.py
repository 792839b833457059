"""The ``ivrd`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

from . import __version__
from .config import Config, ConfigError, load_config
from .logs import setup
from .server import Daemon

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivrd", description="Voice IVR and call-routing server.")
    parser.add_argument("--version", action="version", version=f"ivrd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("-c", "--config", type=Path, help="configuration file (default: the embedded defaults)")
    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("config", type=Path)
    return parser


def _load(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        _load(args.config)
        print(f"{args.config}: ok")
        return 0
    config = _load(args.config)
    setup(config.log.level)

    async def serve() -> None:
        await Daemon(config).serve()

    try:
        uvloop.run(serve())
    except OSError as exc:  # a listener that cannot bind: say which, no traceback
        print(f"ivrd: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
