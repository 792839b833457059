"""The simulator in-process: every action the flow engine asks for is shown (none silently passed over)."""

from __future__ import annotations

import asyncio
import io
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
