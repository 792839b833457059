"""Every RFC 4475 / RFC 5118 message through the parser, judged by its label."""

import pytest

from ivrd.sip.errors import ParseError
from ivrd.sip.message import parse_message
from tests.torture import TORTURE_DIR, cases

CASES = cases()
pytestmark = pytest.mark.skipif(not CASES, reason=f"torture corpus not found at {TORTURE_DIR}")


def _parse(data: bytes):
    message = parse_message(data)
    message.validate()
    return message


@pytest.mark.parametrize("case", [c for c in CASES if c.expected in ("valid", "valid-syntax")], ids=lambda c: c.file)
def test_valid_messages_parse_and_round_trip(case):
    message = _parse(case.data)
    again = _parse(message.to_bytes())
    assert list(again.headers) == [(n, v) for n, v in message.headers if n != "content-length"] + [
        ("content-length", str(len(message.body)))
    ]
    assert again.body == message.body


@pytest.mark.parametrize("case", [c for c in CASES if c.expected in ("invalid", "invalid-semantics")],
                         ids=lambda c: c.file)
def test_invalid_messages_are_refused_with_a_status(case):
    with pytest.raises(ParseError) as info:
        _parse(case.data)
    expected = 505 if case.file == "badvers.dat" else 400
    assert info.value.status == expected


def test_corpus_is_complete():
    labels = {c.expected for c in CASES}
    assert {"valid", "invalid", "valid-syntax", "invalid-semantics"} <= labels
    assert len(CASES) >= 60
