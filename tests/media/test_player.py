import wave

import numpy as np
import pytest

from ivrd.media import g711
from ivrd.media.pacer import Pacer
from ivrd.media.player import FRAME_SAMPLES, Player, PromptError, load_wav, prompt_from_samples


def tone(seconds, rate=8000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_prompt_frames_are_20ms_in_both_laws_and_padded():
    prompt = prompt_from_samples("t", tone(0.05))
    assert {len(frames) for frames in prompt.frames.values()} == {3}
    assert all(len(f) == FRAME_SAMPLES for f in prompt.frames["PCMA"])
    assert prompt.frames["PCMU"][-1][-1] == 0xFF  # padding is μ-law silence
    assert prompt.seconds == pytest.approx(0.06)


def test_player_marks_talkspurts_and_goes_silent_when_idle():
    player = Player("PCMU")
    prompt = prompt_from_samples("t", tone(0.04))
    player.play(prompt)
    player.play(prompt)
    frames = [player.next_frame() for _ in range(6)]
    assert [m for _, m in frames] == [True, False, False, False, False, False]
    assert frames[4][0] == frames[5][0] == b"\xff" * 160
    assert Player("PCMA", idle_silence=False).next_frame() == (None, False)


def test_barge_in_stops_the_prompt_and_the_queue():
    player = Player("PCMA")
    prompt = prompt_from_samples("t", tone(1.0))
    player.play(prompt)
    player.play(prompt)
    player.next_frame()
    assert player.stop() is prompt
    assert player.next_frame() == (b"\xd5" * 160, False)
    player.play(prompt)
    assert player.next_frame()[1] is True  # a new talkspurt after barge-in


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 1), (22050, 2), (48000, 2)])
def test_wav_prompts_are_resampled_to_8khz(tmp_path, rate, channels):
    path = tmp_path / "p.wav"
    samples = np.repeat(tone(0.5, rate, 440.0), channels)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    prompt = load_wav(path)
    assert len(prompt.frames["PCMU"]) == 25
    decoded = np.concatenate([g711.decode(f, "PCMU") for f in prompt.frames["PCMU"][2:-2]]).astype(float)
    spectrum = np.abs(np.fft.rfft(decoded))
    peak_hz = np.argmax(spectrum) * 8000 / len(decoded)
    assert abs(peak_hz - 440) < 15  # the tone survives resampling at its pitch


def test_unreadable_prompts_say_why(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not a wave")
    with pytest.raises(PromptError, match=r"bad\.wav"):
        load_wav(bad)


def test_pacer_does_not_drift_over_10000_frames():
    pacer = Pacer(start=1000.0, interval=0.02)
    rng = np.random.default_rng(7)
    for _ in range(10_000):
        late = float(rng.uniform(0.0, 0.015))  # each tick runs up to 15 ms late
        assert pacer.tick(pacer.deadline + late) == 0
    assert pacer.index == 10_000
    assert pacer.deadline == 1000.0 + 10_000 * 0.02  # computed from the index: no accumulated error


def test_pacer_skips_frames_after_a_stall():
    pacer = Pacer(start=0.0, interval=0.02)
    pacer.tick(0.0)
    assert pacer.tick(0.105) == 4  # frames 1-4 were missed; frame 5 goes now
    assert pacer.deadline == pytest.approx(0.12)


def test_relayed_audio_plays_after_prompts_and_gaps_stay_empty():
    player = Player("PCMU")
    player.relaying = True
    prompt = prompt_from_samples("p", np.zeros(FRAME_SAMPLES, dtype=np.int16))
    player.play(prompt)
    player.relay(b"a" * 160)
    assert player.next_frame() == (prompt.frames["PCMU"][0], True)  # a prompt (a whisper) goes first
    assert player.next_frame() == (b"a" * 160, False)
    assert player.next_frame() == (None, False)  # the other side lost a frame: nothing is made up
    for frame in (b"b" * 160, b"c" * 160, b"d" * 160):  # a backlog is cut from its old end
        player.relay(frame)
    assert [player.next_frame()[0] for _ in range(3)] == [b"c" * 160, b"d" * 160, None]
