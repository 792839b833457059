"""G.711 against ITU-T G.711 / G.191 reference values, and the properties every codec table must have."""

import numpy as np
import pytest

from ivrd.media import g711

ALL = np.arange(-32768, 32768, dtype=np.int16)


@pytest.mark.parametrize(
    ("codec", "code", "linear"),
    [
        # μ-law: 0x00/0x80 are the extremes, 0xFF/0x7F both zero; A-law: 0xD5/0x55 the smallest steps.
        ("PCMU", 0x00, -32124), ("PCMU", 0x80, 32124), ("PCMU", 0xFF, 0), ("PCMU", 0x7F, 0),
        ("PCMU", 0xEF, 132), ("PCMU", 0x6F, -132),
        ("PCMA", 0xD5, 8), ("PCMA", 0x55, -8), ("PCMA", 0xAA, 32256), ("PCMA", 0x2A, -32256),
        ("PCMA", 0xC5, 264), ("PCMA", 0xE5, 1056),
    ],
)  # fmt: skip
def test_decode_reference_values(codec, code, linear):
    assert g711.decode(bytes([code]), codec)[0] == linear


@pytest.mark.parametrize(
    ("codec", "linear", "code"),
    [("PCMU", 0, 0xFF), ("PCMU", -1, 0x7F), ("PCMU", 32767, 0x80), ("PCMU", -32768, 0x00),
     ("PCMA", 0, 0xD5), ("PCMA", -1, 0x55), ("PCMA", 32767, 0xAA), ("PCMA", -32768, 0x2A)],
)  # fmt: skip
def test_encode_reference_values(codec, linear, code):
    assert g711.encode(np.array([linear], dtype=np.int16), codec) == bytes([code])


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_every_code_survives_decode_then_encode(codec):
    codes = bytes(range(256))
    back = g711.encode(g711.decode(codes, codec), codec)
    differ = [c for c, b in zip(codes, back, strict=True) if c != b]
    assert differ == ([0x7F] if codec == "PCMU" else [])  # μ-law's negative zero comes back as +0


@pytest.mark.parametrize(("codec", "bound"), [("PCMU", 644), ("PCMA", 512)])
def test_encoding_is_monotonic_and_error_is_bounded(codec, bound):
    decoded = g711.decode(g711.encode(ALL, codec), codec).astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)
    assert np.abs(decoded - ALL).max() <= bound
    small = np.arange(-100, 101, dtype=np.int16)
    assert np.abs(g711.decode(g711.encode(small, codec), codec) - small).max() <= 8


@pytest.mark.parametrize(("source", "target"), [("PCMU", "PCMA"), ("PCMA", "PCMU")])
def test_transcoding_keeps_each_code_within_the_coarser_laws_step(source, target):
    codes = bytes(range(256))
    out = g711.transcode(codes, source, target)
    before = g711.decode(codes, source).astype(np.int32)
    after = g711.decode(out, target).astype(np.int32)
    # the error is at most one step of the target law at that level (about 1/16 of the value, 16 near 0)
    assert np.all(np.abs(after - before) <= np.maximum(np.abs(before) // 16, 16) + 8)
    quiet = g711.transcode(bytes([g711.SILENCE[source]]), source, target)
    assert abs(int(g711.decode(quiet, target)[0])) <= 8  # silence stays (near) silence


def test_same_law_is_relayed_untouched():
    payload = bytes(range(160))
    assert g711.transcode(payload, "PCMU", "PCMU") is payload

