"""Conversations as text: each recorded call, once over, transcribed side by side (the caller's channel
and the other), its lines with word timings kept with the call's record and searchable.

The work runs in worker processes at the lowest scheduling class the kernel has (SCHED_IDLE): they
take only CPU time nothing else wants, so live calls never wait for them, and a busy day leaves a
backlog (``ivrd_transcription_backlog``) rather than late audio. What a paused recording holds in its
paused spans is silence, and is cut out again before the recognizer hears anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import wave
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from asr.transcribe import transcribe

from .logs import event
from .records import CallRecords, TranscriptLine

log = logging.getLogger("ivrd.transcription")
SIDES = ("caller", "agent")  # the recording's left and right channels


def _idle() -> None:
    """In each worker: the lowest priority there is (the daemon runs the audio)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: the nicest niceness at least
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    os.nice(19)


def transcribe_recording(path: str, model_dir: str | None, paused: Sequence[Sequence[float]]) -> list[TranscriptLine]:
    """In a worker: a call's stereo recording, each side's lines in time order."""
    with wave.open(path, "rb") as wav:
        channels, rate = wav.getnchannels(), wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, channels)
    lines = []
    for side, channel in zip(SIDES, samples.T, strict=False):
        audio = channel.copy()
        for start, end in paused:
            audio[int(start * rate) : int(end * rate)] = 0  # what was said while paused is never heard
        lines += [TranscriptLine(side, segment.start, segment.end, segment.text,
                                 json.dumps(segment.words, ensure_ascii=False))
                  for segment in transcribe(audio, model_dir)]  # fmt: skip
    return sorted(lines, key=lambda line: line.start)


class Transcription:
    """See the module docstring. ``model_dir``: the Vosk model of the calls' language (None: PocketSphinx's
    English)."""

    def __init__(self, records: CallRecords, *, workers: int, model_dir: str | None) -> None:
        self._records = records
        self._model_dir = model_dir
        # spawn: a fork of a process running threads and an event loop is not safe
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_idle)
        self._running: set[asyncio.Future[list[TranscriptLine]]] = set()
        self.done = 0
        self.failed = 0

    @property
    def backlog(self) -> int:
        """Recordings waiting for their turn or being transcribed."""
        return len(self._running)

    def submit(self, call: str, recording: Path, paused: Sequence[Sequence[float]]) -> None:
        """Transcribe ``recording`` (closed) of call ``call`` when a worker is free."""
        work = asyncio.get_running_loop().run_in_executor(self._pool, transcribe_recording, str(recording),
                                                          self._model_dir, [list(span) for span in paused])  # fmt: skip
        self._running.add(work)
        work.add_done_callback(lambda done: self._finished(call, done))

    def _finished(self, call: str, done: asyncio.Future[list[TranscriptLine]]) -> None:
        self._running.discard(done)
        if done.cancelled():  # the daemon is stopping: the recording stays, untranscribed
            return
        error = done.exception()
        if error is not None:
            self.failed += 1
            event(log, "transcription.failed", logging.WARNING, call=call, error=repr(error))
            return
        lines = done.result()
        self.done += 1
        self._records.add_transcript(call, lines)
        event(log, "transcription.done", call=call, lines=len(lines))

    async def close(self) -> None:
        """Stop: what is still waiting is not transcribed (its recording stays)."""
        for work in list(self._running):
            work.cancel()
        await asyncio.get_running_loop().run_in_executor(None, lambda: self._pool.shutdown(wait=True,
                                                                                           cancel_futures=True))
