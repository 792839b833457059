"""A finished call leaves no reference cycles: the daemon in-process, a real caller over loopback,
and the garbage collector asked afterwards what it would have to reclaim.

This is what lets the daemon make full collections rare (``ivrd/heap.py``): each one holds up
every call's audio for as long as it walks the heap (80 ms at 1,000 calls), and if calls are freed
by reference counting as they end, it reclaims nothing of theirs.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import numpy as np
import pytest

from ivrd.config import load_config
from ivrd.server import Daemon
from tests.integration.daemon import free_port
from tests.integration.rtp_caller import SILENCE_PCMU, RtpCaller

CALLS = 3
FLOW = """default: true
steps:
  choose:
    menu: "Press one."
    choices:
      - { key: 1, goto: hold }
    timeout: 10
  hold:
    wait: 3600
    next: hold
"""


def _call(port: int) -> None:
    """One caller, start to end: answered, the menu heard (spoken by espeak-ng), its key pressed, on hold,
    hung up."""
    caller = RtpCaller(port)
    try:
        caller.call()
        for _ in range(10):
            caller.send_rtp(0, SILENCE_PCMU)
        caller.wait_for_packets(60)  # the menu has been said
        caller.press_rfc4733(1)
        caller.stream(np.zeros(8000 // 5, np.int16))  # a phone's stream goes on: the key plays out before its BYE
        assert caller.bye() == 200
    finally:
        caller.close()


PACKAGES = ("ivrd", "flows", "routing", "asr")


def _ours(thing: object) -> bool:
    """An object of the project's, or a coroutine, frame or function running its code."""
    code = getattr(thing, "cr_code", None) or getattr(thing, "f_code", None) or getattr(thing, "__code__", None)
    return (type(thing).__module__ or "").split(".")[0] in PACKAGES or (
        code is not None and any(f"/{package}/" in code.co_filename for package in PACKAGES))


def test_a_finished_call_leaves_no_reference_cycles(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivrd")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "main.yaml").write_text(FLOW)
    port = free_port()
    (tmp_path / "ivrd.yaml").write_text(
        f"sip:\n  listen:\n    - {{transport: udp, address: 127.0.0.1, port: {port}}}\n"
        f"http:\n  port: 0\nflows:\n  dir: flows\nmedia:\n  rtp_port_min: 30000\n  rtp_port_max: 30998\n")

    thresholds = gc.get_threshold()

    async def scenario() -> list[object]:
        daemon = Daemon(load_config(tmp_path / "ivrd.yaml"))
        await daemon.start()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, _call, port)  # the first call warms every cache up
            gc.collect()
            gc.disable()  # from here, only reference counting frees anything
            for _ in range(CALLS):
                await loop.run_in_executor(None, _call, port)
            # The last call's task ends just after its BYE is answered, and the daemon lets it go in the task's
            # done callback, a turn of the loop later: the task may already be done (not among all_tasks())
            # while the call is still held. Wait for the daemon to hold none.
            deadline = loop.time() + 10
            while daemon.calls and loop.time() < deadline:
                await asyncio.sleep(0.01)
            assert not daemon.calls
            gc.set_debug(gc.DEBUG_SAVEALL)  # keep what a collection finds, to see whose it is
            gc.collect()
            return [thing for thing in gc.garbage if _ours(thing)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
            gc.unfreeze()  # start() froze this test process's heap and set its thresholds, as the daemon's
            gc.set_threshold(*thresholds)
            await daemon.shutdown()

    leftovers = asyncio.run(scenario())
    ends = [record.fields for record in caplog.records if record.msg == "call.end"]  # type: ignore[attr-defined]
    assert [end["digits"] for end in ends] == ["1"] * (1 + CALLS)  # each went through the menu
    assert not leftovers, sorted({type(thing).__qualname__ for thing in leftovers})
