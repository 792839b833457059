"""RFC 3261 §17 state machines on a fake clock: every state, every timer, retransmission instants."""

import pytest

from ivrd.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    State,
    TimedOut,
    Timers,
    Transmit,
    client_key,
    server_key,
)
from tests.sip.helpers import request, response_to

T = Timers()  # T1 0.5, T2 4, T4 5


def run_clock(tx, until: float):
    """Advance a fake clock from deadline to deadline; return (instant, outputs) of every firing."""
    fired = []
    while tx.deadline is not None and tx.deadline <= until:
        now = tx.deadline
        fired.append((now, tx.on_timer(now)))
    return fired


def transmit_instants(fired):
    return [now for now, out in fired if any(isinstance(o, Transmit) for o in out)]


# ---- client INVITE (§17.1.1) ---------------------------------------------------------------------


def test_client_invite_timer_a_doubles_and_timer_b_times_out():
    tx = ClientInviteTransaction(request(), reliable=False)
    assert tx.start(0.0) == [Transmit(tx.request)]
    fired = run_clock(tx, 100)
    assert transmit_instants(fired) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert fired[-1] == (32.0, [TimedOut("B")])
    assert tx.state is State.TERMINATED


def test_client_invite_over_tcp_only_timer_b():
    tx = ClientInviteTransaction(request(), reliable=True)
    tx.start(0.0)
    assert run_clock(tx, 100) == [(32.0, [TimedOut("B")])]


def test_client_invite_provisional_stops_retransmissions_and_timer_b():
    req = request()
    tx = ClientInviteTransaction(req, reliable=False)
    tx.start(0.0)
    ringing = response_to(req, 180)
    assert tx.on_response(ringing, 0.2) == [Deliver(ringing)]
    assert tx.state is State.PROCEEDING
    assert tx.deadline is None


def test_client_invite_failure_is_acked_then_timer_d():
    req = request()
    tx = ClientInviteTransaction(req, reliable=False)
    tx.start(0.0)
    busy = response_to(req, 486)
    out = tx.on_response(busy, 1.0)
    ack = out[0].message
    assert ack.method == "ACK" and ack.cseq.method == "ACK" and ack.to.tag == "tt"
    assert ack.top_via.branch == req.top_via.branch
    assert out[1] == Deliver(busy)
    assert tx.state is State.COMPLETED
    again = tx.on_response(busy, 2.0)  # a retransmitted 486 is ACKed again, not delivered
    assert [type(o) for o in again] == [Transmit]
    assert run_clock(tx, 100) == [(33.0, [])]
    assert tx.state is State.TERMINATED


def test_client_invite_2xx_goes_to_accepted_and_passes_retransmissions_up():
    req = request()
    tx = ClientInviteTransaction(req, reliable=False)
    tx.start(0.0)
    ok = response_to(req, 200)
    assert tx.on_response(ok, 0.1) == [Deliver(ok)]
    assert tx.state is State.ACCEPTED
    assert tx.on_response(ok, 0.6) == [Deliver(ok)]
    run_clock(tx, 100)
    assert tx.state is State.TERMINATED


# ---- client non-INVITE (§17.1.2) -----------------------------------------------------------------


def test_client_non_invite_timer_e_caps_at_t2_and_timer_f_times_out():
    tx = ClientNonInviteTransaction(request("BYE", to_tag="x"), reliable=False)
    tx.start(0.0)
    fired = run_clock(tx, 100)
    assert transmit_instants(fired) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired[-1] == (32.0, [TimedOut("F")])


def test_client_non_invite_proceeding_retransmits_every_t2():
    req = request("BYE", to_tag="x")
    tx = ClientNonInviteTransaction(req, reliable=False)
    tx.start(0.0)
    tx.on_response(response_to(req, 100), 0.1)
    assert tx.state is State.PROCEEDING
    fired = run_clock(tx, 10)
    assert transmit_instants(fired) == [0.5, 4.5, 8.5]


def test_client_non_invite_final_then_timer_k():
    req = request("BYE", to_tag="x")
    for reliable, k in ((False, 5.0), (True, 0.0)):
        tx = ClientNonInviteTransaction(req, reliable=reliable)
        tx.start(0.0)
        ok = response_to(req, 200)
        assert tx.on_response(ok, 1.0) == [Deliver(ok)]
        assert tx.on_response(ok, 1.5) == []  # absorbed in Completed
        assert run_clock(tx, 100) == [(1.0 + k, [])]
        assert tx.state is State.TERMINATED


# ---- server INVITE (§17.2.1, RFC 6026) -----------------------------------------------------------


def test_server_invite_failure_timer_g_until_ack_then_timer_i():
    req = request()
    tx = ServerInviteTransaction(req, reliable=False)
    trying = response_to(req, 100)
    assert tx.send_response(trying, 0.0) == [Transmit(trying)]
    assert tx.on_request(req, 0.1) == [Transmit(trying)]  # retransmitted INVITE: last provisional again
    busy = response_to(req, 486)
    tx.send_response(busy, 1.0)
    assert tx.state is State.COMPLETED
    fired = run_clock(tx, 9.0)
    assert transmit_instants(fired) == [1.5, 2.5, 4.5, 8.5]
    assert tx.on_request(req, 9.0) == [Transmit(busy)]
    ack = request("ACK", cseq_method="ACK", to_tag="tt")
    assert tx.on_request(ack, 9.5) == []
    assert tx.state is State.CONFIRMED
    assert run_clock(tx, 100) == [(14.5, [])]
    assert tx.state is State.TERMINATED


def test_server_invite_timer_h_when_no_ack():
    req = request()
    tx = ServerInviteTransaction(req, reliable=True)
    tx.send_response(response_to(req, 486), 0.0)
    assert run_clock(tx, 100) == [(32.0, [TimedOut("H")])]


def test_server_invite_2xx_accepted_absorbs_invite_and_ends_on_timer_l():
    req = request()
    tx = ServerInviteTransaction(req, reliable=False)
    ok = response_to(req, 200)
    tx.send_response(ok, 0.0)
    assert tx.state is State.ACCEPTED
    assert tx.on_request(req, 0.3) == []
    assert tx.send_response(ok, 0.5) == [Transmit(ok)]  # the TU's 2xx retransmission goes out
    assert run_clock(tx, 100) == [(32.0, [])]


# ---- server non-INVITE (§17.2.2) -----------------------------------------------------------------


def test_server_non_invite_absorbs_then_repeats_final_until_timer_j():
    req = request("OPTIONS")
    tx = ServerNonInviteTransaction(req, reliable=False)
    assert tx.on_request(req, 0.0) == []  # Trying: nothing to repeat yet
    ok = response_to(req, 200)
    tx.send_response(ok, 0.1)
    assert tx.on_request(req, 0.2) == [Transmit(ok)]
    assert run_clock(tx, 100) == [(32.1, [])]
    tcp = ServerNonInviteTransaction(req, reliable=True)
    tcp.send_response(ok, 0.0)
    assert run_clock(tcp, 100) == [(0.0, [])]


def test_a_server_invites_100_waits_200_ms_for_the_transaction_users_own_response():
    req = request()
    late = ServerInviteTransaction(req, reliable=False)
    assert late.start(0.0) == []
    ((at, (trying,)),) = run_clock(late, 10.0)
    assert at == 0.2 and isinstance(trying, Transmit) and trying.message.status == 100
    assert late.on_request(req, 0.7) == [trying]  # a retransmission hears it again
    hurried = ServerInviteTransaction(req, reliable=False)
    hurried.start(0.0)
    (first,) = hurried.on_request(req, 0.1)  # the caller retransmits before the 200 ms: told at once
    assert first.message.status == 100 and run_clock(hurried, 10.0) == []
    for status in (180, 200, 486):  # the TU in time: its response is the first, and no 100 follows it
        tx = ServerInviteTransaction(req, reliable=False)
        tx.start(0.0)
        response = response_to(req, status)
        assert tx.send_response(response, 0.05) == [Transmit(response)]
        assert all(o.message.status == status for _, out in run_clock(tx, 0.4) for o in out if isinstance(o, Transmit))


# ---- every state x every input: nothing outside the table has an effect --------------------------

MACHINES = [ClientInviteTransaction, ClientNonInviteTransaction, ServerInviteTransaction, ServerNonInviteTransaction]
INPUTS = ["1xx", "2xx", "final", "request", "ack", "send_1xx", "send_2xx", "send_final",
          *(f"timer_{t}" for t in "ABDEFGHIJKLM"), "timer_trying"]  # fmt: skip


def table_of(machine):
    return machine(request(), reliable=False)._table()


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.__name__)
def test_inputs_outside_the_table_are_absorbed_in_every_state(machine):
    req = request()
    table = table_of(machine)
    for state in State:
        for name in INPUTS:
            if (state, name) in table:
                continue
            tx = machine(req, reliable=False)
            tx.state = state
            assert tx._dispatch(name, 1.0, response_to(req, 200)) == []
            assert tx.state is state


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.__name__)
def test_terminated_is_final(machine):
    assert not [key for key in table_of(machine) if key[0] is State.TERMINATED]


# ---- matching (§17.1.3, §17.2.3) -----------------------------------------------------------------


def test_server_matching_ack_and_cancel_find_their_invite():
    invite = request()
    ack = request("ACK", cseq_method="ACK", to_tag="tt")
    cancel = request("CANCEL")
    assert server_key(ack) == server_key(invite)
    assert server_key(cancel) != server_key(invite)
    assert server_key(cancel, "INVITE") == server_key(invite)
    assert server_key(request(branch="z9hG4bK2")) != server_key(invite)


def test_server_matching_rfc2543_fallback_without_magic_cookie():
    invite = request(branch="old1")
    retransmission = request(branch="old1")
    ack = request("ACK", branch="old1", cseq_method="ACK", to_tag="tt")
    assert server_key(invite)[0] == "rfc2543"
    assert server_key(retransmission) == server_key(invite) == server_key(ack)
    assert server_key(request(branch="old1", cseq=2)) != server_key(invite)
    assert server_key(request(branch="old1", from_tag="other")) != server_key(invite)


def test_client_matching_uses_branch_and_cseq_method():
    req = request("BYE", to_tag="x")
    assert client_key(response_to(req, 200)) == client_key(req) == ("z9hG4bK1", "BYE")
