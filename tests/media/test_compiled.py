"""The build compiles the per-packet media modules (setup.py), and the daemon imports them compiled."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def compiled_paths() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    listed = next(node.value for node in tree.body
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PER_PACKET")  # fmt: skip
    paths = ast.literal_eval(listed)
    assert isinstance(paths, list)
    return paths


def test_every_per_packet_module_is_imported_compiled():
    paths = compiled_paths()
    assert "ivrd/media/session.py" in paths and "ivrd/media/rtp.py" in paths
    for path in paths:
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert module.__file__ is not None and module.__file__.endswith(".so"), f"{path} runs uncompiled"
