"""Progress of long work: nothing for quick work, then reports paced by the clock, with rate and time
left; stages of flow loading as load_deployment tells them; a terminal's line redrawn, a log's lines."""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

import pytest

from flows.loader import load_deployment
from ivrd.media.player import load_wav
from ivrd.progress import Progress, Report, Stages, in_log, on_stream


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_quick_work_shows_nothing_and_slow_work_is_reported_at_a_pace_with_a_last_word():
    clock, seen = Clock(), []
    quick = Progress("copying", seen.append, total=10, unit="files", delay=0.5, every=1.0, clock=clock)
    for done in range(1, 11):
        clock.now += 0.04
        quick.update(done)
    quick.end()
    assert seen == []

    slow = Progress("copying", seen.append, total=100, unit="files", delay=0.5, every=1.0, clock=clock)
    for done in range(1, 101):
        clock.now += 0.25
        slow.update(done)
    slow.end()
    assert [r.done for r in seen] == [*range(2, 100, 4), 100]
    assert [r.final for r in seen] == [False] * 25 + [True]
    assert str(seen[0]) == "copying: 2/100 files  2%  4/s  24 s left"
    assert str(seen[-1]) == "copying: 100/100 files  100%  4/s  in 25 s"


@pytest.mark.parametrize("report,text", [
    (Report("downloading", 12_345_678, 48_000_000, 4.0, "B", False),
     "downloading: 12.3 / 48.0 MB  25%  3.1 MB/s  12 s left"),
    (Report("downloading", 12_345_678, None, 4.0, "B", False), "downloading: 12.3 MB  3.1 MB/s"),
    (Report("downloading", 48_000_000, 48_000_000, 125.0, "B", True),
     "downloading: 48.0 / 48.0 MB  100%  0.4 MB/s  in 2 min 05 s"),
    (Report("reading flows", 0, 400, 0.0, "files", False), "reading flows: 0/400 files  0%"),
])  # fmt: skip
def test_a_report_says_how_far_how_fast_and_how_long_still(report: Report, text: str):
    assert str(report) == text


def test_loading_flows_tells_each_stage_up_to_its_end(tmp_path: Path):
    flows = tmp_path / "flows"
    shutil.copytree(Path(__file__).resolve().parents[1] / "etc" / "flows", flows)
    heard: list[tuple[str, int, int]] = []
    deployment = load_deployment(flows, load_wav, progress=lambda *at: heard.append(at))
    files = len([p for p in flows.iterdir() if p.suffix == ".yaml"])
    reading = [at for at in heard if at[0] == "reading flows"]
    loading = [at for at in heard if at[0] == "loading prompts"]
    assert heard == reading + loading  # one stage after the other
    assert [done for _, done, _ in reading] == list(range(files + 1)) and {t for *_, t in reading} == {files}
    assert len(deployment.prompts) >= 1 and loading[-1] == ("loading prompts", len(deployment.prompts),
                                                             len(deployment.prompts))  # fmt: skip


def test_stages_each_have_their_own_progress_ended_before_the_next_begins():
    clock, seen = Clock(), []
    stages = Stages(lambda stage, total: Progress(stage, seen.append, total=total, clock=clock))
    for done in range(3):
        stages("reading flows", done, 2)
        clock.now += 1
    stages("loading prompts", 0, 1)
    clock.now += 1
    stages("loading prompts", 1, 1)
    stages.end()
    assert [(r.what, r.done, r.final) for r in seen] == [
        ("reading flows", 0, False), ("reading flows", 1, False), ("reading flows", 2, False),
        ("reading flows", 2, True), ("loading prompts", 0, False), ("loading prompts", 1, False),
        ("loading prompts", 1, True)]  # fmt: skip


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_line_redrawn_and_a_pipe_gets_lines():
    terminal = Terminal()
    shown = on_stream(terminal, "downloading", total=2_000_000, unit="B")
    shown.update(1_000_000)
    shown.end()
    assert terminal.getvalue().startswith("\rdownloading: 1.0 / 2.0 MB  50%")
    assert terminal.getvalue().count("\r") == 2 and terminal.getvalue().endswith("\x1b[K\n")
    pipe = io.StringIO()
    shown = on_stream(pipe, "downloading", total=2_000_000, unit="B")
    shown.update(1_000_000)
    shown.update(2_000_000)  # within LOG_EVERY of the first: not shown
    shown.end()
    lines = pipe.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in pipe.getvalue()
    assert lines[0].startswith("downloading: 1.0 / 2.0 MB  50%") and lines[1].startswith("downloading: 2.0 / 2.0 MB")


def test_a_daemon_logs_its_progress_as_events(caplog: pytest.LogCaptureFixture):
    shown = in_log(logging.getLogger("ivrd.test"), "flows.loading", "reading flows", total=3, unit="files", delay=0)
    with caplog.at_level(logging.INFO, logger="ivrd.test"):
        shown.update(1)
        shown.end()
    fields = [r.fields for r in caplog.records]  # type: ignore[attr-defined]
    assert [f["done"] for f in fields] == [1, 1] and fields[0]["what"] == "reading flows"
    assert fields[0]["total"] == 3 and fields[0]["final"] is None and fields[1]["final"] is True
