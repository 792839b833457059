"""The legs in a dialog, by dialog id, and how a leg ends: shared by the UAS and the UAC."""

from __future__ import annotations

from .dialog import DialogId
from .events import CallEnded
from .layer import SipLayer
from .leg import CallLeg, LegInput, LegState, advance


class Legs:
    """The legs with a dialog; how many incoming calls are not over (``max_calls`` bounds them)."""

    def __init__(self, layer: SipLayer) -> None:
        self._layer = layer
        self._by_dialog: dict[DialogId, CallLeg] = {}
        self.active_calls = 0

    def get(self, dialog_id: DialogId) -> CallLeg | None:
        return self._by_dialog.get(dialog_id)

    def add(self, leg: CallLeg) -> None:
        """``leg`` has a dialog now: requests in it find it."""
        assert leg.dialog is not None
        self._by_dialog[leg.dialog.id] = leg

    def end(self, leg: CallLeg, reason: str) -> None:
        """The leg is over: no more timers, out of the table, :class:`CallEnded` to the application."""
        if leg.state is LegState.ENDED:
            return
        advance(leg, LegInput.END)
        leg.retransmitter = None
        self._layer.untrack(leg)
        if leg.dialog is not None:
            self._by_dialog.pop(leg.dialog.id, None)
        if not leg.outgoing:  # max_calls bounds the calls that come in; ours are bounded by them
            self.active_calls -= 1
        self._layer.emit(CallEnded(leg, reason))
