"""Digest authentication: both algorithms, and every way a credential can be wrong."""

from __future__ import annotations

import pytest

from ivrd.sip.auth import DigestAuth, digest_response, parse_digest

PASSWORDS = {"1001": "s3cret"}


def answer(auth: DigestAuth, challenge: str, *, user="1001", password="s3cret", nc="00000001", uri="sip:ivrd",
           realm=None) -> str:  # fmt: skip
    params = parse_digest(challenge)
    assert params is not None
    algorithm, nonce = params["algorithm"], params["nonce"]
    response = digest_response(algorithm, user=user, realm=params["realm"], password=password, method="REGISTER",
                               uri=uri, nonce=nonce, nc=nc, cnonce="abc", qop="auth")  # fmt: skip
    return (f'Digest username="{user}", realm="{realm or params["realm"]}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm={algorithm}, cnonce="abc", qop=auth, nc={nc}')


def test_parsing_credentials():
    assert parse_digest('Digest username="a\\"b", nc=00000001, qop=auth') == {"username": 'a"b', "nc": "00000001",
                                                                               "qop": "auth"}  # fmt: skip
    assert parse_digest('Basic dXNlcjpwYXNz') is None
    assert parse_digest('Digest username="a", username="b"') is None  # which one? neither
    assert parse_digest('Digest username="unterminated') is None


@pytest.mark.parametrize("which", [0, 1])
def test_both_algorithms_prove_the_account_sha256_offered_first(which):
    auth = DigestAuth("ivrd", b"k" * 32)
    challenges = auth.challenges(100.0)
    assert ["SHA-256" in challenges[0], "MD5" in challenges[1]] == [True, True]
    assert auth.verify("REGISTER", answer(auth, challenges[which]), 101.0, PASSWORDS.get).user == "1001"


def test_wrong_password_and_unknown_user_fail_alike():
    auth = DigestAuth("ivrd", b"k" * 32)
    (challenge, _) = auth.challenges(0.0)
    wrong = auth.verify("REGISTER", answer(auth, challenge, password="guess"), 1.0, PASSWORDS.get)
    unknown = auth.verify("REGISTER", answer(auth, challenge, user="9999"), 1.0, PASSWORDS.get)
    assert (wrong.user, unknown.user, wrong.stale, unknown.stale) == (None, None, False, False)
    assert (wrong.reason, unknown.reason) == ("wrong password", "unknown user")  # for the log only


def test_forged_stale_replayed_and_foreign_realm_nonces_are_refused():
    auth = DigestAuth("ivrd", b"k" * 32)
    other = DigestAuth("ivrd", b"x" * 32)  # another secret: another process, or a forger
    (challenge, _) = other.challenges(0.0)
    assert auth.verify("REGISTER", answer(auth, challenge), 1.0, PASSWORDS.get).reason == "unknown nonce"
    (challenge, _) = auth.challenges(0.0)
    stale = auth.verify("REGISTER", answer(auth, challenge), 301.0, PASSWORDS.get)
    assert (stale.user, stale.stale) == (None, True)
    good = answer(auth, challenge)
    assert auth.verify("REGISTER", good, 5.0, PASSWORDS.get).user == "1001"
    assert auth.verify("REGISTER", good, 6.0, PASSWORDS.get).reason == "replayed nonce count"
    assert auth.verify("REGISTER", answer(auth, challenge, nc="00000002"), 7.0, PASSWORDS.get).user == "1001"
    foreign = answer(auth, challenge, realm="elsewhere", nc="00000003")
    assert auth.verify("REGISTER", foreign, 8.0, PASSWORDS.get).reason == "malformed credentials"
