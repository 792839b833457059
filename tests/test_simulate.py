"""The simulator in-process: every action the flow engine asks for is shown (none silently passed over)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

from flows.interpreter import CallInfo
from flows.loader import load_deployment
from ivrd.simulate import Simulation

FLOW = """default: true
steps:
  menu:
    menu: "Say billing or press 1."
    barge_in: true
    choices:
      - { key: 1, say: [billing], goto: done }
    timeout: 5
  done:
    say: "Goodbye."
    next: bye
  bye:
    hangup: true
"""


def run(tmp_path: Path, lines: list[str]) -> list[str]:
    (tmp_path / "main.yaml").write_text(FLOW)
    deployment = load_deployment(tmp_path)
    out = io.StringIO()
    typed = iter([*lines, ""])

    async def read_line() -> str:
        return next(typed)

    simulation = Simulation(deployment, "main", CallInfo("sim", "+15550100", "", "100"), fixtures={}, out=out,
                            read_line=read_line)  # fmt: skip
    asyncio.run(simulation.main())
    return out.getvalue().splitlines()


def test_a_spoken_menu_says_what_it_listens_for_and_an_answer_ends_the_listening(tmp_path):
    lines = run(tmp_path, ["say billing\n"])
    assert "  say: Say billing or press 1." in lines
    assert "  listening for: billing" in lines
    assert lines.index("  listening for: billing") < lines.index("  say: Goodbye.")
    assert "  hang up" in lines


def test_simulate_at_a_time_sees_the_calendars_then(tmp_path):
    """The example deployment on a Sunday reaches only the after-hours voicemail; `--at` a Monday morning
    (New York, the office calendar's zone) reaches the main menu; a time that is not one is refused."""
    flows = Path(__file__).resolve().parents[1] / "etc" / "flows"

    def simulate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ivrd.cli", "simulate", "main", "--flows", str(flows), *args],
                              input="", capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    sunday = simulate("--at", "2026-12-06T10:00-05:00")
    monday = simulate("--at", "2026-12-07T10:00-05:00")
    assert "Our office is closed" in sunday.stdout and "[main.main_menu]" not in sunday.stdout
    assert "[main.main_menu] your turn" in monday.stdout and "Our office is closed" not in monday.stdout
    wrong = simulate("--at", "next tuesday")
    assert wrong.returncode == 2 and "expected a time like 2026-12-07 10:00" in wrong.stderr
