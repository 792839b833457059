"""The flows the daemon serves: loaded at start, reloaded on SIGHUP or when the files change.

A reload checks the new set as a whole, off the event loop, and only then swaps one reference;
calls in progress keep the :class:`~flows.loader.Deployment` they started with. A broken edit is
logged problem by problem and the old set goes on serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Collection
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import flows
from flows.loader import Deployment, PhraseCheck, load_deployment

from .logs import event
from .media.player import load_wav
from .progress import Stages, in_log
from .yaml_loader import ConfigError

log = logging.getLogger("ivrd.flows")
BUILTIN = Path(flows.__file__).parent / "builtin"


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when anything under ``directory`` is edited (names, sizes, modification times)."""
    found = []
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                stat = os.stat(os.path.join(root, name))
            except OSError:
                continue
            found.append((os.path.join(root, name), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


@dataclass(frozen=True)
class FlowSettings:
    """What the configuration says about the flows: where they are, and what they may name."""

    directory: Path | None  # None: the built-in flow
    transfer_targets: tuple[str, ...] = ()
    queues: Collection[str] = ()


class FlowSet:
    def __init__(self, settings: FlowSettings, *, check_phrases: PhraseCheck | None = None,
                 executor: Executor | None = None) -> None:  # fmt: skip
        self._check_phrases = check_phrases
        self.directory, self._load = self._loader(settings)
        self.builtin = settings.directory is None
        self._executor = executor
        self._lock = asyncio.Lock()
        self._seen: tuple[tuple[str, int, int], ...] = ()
        self.current: Deployment | None = None
        self.reloads = 0
        self.failed_reloads = 0

    def load(self) -> Deployment:
        """The first load, before the daemon serves (raises :class:`ConfigError`)."""
        self._seen = fingerprint(self.directory)
        started = time.monotonic()
        self.current = self._load()
        self._log_loaded(self.current, None, "start", time.monotonic() - started)
        return self.current

    def _loader(self, settings: FlowSettings) -> tuple[Path, Callable[[], Deployment]]:
        directory = settings.directory or BUILTIN

        def load() -> Deployment:
            # a large set's loading logs how far it is (flows.loading) once it takes more than a moment
            stages = Stages(lambda stage, total: in_log(log, "flows.loading", stage, total=total, unit="files"))
            try:
                return load_deployment(directory, load_wav, transfer_targets=settings.transfer_targets,
                                       queues=settings.queues, check_phrases=self._check_phrases,
                                       progress=stages)  # fmt: skip
            finally:
                stages.end()

        return directory, load

    async def reload(self, reason: str, settings: FlowSettings | None = None) -> bool:
        """Load the directory again (or the one ``settings`` name, with what they allow); swap it in if
        it is valid, settings and all. True when the new set serves."""
        loop = asyncio.get_running_loop()
        directory, load = self._loader(settings) if settings is not None else (self.directory, self._load)
        async with self._lock:
            seen = await loop.run_in_executor(self._executor, fingerprint, directory)
            if directory == self.directory:  # what the watcher compares against: only the directory in use
                self._seen = seen
            started = time.monotonic()
            try:
                fresh = await loop.run_in_executor(self._executor, load)
            except Exception as exc:  # whatever goes wrong, the running set keeps serving
                self.failed_reloads += 1
                if not isinstance(exc, ConfigError):
                    event(log, "flows.rejected", logging.ERROR, reason=reason, error=repr(exc),
                          serving=self.current.version if self.current else None)  # fmt: skip
                    return False
                for problem in exc.problems:
                    event(log, "flows.problem", logging.ERROR, where=f"{problem.file}:{problem.line}:{problem.column}",
                          problem=problem.message)  # fmt: skip
                event(log, "flows.rejected", logging.ERROR, reason=reason, problems=len(exc.problems),
                      serving=self.current.version if self.current else None)  # fmt: skip
                return False
            previous, self.current = self.current, fresh
            if settings is not None:
                self.directory, self._load, self.builtin = directory, load, settings.directory is None
                self._seen = seen
            self.reloads += 1
            self._log_loaded(fresh, previous, reason, time.monotonic() - started)
            return True

    async def watch(self, every: float) -> None:
        """Reload when the files change (checked every ``every`` seconds)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            now = await loop.run_in_executor(self._executor, fingerprint, self.directory)
            if now != self._seen:
                await self.reload("files changed")

    def _log_loaded(self, fresh: Deployment, previous: Deployment | None, reason: str, seconds: float) -> None:
        event(log, "flows.loaded", version=fresh.version, previous=previous.version if previous else None,
              count=len(fresh.flows), prompts=len(fresh.prompts), seconds=round(seconds, 3),
              flows=",".join(sorted(fresh.flows)), directory=str(self.directory), reason=reason,
              builtin=self.builtin)  # fmt: skip
