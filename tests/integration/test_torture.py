"""Every RFC 4475 / RFC 5118 message sent to a running daemon: the answer (or the silence) it gets.

Responses go where RFC 3261 §18.2.2 says: 127.0.0.1 (the received= address) at the top Via's
port. ``None`` means no answer can be built: the message is a response (a UAS has no transaction
for it), the headers a response must echo (§8.2.6.2) are missing, or its Via or CSeq is broken (the
response could not be routed or matched). A broken From, To or Call-ID is echoed as it came, in a 400.
"""

from __future__ import annotations

import pytest

from ivrd.sip.message import Response
from tests.integration.daemon import daemon_running
from tests.integration.torture_client import exchange
from tests.torture import TORTURE_DIR, cases

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not cases(), reason=f"no torture corpus at {TORTURE_DIR}")]

EXPECTED: dict[str, int | set[int | None] | None] = {
    # valid: a sensible answer
    "wsinv.dat": 481,  # To already carries a tag: an in-dialog request for a dialog we do not have
    "intmeth.dat": 501, "esc01.dat": 200, "escnull.dat": 405, "esc02.dat": 501, "lwsdisp.dat": 200,
    "longreq.dat": 200, "dblreq.dat": 405, "semiuri.dat": 200, "transports.dat": 200, "mpart01.dat": 405,
    "unreason.dat": None, "noreason.dat": None, "inv2543.dat": 200,
    # invalid: 400 (505 for the version), or dropped when the echoed headers are broken too
    "badinv01.dat": None, "clerr.dat": 400, "ncl.dat": 400, "scalar02.dat": None, "scalarlg.dat": None,
    "quotbal.dat": 400, "ltgtruri.dat": 400, "lwsruri.dat": 400, "lwsstart.dat": 400, "trws.dat": 400,
    "escruri.dat": 400, "baddate.dat": 400, "regbadct.dat": 400, "badaspec.dat": 400, "baddn.dat": 400,
    "badvers.dat": None, "mismatch01.dat": 400, "mismatch02.dat": 400, "bigcode.dat": None,
    # syntactically valid, semantically refused
    "badbranch.dat": 200, "insuf.dat": None, "unkscm.dat": 416, "novelsc.dat": 416, "unksm2.dat": 405,
    "bext01.dat": 420, "invut.dat": 415, "regaut01.dat": 405, "multi01.dat": 400, "mcl01.dat": 400,
    "bcast.dat": None, "zeromf.dat": 483, "cparam01.dat": 405, "cparam02.dat": 405, "regescrt.dat": 405,
    "sdp01.dat": 406,
    "test.dat": {400, 415, None},  # unlabelled
    "rfc5118/ipv6-good.dat": 405, "rfc5118/ipv6-bad.dat": 400, "rfc5118/port-ambiguous.dat": 405,
    "rfc5118/port-unambiguous.dat": 405, "rfc5118/via-received-param-with-delim.dat": 481,
    "rfc5118/via-received-param-no-delim.dat": 200,
    "rfc5118/ipv6-in-sdp.dat": 488, "rfc5118/ipv4-mapped-ipv6.dat": 488,  # G.726 only: no common codec
    "rfc5118/mult-ip-in-header.dat": 481, "rfc5118/mult-ip-in-sdp.dat": 200,
    "rfc5118/ipv6-correct-abnf-2-colons.dat": 200,
    "rfc5118/ipv6-bug-abnf-3-colons.dat": {200, 400, None},  # "tolerate": refusing is allowed
}  # fmt: skip


def _end_call(ok: Response, daemon_port: int) -> int | None:
    """ACK a 200 to INVITE, then BYE the call; the status of the BYE's answer."""
    common = (
        f"From: {ok.headers.get('from')}\r\nTo: {ok.headers.get('to')}\r\nCall-ID: {ok.call_id}\r\n"
        f"Max-Forwards: 70\r\nContent-Length: 0\r\n"
    )
    target = ok.contacts[0].uri
    for method, cseq in (("ACK", ok.cseq.number), ("BYE", ok.cseq.number + 1)):
        data = (f"{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{method}{cseq}\r\n"
                f"CSeq: {cseq} {method}\r\n{common}\r\n").encode()  # fmt: skip
        responses = exchange(data, daemon_port, wait=0.3 if method == "ACK" else 3.0)
    return responses[-1].status if responses else None


def test_every_torture_message_gets_its_answer():
    all_cases = cases()
    assert {c.file for c in all_cases} == set(EXPECTED), "the corpus and this table disagree"
    got: dict[str, int | None] = {}
    with daemon_running() as daemon:
        for case in all_cases:
            expected = EXPECTED[case.file]
            silent = expected is None or (isinstance(expected, set) and None in expected)
            responses = exchange(case.data, daemon.port, wait=1.0 if silent else 5.0)
            final = [r for r in responses if r.status >= 200]
            got[case.file] = final[-1].status if final else None
            if got[case.file] == 200 and final[-1].cseq.method == "INVITE":
                assert _end_call(final[-1], daemon.port) == 200, case.file
        probe = exchange(
            b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKprobe\r\n"
            b"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: after-torture\r\n"
            b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", daemon.port)
    wrong = {
        name: (status, EXPECTED[name]) for name, status in got.items()
        if not (status in EXPECTED[name] if isinstance(EXPECTED[name], set) else status == EXPECTED[name])
    }  # fmt: skip
    assert not wrong, f"(got, expected): {wrong}"
    assert [r.status for r in probe] == [200], "the daemon must still answer after the corpus"
