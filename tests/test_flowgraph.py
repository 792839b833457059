"""``ivrd graph``: every step and every way between steps of the example flows in the SVG (parsed), the
steps no test reaches and those nothing leads to coloured, and clear answers to a wrong request."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flows.graph import END_NODE, QUEUE_COLOUR, UNCOVERED_COLOUR, UNREACHABLE_COLOUR, dot
from flows.loader import END, load_deployment
from flows.schema import GoFlow, Queue
from ivrd.media.player import load_wav

EXAMPLE = Path(__file__).resolve().parents[1] / "etc" / "flows"
SVG = "{http://www.w3.org/2000/svg}"

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is installed by scripts/setup")


def ivrd_graph(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "ivrd.cli", "graph", *args], capture_output=True, timeout=120,
                          check=False)  # fmt: skip


def drawn(svg: bytes) -> tuple[dict[str, str], set[tuple[str, str]], list[str]]:
    """The picture's nodes (name -> fill colour), edges (from, to), and every text shown."""
    root = ET.fromstring(svg)
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        if title is None or title.text is None:
            continue
        if group.get("class") == "node":
            shape = next(e for e in group if e.tag in (f"{SVG}path", f"{SVG}polygon", f"{SVG}ellipse"))
            nodes[title.text] = shape.get("fill", "")
        elif group.get("class") == "edge":
            source, _, target = title.text.partition("->")
            edges.add((source, target))
    texts = [t.text for t in root.iter(f"{SVG}text") if t.text]
    return nodes, edges, texts



def test_every_step_and_every_way_between_steps_of_the_example_flows_is_drawn():
    deployment = load_deployment(EXAMPLE, load_wav)
    assert len(deployment.flows) >= 4
    for name, flow in deployment.flows.items():
        done = ivrd_graph(name, "--flows", str(EXAMPLE))
        assert done.returncode == 0, done.stderr.decode()
        nodes, edges, texts = drawn(done.stdout)
        assert set(flow.steps) <= set(nodes), name
        for step, at in flow.steps.items():
            if isinstance(at.step, GoFlow):  # the call goes on in the other flow, drawn as a folder
                assert (step, f"flow:{at.step.flow.name}") in edges
                continue
            for target in flow.successors(step):
                assert (step, END_NODE if target == END else target) in edges, (name, step, target)
        assert UNCOVERED_COLOUR not in nodes.values() and UNREACHABLE_COLOUR not in nodes.values()
        if name == "main":
            assert {"open", "closed", "holiday"} <= set(texts)
            assert {nodes[s] for s, at in flow.steps.items() if isinstance(at.step, Queue)} == {QUEUE_COLOUR}
            assert any(text.startswith("1 / ") for text in texts), texts  # a menu choice: its key and phrases
            assert "voicemail flow" in texts  # another flow, marked as such


def test_a_step_no_test_reaches_is_coloured_and_comes_back_when_the_test_does(example_flows: Path):
    tests = example_flows / "tests" / "main.yaml"
    text = tests.read_text()
    tests.write_text(text[: text.index("  christmas_is_a_holiday:")])
    nodes, _, _ = drawn(ivrd_graph("main", "--flows", str(example_flows)).stdout)
    assert [step for step, fill in nodes.items() if fill == UNCOVERED_COLOUR] == ["holiday"]
    nodes, _, _ = drawn(ivrd_graph("main", "--flows", str(example_flows), "--no-coverage").stdout)
    assert UNCOVERED_COLOUR not in nodes.values()
    tests.write_text(text)
    nodes, _, _ = drawn(ivrd_graph("main", "--flows", str(example_flows)).stdout)
    assert UNCOVERED_COLOUR not in nodes.values()


def test_a_flow_being_written_is_drawn_with_the_steps_nothing_leads_to_in_red(example_flows: Path):
    voicemail = example_flows / "voicemail.yaml"
    voicemail.write_text(voicemail.read_text() + "  orphan:\n    say: \"Nobody sends callers here.\"\n")
    refused = subprocess.run([sys.executable, "-m", "ivrd.cli", "test", str(example_flows)], capture_output=True,
                             text=True, timeout=120, check=False)  # fmt: skip
    assert refused.returncode == 2 and "step orphan: unreachable (no step leads here)" in refused.stderr
    out = example_flows / "voicemail.svg"
    done = ivrd_graph("voicemail", "--flows", str(example_flows), "-o", str(out))
    assert done.returncode == 0, done.stderr.decode()
    nodes, _, texts = drawn(out.read_bytes())
    assert nodes["orphan"] == UNREACHABLE_COLOUR
    assert [s for s, fill in nodes.items() if fill == UNREACHABLE_COLOUR] == ["orphan"]
    assert "Nobody sends callers here." in texts


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".dot", b"digraph ")])
def test_the_picture_is_written_in_the_format_its_file_name_asks_for(tmp_path: Path, suffix: str, magic: bytes):
    out = tmp_path / f"main{suffix}"
    assert ivrd_graph("main", "--flows", str(EXAMPLE), "-o", str(out)).returncode == 0
    assert out.read_bytes().startswith(magic)


def test_a_wrong_request_is_answered_in_one_line():
    bad_suffix = ivrd_graph("main", "--flows", str(EXAMPLE), "-o", "main.jpeg")
    assert bad_suffix.returncode == 2
    assert bad_suffix.stderr.decode().strip() == "ivrd: main.jpeg: expected a file ending in .svg, .png, .pdf, .dot"
    unknown = ivrd_graph("mian", "--flows", str(EXAMPLE))
    assert unknown.returncode == 2
    assert unknown.stderr.decode().startswith(f"ivrd: no flow 'mian' in {EXAMPLE} (flows: balance, main, ")


def test_labels_are_quoted_so_any_prompt_text_draws(tmp_path: Path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text('default: true\nsteps:\n  hello:\n    say: "Say \\"hi\\" \\\\ {caller}"\n'
                                     '    next: bye\n  bye:\n    hangup: true\n')  # fmt: skip
    text = dot(load_deployment(flows, load_wav).flows["main"])
    assert 'Say \\"hi\\" \\\\ {caller}' in text
    done = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True, timeout=30, check=True)
    _, edges, texts = drawn(done.stdout)
    assert 'Say "hi" \\ {caller}' in texts and ("hello", "bye") in edges and ("bye", END_NODE) in edges
