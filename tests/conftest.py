"""A check before any test runs: the compiled media and SIP modules (setup.py) are the source's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ivrd


def pytest_sessionstart(session: pytest.Session) -> None:
    """Python imports a compiled module in preference to its source, so one built before the source's last
    change would test the old code: say so instead of testing it."""
    package = Path(ivrd.__file__).parent
    stale = [built.name for built in (*package.glob("media/*.so"), *package.glob("sip/*.so"))
             if built.stat().st_mtime < (built.parent / f"{built.name.split('.')[0]}.py").stat().st_mtime]  # fmt: skip
    if stale:
        pytest.exit(f"compiled before their source last changed: {', '.join(stale)}; run scripts/setup", returncode=2)


@pytest.fixture
def example_flows(tmp_path: Path) -> Path:
    """A copy of the example deployment's flows and their tests, to edit."""
    copy = tmp_path / "flows"
    shutil.copytree(Path(__file__).resolve().parents[1] / "etc" / "flows", copy)
    return copy
