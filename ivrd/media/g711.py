"""G.711 μ-law and A-law (ITU-T G.711) with numpy lookup tables; no ``audioop``.

Decoding is one table lookup per byte; encoding is one lookup per sample in a 64 Ki table indexed
by the sample's 16-bit pattern. The tables are built once, at import, from the G.711 segment
rules, and tested against the ITU reference values.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Codec = Literal["PCMU", "PCMA"]
Samples = npt.NDArray[np.int16]

_BIAS = 0x84


def _ulaw_decode_table() -> Samples:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> Samples:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


def _bit_length(values: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    return np.where(values > 0, np.floor(np.log2(np.maximum(values, 1))).astype(np.int32) + 1, 0)


def _as_int16(indexes: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    return np.where(indexes >= 32768, indexes - 65536, indexes)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    # ITU-T G.191 ulaw_compress: 14-bit magnitude (ones' complement for negatives), bias 33.
    x = _as_int16(np.arange(65536, dtype=np.int32))
    absno = np.minimum(np.where(x < 0, (~x) >> 2, x >> 2) + 33, 0x1FFF)
    segno = _bit_length(absno >> 6) + 1
    code = ((8 - segno) << 4) | (0x0F - ((absno >> segno) & 0x0F))
    table: npt.NDArray[np.uint8] = np.where(x >= 0, code | 0x80, code).astype(np.uint8)
    return table


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    # ITU-T G.191 alaw_compress: 12-bit magnitude (ones' complement for negatives), segments of 16.
    x = _as_int16(np.arange(65536, dtype=np.int32))
    ix = np.where(x < 0, (~x) >> 4, x >> 4)
    exponent = np.maximum(_bit_length(ix) - 4, 0)
    code = np.where(ix > 15, ((ix >> np.maximum(exponent - 1, 0)) - 16) + (exponent << 4), ix)
    code = np.where(x >= 0, code | 0x80, code)
    return (code ^ 0x55).astype(np.uint8)


DECODE = {"PCMU": _ulaw_decode_table(), "PCMA": _alaw_decode_table()}
ENCODE = {"PCMU": _ulaw_encode_table(), "PCMA": _alaw_encode_table()}
SILENCE = {"PCMU": 0xFF, "PCMA": 0xD5}  # the code for 0 (μ-law 0xFF, A-law 0xD5)


def decode(payload: bytes, codec: Codec) -> Samples:
    """G.711 bytes to 16-bit linear samples."""
    return DECODE[codec][np.frombuffer(payload, dtype=np.uint8)]


def encode(samples: Samples, codec: Codec) -> bytes:
    """16-bit linear samples to G.711 bytes."""
    return ENCODE[codec][samples.astype(np.int16).view(np.uint16)].tobytes()


# μ-law <-> A-law one byte at a time (through linear, as G.711 Appendix tables do): bytes.translate tables.
_LAWS: tuple[tuple[Codec, Codec], ...] = (("PCMU", "PCMA"), ("PCMA", "PCMU"))
TRANSCODE = {(source, target): encode(DECODE[source][np.arange(256)], target) for source, target in _LAWS}


def transcode(payload: bytes, source: Codec, target: Codec) -> bytes:
    """One law's bytes in the other's (unchanged when they are the same law)."""
    return payload if source == target else payload.translate(TRANSCODE[(source, target)])
