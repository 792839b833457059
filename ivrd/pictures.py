"""Flows drawn with Graphviz: the DOT text of a deployment's flow, coloured by its tests' coverage, and
``dot`` run on it (a subprocess: Graphviz is a C program, and a stuck one is killed)."""

from __future__ import annotations

import asyncio
import subprocess

from flows.graph import dot
from flows.loader import END, Deployment

from .flowtests import suite_of
from .yaml_loader import ConfigError

DOT_SECONDS = 20.0
FORMATS = ("svg", "png", "pdf", "dot")


class PictureError(Exception):
    """Graphviz is missing, failed, or took too long."""


def flow_dot(deployment: Deployment, name: str, *, coverage: bool = True) -> str:
    """The DOT text of flow ``name``; with ``coverage``, the steps the deployment's flow tests do not reach
    are marked (when it has tests that load)."""
    flow = deployment.flows[name]
    uncovered: set[str] = set()
    if coverage:
        try:
            suite = suite_of(deployment)
        except ConfigError:
            suite = None  # tests that do not load: `ivrd test` says why; the picture goes without them
        if suite is not None and suite.results:
            uncovered = {step for f in suite.coverage if f.flow == name for _, step in f.missed}
    return dot(flow, uncovered=uncovered, reachable=flow.reachable() - {END})


def render(text: str, fmt: str) -> bytes:
    """``text`` (DOT) drawn as ``fmt`` by Graphviz's ``dot``, for a caller outside an event loop."""
    return asyncio.run(render_async(text, fmt))


async def render_async(text: str, fmt: str) -> bytes:
    """``text`` (DOT) drawn as ``fmt`` by Graphviz's ``dot``, without holding the event loop."""
    if fmt == "dot":
        return text.encode()
    try:
        process = await asyncio.create_subprocess_exec("dot", f"-T{fmt}", stdin=subprocess.PIPE,
                                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    except FileNotFoundError:
        raise PictureError("Graphviz is not installed (Debian: apt-get install graphviz)") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(text.encode()), DOT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PictureError(f"Graphviz took more than {DOT_SECONDS:g} s") from None
    if process.returncode != 0:
        raise PictureError(f"Graphviz failed: {err.decode(errors='replace').strip()}")
    return out
