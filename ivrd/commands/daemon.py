"""ivrd run: the daemon on a uvloop event loop."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

import uvloop

from asr.base import AsrError

from ..config import Config, ConfigError, load_config
from ..logs import setup
from ..records import RecordsError
from ..server import STRAY_GRACE, Daemon, StuckTasks
from . import EXIT_CONFIG, report


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


def run(args: argparse.Namespace) -> int:
    """The daemon, until it is stopped; the exit code."""
    try:
        config = load_config(args.config) if args.config else Config()
    except ConfigError as exc:
        return report(exc)
    setup(config.log.level)

    async def serve() -> None:
        await Daemon(config, args.config).serve()

    try:
        run_loop(serve())
    except ConfigError as exc:  # the flows, loaded before the listeners open
        return report(exc)
    except (AsrError, RecordsError) as exc:  # a speech model that does not load, records that cannot be kept
        print(f"ivrd: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:  # a listener that cannot bind: say which, no traceback
        print(f"ivrd: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
