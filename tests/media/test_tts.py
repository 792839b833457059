"""Text to speech with the real espeak-ng: audio out, cached, one synthesis for concurrent requests."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ivrd.media import g711
from ivrd.media.tts import Speaker, TtsError
from tests.integration.peers import require


@pytest.fixture(autouse=True)
def _espeak():
    require("espeak-ng")


def test_text_becomes_8khz_frames_and_is_synthesized_once():
    async def scenario():
        speaker = Speaker()
        first = await speaker.say("Your balance is forty two dollars")
        together = await asyncio.gather(*(speaker.say("Your position in the queue is three") for _ in range(3)))
        again = await speaker.say("Your balance is forty two dollars")
        return speaker, first, together, again

    speaker, first, together, again = asyncio.run(scenario())
    assert again is first and together[0] is together[1] is together[2]
    assert speaker.synthesized == 2
    assert 1.0 < first.seconds < 5.0
    audio = np.concatenate([g711.decode(f, "PCMU") for f in first.frames["PCMU"]]).astype(float)
    assert np.sqrt(np.mean(audio**2)) > 300  # speech, not silence


@pytest.mark.parametrize(
    ("text", "voice", "why"),
    [("hi", "en; rm -rf /", "bad voice"), ("x" * 1001, None, "longer than"), ("hi", "xx-no-such-voice", "failed")],
)
def test_what_cannot_be_spoken_raises_tts_error(text, voice, why):
    with pytest.raises(TtsError, match=why):
        asyncio.run(Speaker().say(text, voice))


def test_a_text_that_looks_like_an_option_is_spoken_not_obeyed():
    prompt = asyncio.run(Speaker().say("--version"))
    assert prompt.seconds > 0.3
