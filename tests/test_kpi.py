"""First-call resolution as records are written (first dispositions; a resolved call whose caller calls
again within the window), and the center's numbers over a period (`ivrd calls --kpi`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from ivrd import kpi
from ivrd.config import QueueConfig
from ivrd.records import BATCH_SECONDS, CallRecords, Resolution, WrapUp, connect
from tests.test_records import record

DAY = 86400.0


def _write(db, steps) -> list[Resolution]:
    """Each step: records to add or wrap-ups to annotate, one batch each; what resolution counted."""
    counted: list[Resolution] = []

    async def run() -> None:
        store = CallRecords(db, resolved=frozenset({"resolved", "fixed"}), repeat_window=7 * DAY,
                            on_resolution=counted.append)  # fmt: skip
        await store.open()
        for step in steps:
            for item in step:
                store.annotate(item) if isinstance(item, WrapUp) else store.add(item)
            await asyncio.sleep(BATCH_SECONDS * 2)
        await store.close()

    asyncio.run(run())
    return counted


def test_a_repeat_call_within_the_window_unsettles_the_last_resolved_call_once(tmp_path):
    db = tmp_path / "calls.db"
    t = 1_000_000.0
    ada = dict(outcome="agent", queue="billing", agent="ada")
    counted = _write(db, [
        [record(1, started=t, caller="+100", **ada), record(2, started=t, caller="+200", **ada),
         record(3, started=t, caller="+300", **ada)],
        [WrapUp("id1", "resolved", None), WrapUp("id2", "call back", None), WrapUp("id3", "fixed", None)],
        [WrapUp("id1", "resolved", "again: a correction, not a second disposition")],
        # +100 calls again after 2 days (unsettles id1), and again (nothing more to unsettle);
        # +300 after 8 days (outside the window); +200's first call was not resolved anyway
        [record(4, started=t + 2 * DAY, caller="+100"), record(5, started=t + 3 * DAY, caller="+100"),
         record(6, started=t + 8 * DAY, caller="+300"), record(7, started=t + DAY, caller="+200")],
    ])  # fmt: skip
    assert counted == [Resolution("billing", "ada", "resolved", True), Resolution("billing", "ada", "call back", False),
                       Resolution("billing", "ada", "fixed", True), Resolution("billing", "ada", None, False)]
    rows = {r["id"]: r["repeated"] for r in connect(db, readonly=True).execute("SELECT id, repeated FROM calls")}
    assert rows["id1"] == "id4" and rows["id3"] is None and rows["id2"] is None


def test_the_centers_numbers_per_queue_and_agent():
    queues = {"billing": QueueConfig(service_level=20, short_abandon=5)}
    rows = [
        dict(queue="billing", agent="ada", outcome="agent", wait=10, talk=100, hold=20, wrap_up=10,
             disposition="resolved", repeated=None, csat="5"),
        dict(queue="billing", agent="ada", outcome="agent", wait=30, talk=200, hold=0, wrap_up=10,
             disposition="resolved", repeated="x", csat="none"),
        dict(queue="billing", agent="bob", outcome="agent", wait=5, talk=50, hold=0, wrap_up=10,
             disposition="call back", repeated=None, csat="2"),
        dict(queue="billing", agent=None, outcome="abandoned", wait=40, talk=None, hold=None, wrap_up=None,
             disposition=None, repeated=None, csat=None),
        dict(queue="billing", agent=None, outcome="abandoned", wait=3, talk=None, hold=None, wrap_up=None,
             disposition=None, repeated=None, csat=None),  # a short abandon
    ]  # fmt: skip
    found = kpi.figures(rows, queues, frozenset({"resolved"}))
    billing, ada = found[("queue", "billing")], found[("agent", "ada")]
    assert billing.offered == 5 and billing.answered == 3 and billing.abandoned == 1
    assert billing.service_level == 2 / 4  # 10 s and 5 s in time; 30 s late; one abandoned (the short one left out)
    assert billing.asa == 15.0 and billing.abandonment == 1 / 5 and billing.aht == (130 + 210 + 60) / 3
    assert billing.fcr == 1 / 3 and ada.fcr == 1 / 2 and found[("agent", "bob")].fcr == 0.0
    assert found[("center", "")].offered == 5
    assert billing.csat == 3.5 and billing.surveyed == 3 and ada.csat == 5.0  # "none" is no score
    text = kpi.table(found)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert text.splitlines()[1].startswith("center") and "queue billing" in text and "agent ada" in text


def test_ivrd_calls_kpi_prints_them_from_the_records(tmp_path):
    db = tmp_path / "calls.db"
    _write(db, [[record(1, outcome="agent", queue="billing", agent="ada", wait=4.0, talk=60.0, wrap_up=10.0,
                        hold=0.0)], [WrapUp("id1", "resolved", None)]])  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "ivrd.cli", "calls", "--db", str(db), "--kpi", "--since", "1970-01-01",
                          "--json"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    figures = json.loads(out)
    assert figures["queue billing"]["fcr"] == 1.0 and figures["agent ada"]["aht"] == 70.0
    assert figures["center"]["service_level"] == 1.0
