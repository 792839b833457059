"""What every speech engine offers: a model loaded once, a recognizer per utterance.

Audio is 16-bit signed little-endian PCM at 8 kHz, the rate of a G.711 call. A recognizer is
used by one thread at a time; an engine's methods may be called from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SAMPLE_RATE = 8000


class AsrError(Exception):
    """A model that cannot be loaded, or a grammar the engine cannot use."""


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    confidence: float  # 0-1
    start: float  # seconds from the start of the utterance
    end: float


@dataclass(frozen=True, slots=True)
class Alternative:
    """A less likely reading of the same speech (n-best), with its confidence (0-1)."""

    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Result:
    """A final result: the text, its confidence (0-1), the words with their own, and the next best
    readings when the engine was asked for them."""

    text: str
    confidence: float
    words: tuple[Word, ...] = ()
    alternatives: tuple[Alternative, ...] = ()


class Recognizer(Protocol):
    def accept(self, pcm: bytes) -> str | None:
        """Take more audio; the partial text so far when the engine has one."""

    def finish(self) -> Result:
        """The utterance is over: the final result (text "" when nothing was recognized)."""


class Engine(Protocol):
    name: str
    language: str
    # How much of the line before the speech its recognizer is given, in ms. A decoder that takes the
    # utterance whole normalizes its features over all of it, and more of the line's own noise makes
    # that better; a streaming one adapts as it goes, and noise before the words is only more to mishear.
    lead_ms: int

    def recognizer(self, phrases: Sequence[str] = ()) -> Recognizer:
        """A recognizer for one utterance: one of ``phrases`` (a grammar), or free speech when empty."""

    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        """The words of ``phrases`` the model cannot recognize (reported when flows load)."""

    def close(self) -> None:
        """Release what the engine holds (worker processes)."""
