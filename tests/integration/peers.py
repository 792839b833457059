"""Running SIPp and reading its verdict: exit code and the Successful/Failed call counters."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.daemon import free_port

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "sipp"


def require(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/setup installs them)")


@dataclass
class SippResult:
    code: int
    successful: int
    failed: int
    output: str


def _counter(name: str, text: str) -> int:
    found = re.findall(rf"{name}\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return int(found[-1]) if found else -1


def sipp(target: str, *args: str, cwd: Path, timeout: float = 180, wrapper: list[str] | None = None) -> SippResult:
    """Run sipp in the foreground (never -bg), optionally under ``wrapper`` (taskset); its exit code is the
    verdict together with the counters, so a non-zero exit is returned, not raised."""
    command = [*(wrapper or []), "sipp", target, "-nostdin", "-timeout", f"{int(timeout) - 10}s", *args]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    out = proc.stdout + proc.stderr
    return SippResult(proc.returncode, _counter("Successful call", out), _counter("Failed call", out), out)


def held_calls(port: int, calls: int, *, rate: int, hold_ms: int, cwd: Path) -> subprocess.Popen[str]:
    """SIPp placing ``calls`` calls to the daemon at ``port``, all up at once, each held ``hold_ms`` then
    hung up; in the background (it is a child process, not -bg): ``communicate()`` gives its verdict."""
    return subprocess.Popen(
        ["sipp", f"127.0.0.1:{port}", "-sn", "uac", "-nostdin", "-i", "127.0.0.1", "-p", str(free_port()),
         "-m", str(calls), "-l", str(calls), "-r", str(rate), "-d", str(hold_ms), "-timeout", "120s"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
