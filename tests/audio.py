"""Caller audio for tests, made with the real tools: espeak-ng speech and sox-synthesized DTMF."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np

from ivrd.media.dtmf import COLUMNS, KEYPAD, ROWS


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A call's recording: the caller (left) and what they heard (right)."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 2, 2)
        both = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return both[0::2].copy(), both[1::2].copy()


def speech(text: str, folder: Path, voice: str = "en-us", speed: int = 175) -> np.ndarray:
    """``text`` spoken by espeak-ng (``speed`` in words a minute), as 8 kHz 16-bit mono samples."""
    raw, out = folder / f"speech-{voice}.wav", folder / f"speech-{voice}-8k.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
    return read_wav(out)


def sox_tone(digit: str, seconds: float, folder: Path, gain_db: float = -6.0) -> np.ndarray:
    """The DTMF pair of ``digit`` synthesized by sox."""
    r = next(i for i, row in enumerate(KEYPAD) if digit in row)
    low, high = ROWS[r], COLUMNS[KEYPAD[r].index(digit)]
    out = folder / f"tone-{ord(digit)}.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-b", "16", "-c", "1", str(out), "synth", str(seconds),
                    "sine", str(low), "sine", str(high), "channels", "1", "gain", str(gain_db)],
                   check=True, capture_output=True)  # fmt: skip
    return read_wav(out)


def with_tones(base: np.ndarray, digits: str, folder: Path, *, every: float = 0.8, start: float = 0.5) -> np.ndarray:
    """``base`` with the tones of ``digits`` mixed in (120 ms each, ``every`` seconds apart)."""
    out = base.astype(np.int32)
    needed = int((start + every * len(digits) + 0.5) * 8000)
    if len(out) < needed:
        out = np.concatenate([out, np.zeros(needed - len(out), dtype=np.int32)])
    for i, digit in enumerate(digits):
        tone = sox_tone(digit, 0.12, folder)
        at = int((start + i * every) * 8000)
        out[at : at + len(tone)] += tone
    return np.clip(out, -32768, 32767).astype(np.int16)


def tone_level(samples: np.ndarray, rate: int, hz: float) -> float:
    """How much of the signal's energy is within 20 Hz of ``hz`` (0-1)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 20].sum() / max(spectrum.sum(), 1e-9))


def syllables(frames: int, loudness: float = 8000.0, rate: int = 8000) -> np.ndarray:
    """A voice-like stand-in: a 300 Hz tone that swells and fades four times a second, as syllables do
    (a steady tone is a line's noise to the endpointer, not a caller)."""
    t = np.arange(frames * rate // 50) / rate
    return (np.sin(2 * np.pi * 300 * t) * loudness * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)


def noise_frames(rms: float, frames: int, seed: int = 1) -> list[np.ndarray]:
    """White noise at ``rms``, as 20 ms frames of 8 kHz audio."""
    samples = np.random.default_rng(seed).normal(0, rms, 160 * frames).round().astype(np.int16)
    return list(samples.reshape(frames, 160))


def speech_over(line: list[np.ndarray], loudness: float) -> list[np.ndarray]:
    """:func:`syllables` spoken over each frame of ``line``."""
    voice = syllables(len(line), loudness).astype(np.float64)
    return [(f + voice[i * 160 : (i + 1) * 160]).astype(np.int16) for i, f in enumerate(line)]
