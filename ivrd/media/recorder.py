"""Recording a call's audio to a WAV file without touching the disk on the event loop.

A call's recording is stereo: the caller on the left, what they heard on the right (prompts, hold
music, the agent), so each side can be listened to, and transcribed, on its own. A voicemail message
is mono. While a recording is paused (a card number being read out), silence is written in its place,
and the paused spans are kept for the call's record.

Frames are gathered in memory and handed, about once a second, to the daemon's disk executor
(one thread, so one file's writes stay in order). ``wave`` rewrites the header on every write,
so the file on disk is always a valid WAV of everything written so far. :meth:`Recorder.close`
queues the last frames and the close; the call awaits it on every way out.
"""

from __future__ import annotations

import asyncio
import re
import time
import wave
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from .g711 import Samples

FLUSH_BYTES = 16000  # half a second of 8 kHz 16-bit stereo audio, a second of mono
FRAME_SECONDS = 0.02
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def recording_path(folder: Path, call_id: str, started: float) -> Path:
    """A file name from the time and the Call-ID (which the peer chose: only safe characters kept)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    safe = _UNSAFE.sub("_", call_id)[:64].strip("._") or "call"
    return folder / f"{stamp}-{safe}.wav"


class Recorder:
    """See the module docstring. ``channels``: 1 (a message) or 2 (a call: :meth:`add_pair`)."""

    def __init__(self, path: Path, executor: Executor, *, channels: int = 1) -> None:
        self.path = path
        self.channels = channels
        self._executor = executor
        self._buffer = bytearray()
        self._wav: wave.Wave_write | None = None
        self._closing: asyncio.Future[None] | None = None
        self.frames = 0
        self.paused_spans: list[list[float]] = []  # [from, to] in seconds of the recording; to None: still paused
        self._paused = False

    @property
    def seconds(self) -> float:
        """How long the recording is so far."""
        return round(self.frames * FRAME_SECONDS, 2)

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self, paused: bool) -> bool:
        """Silence from now on (True), or the audio again; False when it already was so."""
        if paused == self._paused:
            return False
        self._paused = paused
        at = self.seconds
        if paused:
            self.paused_spans.append([at, at])
        else:
            self.paused_spans[-1][1] = at
        return True

    def add(self, samples: Samples) -> None:
        """One frame of a mono recording."""
        self._take(b"\0" * (2 * len(samples)) if self._paused else samples.astype("<i2").tobytes())

    def add_pair(self, left: Samples, right: Samples) -> None:
        """One frame of a stereo recording: the caller, and what they heard."""
        if self._paused:
            self._take(b"\0" * (4 * len(left)))
            return
        both = np.empty(2 * len(left), dtype="<i2")
        both[0::2], both[1::2] = left, right
        self._take(both.tobytes())

    def _take(self, data: bytes) -> None:
        self._buffer += data
        self.frames += 1
        if self._paused:
            self.paused_spans[-1][1] = self.seconds
        if len(self._buffer) >= FLUSH_BYTES:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            self._executor.submit(self._write, chunk)

    def _open(self) -> wave.Wave_write:
        if self._wav is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - open for as long as the call lasts
            self._wav.setnchannels(self.channels)
            self._wav.setsampwidth(2)
            self._wav.setframerate(8000)
        return self._wav

    def _write(self, chunk: bytes) -> None:
        self._open().writeframes(chunk)

    def _close(self, chunk: bytes) -> None:
        wav = self._open()
        if chunk:
            wav.writeframes(chunk)
        wav.close()

    def close(self) -> asyncio.Future[None]:
        """Write what is left and close the file; the same future however often it is called."""
        if self._closing is None:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            self._closing = asyncio.wrap_future(self._executor.submit(self._close, chunk))
        return self._closing
