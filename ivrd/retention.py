"""Keeping calls no longer than the deployment allows (``calls.keep_days``): the records of older calls
are deleted, and so are the recordings and voicemail messages written before then.

Files go by their age on disk, in the two folders the daemon writes them to, never by a path read from
the database: whatever the records say, nothing outside those folders is touched. The work runs off the
event loop, at start and then every hour.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Final

from .logs import event
from .records import CallRecords

log = logging.getLogger("ivrd.retention")

EVERY: Final = 3600.0  # seconds between passes
SUFFIXES: Final = (".wav",)  # what the daemon writes into those folders


def remove_older(folders: tuple[Path, ...], before: float) -> int:
    """Delete the files of ``folders`` (and below) last written before ``before``; how many went."""
    removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            try:
                if path.suffix in SUFFIXES and path.is_file() and path.stat().st_mtime < before:
                    path.unlink()
                    removed += 1
            except OSError as exc:  # gone meanwhile, or not ours to delete: the next pass tries again
                event(log, "retention.failed", logging.WARNING, path=str(path), error=str(exc))
    return removed


async def keep(days: float, records: CallRecords | None, folders: tuple[Path, ...], disk: Executor) -> None:
    """Delete what is older than ``days`` now and every hour, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        before = time.time() - days * 86400
        calls = await records.prune(before) if records is not None else 0
        files = await loop.run_in_executor(disk, remove_older, folders, before)
        if calls or files:
            event(log, "retention.removed", records=calls, files=files, days=days)
        await asyncio.sleep(EVERY)
