"""``ivrd status`` text from a status document: 80 columns whatever the names, durations people read,
the transcription backlog when there is one, and a daemon that cannot be reached said in one line."""

from __future__ import annotations

import asyncio

import pytest

from ivrd.config import Config, HttpConfig
from ivrd.http.console import TODAY_SECONDS, Console
from ivrd.remote import Daemon, RemoteError, status_text

QUEUE = {"name": "billing-and-collections-overflow", "waiting": 12, "waiting_here": 12, "oldest_wait": 3725.0,
         "agents": {"available": 1, "offered": 1, "busy": 2, "wrap_up": 0, "away": 3},
         "today": {"offered": 140, "answered": 120, "abandoned": 20, "service_level": 0.8123, "abandonment": 0.1429}}
CALL = {"id": "c1", "call_id": "x@y", "caller": "+4930123456789012345", "dialed": "100",
        "flow": "main_with_a_long_name", "step": "billing_queue_for_premium_customers", "state": "queue",
        "seconds": 75.4, "queue": QUEUE["name"], "agent": None}
AGENT = {"id": "agent-2001-long", "name": "Ada Lovelace of the Analytical Engine", "state": "away",
         "seconds_in_state": 7322.0, "calls": 31, "reason": "lunch break, back at two, really quite a long reason"}


def status(**extra: object) -> dict[str, object]:
    return {"time": 1796637600.0, "node": "node-a", "flows": "8947fc843d0f", "calls": [CALL], "queues": [QUEUE],
            "agents": [AGENT], "records": True, **extra}


def test_every_line_fits_80_columns_and_long_names_are_cut_visibly():
    load = {"busy": 0.312, "lag_ms": 0.4, "late": 0.0, "limiting": False, "rate": None, "why": None}
    lines = status_text(status(transcription={"waiting": 3, "done": 40, "failed": 1}, load=load)).splitlines()
    assert max(len(line) for line in lines) <= 80 and all(line == line.rstrip() for line in lines)
    (call,) = [line for line in lines if line.startswith("+4930")]
    assert call.split()[:6] == ["+49301234567890~", "main_with_a_long_name.b~", "queue", "1:15", "billing-and~", "-"]
    (queue,) = [line for line in lines if line.startswith("billing")]
    assert queue.split() == ["billing-and-c~", "12", "1h02", "1", "3", "0", "3", "140", "81%", "14%"]
    (agent,) = [line for line in lines if line.startswith("agent-")]
    assert agent.split()[:3] == ["agent-200~", "Ada", "Lovelace"] and " away " in agent and " 2h02 " in agent
    assert "transcripts: 3 waiting, 40 done, 1 failed" in lines
    assert "loop busy 31%  lag 0.4 ms  taking every call" in lines


def test_admission_control_limiting_new_calls_is_said_with_why():
    load = {"busy": 0.93, "lag_ms": 12.5, "late": 0.02, "limiting": True, "rate": 84.3, "why": "busy,late"}
    lines = status_text(status(load=load)).splitlines()
    assert "loop busy 93%  lag 12.5 ms  LIMITING new calls to 84.3/s (busy,late)" in lines


def test_nothing_going_on_is_said_and_no_backlog_line_without_transcription():
    text = status_text({**status(transcription=None), "calls": [], "agents": [], "records": False})
    assert "(no calls)" in text and "(no agents)" in text and "no records" in text
    assert "transcripts" not in text


def test_a_daemon_that_is_not_there_is_one_line_not_a_traceback():
    daemon = Daemon.of(HttpConfig(address="0.0.0.0", port=1))
    assert daemon.url == "http://127.0.0.1:1"
    try:
        daemon.call("GET", "/status")
    except RemoteError as exc:
        assert str(exc).startswith("cannot reach the daemon at http://127.0.0.1:1: ")
    else:
        raise AssertionError("port 1 answered")


def test_watching_consoles_share_one_reading_of_the_days_records():
    class Records:
        def __init__(self) -> None:
            self.readings = 0

        async def kpi(self, since: float, until: float, queues: object, resolved: object) -> dict[object, object]:
            self.readings += 1
            await asyncio.sleep(0)
            if self.readings == 3:
                raise OSError("disk gone")
            return {("queue", "billing"): self.readings}

    async def run() -> None:
        records = Records()
        console = Console(Config, None, None, calls=list, reload=None, records=records,  # type: ignore[arg-type]
                          transcription=None, load=dict, node="n")  # fmt: skip
        now = 1796637600.0
        first = await asyncio.gather(*(console._today(now + i) for i in range(5)))
        assert records.readings == 1 and all(f == {("queue", "billing"): 1} for f in first)
        assert await console._today(now + TODAY_SECONDS) == {("queue", "billing"): 2}
        with pytest.raises(OSError):
            await console._today(now + 2 * TODAY_SECONDS)
        assert await console._today(now + 2 * TODAY_SECONDS + 1) == {("queue", "billing"): 4}  # tried again

    asyncio.run(run())
