"""A check before any test runs: the compiled media modules (setup.py) are the source's."""

from __future__ import annotations

from pathlib import Path

import pytest

import ivrd


def pytest_sessionstart(session: pytest.Session) -> None:
    """Python imports a compiled module in preference to its source, so one built before the source's last
    change would test the old code: say so instead of testing it."""
    media = Path(ivrd.__file__).parent / "media"
    stale = [built.name for built in media.glob("*.so")
             if built.stat().st_mtime < (media / f"{built.name.split('.')[0]}.py").stat().st_mtime]  # fmt: skip
    if stale:
        pytest.exit(f"compiled before their source last changed: {', '.join(stale)}; run scripts/setup", returncode=2)
