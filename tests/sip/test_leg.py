"""The leg state table, over every (state, input) pair."""

from __future__ import annotations

import itertools

import pytest

from ivrd.sip.leg import TRANSITIONS, CallLeg, LegInput, LegState, LegStateError, advance
from ivrd.sip.transaction import ServerInviteTransaction
from tests.sip.helpers import request
from tests.sip.test_ua import FLOW

EXPECTED = {
    (LegState.INCOMING, LegInput.ANSWER): LegState.ANSWERED,
    (LegState.ANSWERED, LegInput.ACK): LegState.CONFIRMED,
    (LegState.CALLING, LegInput.ANSWERED): LegState.CONFIRMED,
    (LegState.ANSWERED, LegInput.BYE): LegState.ENDING,
    (LegState.CONFIRMED, LegInput.BYE): LegState.ENDING,
    **{(state, LegInput.END): LegState.ENDED for state in LegState if state is not LegState.ENDED},
}


def leg_in(state: LegState) -> CallLeg:
    invite = request()
    return CallLeg(invite, FLOW, ServerInviteTransaction(invite, reliable=False), "tag", None, None, state)


@pytest.mark.parametrize(("state", "happened"), list(itertools.product(LegState, LegInput)))
def test_every_state_and_input(state: LegState, happened: LegInput) -> None:
    leg = leg_in(state)
    if (state, happened) in EXPECTED:
        assert advance(leg, happened) is EXPECTED[state, happened] is leg.state
    else:
        with pytest.raises(LegStateError):
            advance(leg, happened)
        assert leg.state is state  # refused: nothing changed


def test_the_table_is_the_one_described():
    assert TRANSITIONS == EXPECTED
