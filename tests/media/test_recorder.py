import asyncio
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ivrd.media.recorder import FLUSH_BYTES, Recorder, recording_path


def test_frames_reach_the_file_in_order_and_close_writes_the_rest(tmp_path):
    frames = [np.full(160, i, dtype=np.int16) for i in range(130)]  # 2.6 s: two flushes, then a remainder

    async def record() -> Recorder:
        recorder = Recorder(tmp_path / "sub" / "call.wav", disk)
        for frame in frames:
            recorder.add(frame)
        await recorder.close()
        await recorder.close()  # closing twice is harmless
        return recorder

    with ThreadPoolExecutor(1) as disk:
        recorder = asyncio.run(record())
    with wave.open(str(recorder.path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert np.array_equal(data, np.concatenate(frames))
    assert 2 * FLUSH_BYTES < 130 * 320


def test_file_names_keep_only_safe_characters_of_the_call_id(tmp_path):
    path = recording_path(tmp_path, "../../etc/passwd;rm -rf /@x", 0.0)
    assert path.parent == tmp_path
    assert path.name == "19700101-000000-etc_passwd_rm_-rf_x.wav"
    assert recording_path(tmp_path, "...", 0.0).name == "19700101-000000-call.wav"


def test_a_calls_recording_keeps_each_side_on_its_channel_and_silence_while_paused(tmp_path):
    caller = [np.full(160, 100 + i, dtype=np.int16) for i in range(100)]
    heard = [np.full(160, -100 - i, dtype=np.int16) for i in range(100)]

    async def record() -> Recorder:
        recorder = Recorder(tmp_path / "call.wav", disk, channels=2)
        for i in range(100):
            if i == 30:
                assert recorder.pause(True) and not recorder.pause(True)  # pausing twice is once
            if i == 55:
                assert recorder.pause(False) and not recorder.pause(False)
            recorder.add_pair(caller[i], heard[i])
        await recorder.close()
        return recorder

    with ThreadPoolExecutor(1) as disk:
        recorder = asyncio.run(record())
    with wave.open(str(recorder.path)) as wav:
        assert wav.getnchannels() == 2
        both = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    left, right = both[0::2].reshape(100, 160), both[1::2].reshape(100, 160)
    kept = [i for i in range(100) if not 30 <= i < 55]
    assert all((left[i] == 100 + i).all() and (right[i] == -100 - i).all() for i in kept)
    assert not left[30:55].any() and not right[30:55].any()  # the paused half second: silence on both sides
    assert recorder.paused_spans == [[0.6, 1.1]]
