"""Prompts and the per-call player, sans-IO.

A :class:`Clip` is decoded, resampled to 8 kHz and encoded into 20 ms G.711 frames once, when
it is loaded; calls share it and never re-encode. The :class:`Player` hands out one frame per
tick: the next frame of the prompt at the head of its queue, or silence (or nothing) when idle.
The RTP timestamp advances 160 per tick whatever is sent, so it stays continuous across prompts;
the marker bit flags the first packet of each talkspurt.
"""

from __future__ import annotations

import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
from scipy.signal import resample_poly

from .g711 import SILENCE, Codec, Samples, encode

RATE: Final = 8000
FRAME_SAMPLES: Final = 160  # 20 ms at 8 kHz
# Relayed frames held at most: the two calls' ticks are not in step, so one frame waits at times; more would
# only add delay (a backlog after a stall is dropped from the old end).
RELAY_FRAMES: Final = 2


class PromptError(ValueError):
    """A prompt file that cannot be read as audio."""


@dataclass(frozen=True, slots=True)
class Clip:
    """A prompt (or hold music, or a beep) decoded once: its 20 ms frames in each codec, ready to send."""

    name: str
    frames: dict[str, tuple[bytes, ...]]  # codec -> 20 ms frames

    @property
    def seconds(self) -> float:
        return len(next(iter(self.frames.values()))) * FRAME_SAMPLES / RATE


def prompt_from_samples(name: str, samples: Samples) -> Clip:
    """Frame and encode 8 kHz samples for both codecs (the last frame padded with silence)."""
    count = -(-len(samples) // FRAME_SAMPLES)
    padded = np.zeros(count * FRAME_SAMPLES, dtype=np.int16)
    padded[: len(samples)] = samples
    frames: dict[str, tuple[bytes, ...]] = {}
    for codec in ("PCMU", "PCMA"):
        data = encode(padded, codec)
        frames[codec] = tuple(data[i : i + FRAME_SAMPLES] for i in range(0, len(data), FRAME_SAMPLES))
    return Clip(name, frames)


def load_wav(path: Path) -> Clip:
    """Read a PCM WAV file (8-48 kHz, 8/16-bit, mono or stereo) into a prompt."""
    try:
        with path.open("rb") as file:
            return decode_wav(file, path.stem, str(path))
    except OSError as exc:
        raise PromptError(f"{path}: not a readable PCM WAV file ({exc})") from None


def decode_wav(source: BinaryIO, name: str, where: str) -> Clip:
    """A prompt from WAV data (a file, or a synthesizer's output); ``where`` names it in errors."""
    try:
        with wave.open(source, "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            raw = wav.readframes(wav.getnframes())
    except (EOFError, wave.Error) as exc:
        raise PromptError(f"{where}: not a readable PCM WAV file ({exc})") from None
    if width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) * 256
    else:
        raise PromptError(f"{where}: {8 * width}-bit samples; 8 or 16-bit PCM expected")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if not 8000 <= rate <= 48000:
        raise PromptError(f"{where}: sample rate {rate} Hz; 8000-48000 expected")
    if rate != RATE:
        common = gcd(rate, RATE)
        samples = resample_poly(samples, RATE // common, rate // common)
    return prompt_from_samples(name, np.clip(np.round(samples), -32768, 32767).astype(np.int16))


class Player:
    """The queue of prompts a call plays, one frame per tick."""

    def __init__(self, codec: Codec, *, idle_silence: bool = True) -> None:
        self.codec = codec
        self.idle_silence = idle_silence
        self._queue: deque[Clip] = deque()
        self._index = 0
        self._silence = bytes([SILENCE[codec]]) * FRAME_SAMPLES
        self._talking = False
        self.on_finished: Callable[[], None] | None = None  # the queue has played to its end
        self._relayed: deque[bytes] = deque(maxlen=RELAY_FRAMES)
        self.relaying = False  # bridged: the other side's audio is what this call hears

    @property
    def playing(self) -> Clip | None:
        return self._queue[0] if self._queue else None

    def play(self, prompt: Clip) -> None:
        self._queue.append(prompt)

    def stop(self) -> Clip | None:
        """Barge-in: drop what is playing and queued; returns the prompt that was cut."""
        cut = self.playing
        self._queue.clear()
        self._index = 0
        return cut

    def relay(self, frame: bytes) -> None:
        """A frame of the bridged party's audio, already in this player's codec; prompts go first."""
        self._relayed.append(frame)

    def next_frame(self) -> tuple[bytes | None, bool]:
        """``(payload, marker)`` for this tick; payload None means send nothing (idle, no silence)."""
        while self._queue:
            frames = self._queue[0].frames[self.codec]
            if self._index < len(frames):
                frame = frames[self._index]
                self._index += 1
                marker = not self._talking
                self._talking = True
                return frame, marker
            self._queue.popleft()
            self._index = 0
            if not self._queue and self.on_finished is not None:
                self.on_finished()  # after a stop(), nothing was left to finish: no call
        if self._relayed:
            marker = not self._talking
            self._talking = True
            return self._relayed.popleft(), marker
        self._talking = False
        if self.relaying:  # a frame the other side lost: theirs to conceal, not ours to fill
            return None, False
        return (self._silence if self.idle_silence else None), False


def _beep() -> Clip:
    t = np.arange(int(RATE * 0.3)) / RATE
    return prompt_from_samples("beep", (np.sin(2 * np.pi * 1000 * t) * 8000).astype(np.int16))


BEEP = _beep()
"""The tone before a message is recorded: 1 kHz for 300 ms."""
