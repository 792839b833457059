"""Recording a call's audio to a WAV file without touching the disk on the event loop.

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

from .g711 import Samples

FLUSH_BYTES = 16000  # one second of 8 kHz 16-bit audio
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def recording_path(folder: Path, call_id: str, started: float) -> Path:
    """A file name from the time and the Call-ID (which the peer chose: only safe characters kept)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    safe = _UNSAFE.sub("_", call_id)[:64].strip("._") or "call"
    return folder / f"{stamp}-{safe}.wav"


class Recorder:
    def __init__(self, path: Path, executor: Executor) -> None:
        self.path = path
        self._executor = executor
        self._buffer = bytearray()
        self._wav: wave.Wave_write | None = None
        self._closing: asyncio.Future[None] | None = None
        self.frames = 0

    def add(self, samples: Samples) -> None:
        self._buffer += samples.astype("<i2").tobytes()
        self.frames += 1
        if len(self._buffer) >= FLUSH_BYTES:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            self._executor.submit(self._write, chunk)

    def _open(self) -> wave.Wave_write:
        if self._wav is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - open for as long as the call lasts
            self._wav.setnchannels(1)
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
