"""calls.keep_days: records of older calls deleted, and recordings and messages written before then, only in
the daemon's own folders; at start, through the real daemon too."""

from __future__ import annotations

import asyncio
import os
import time

from ivrd.records import CallRecords, Query, connect, find
from ivrd.retention import remove_older
from tests.integration.daemon import daemon_running
from tests.test_records import record


def _aged(path, days: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    when = time.time() - days * 86400
    os.utime(path, (when, when))


def test_files_older_than_the_limit_go_and_nothing_else(tmp_path):
    recordings, voicemail, elsewhere = tmp_path / "rec", tmp_path / "vm", tmp_path / "other"
    for folder in (recordings, voicemail, elsewhere):
        _aged(folder / "old.wav", 40)
        _aged(folder / "new.wav", 2)
    _aged(recordings / "sub" / "old.wav", 40)
    _aged(recordings / "notes.txt", 40)  # not a file the daemon writes
    assert remove_older((recordings, voicemail, tmp_path / "missing"), time.time() - 30 * 86400) == 3
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["other/new.wav", "other/old.wav", "rec/new.wav", "rec/notes.txt", "vm/new.wav"]


def test_records_of_older_calls_are_pruned(tmp_path):
    db = tmp_path / "calls.db"

    async def run() -> int:
        store = CallRecords(db)
        await store.open()
        for n in range(5):
            store.add(record(n, started=1000.0 + n * 100))
        await store.close()
        store = CallRecords(db)
        await store.open()
        removed = await store.prune(1250.0)
        await store.close()
        return removed

    assert asyncio.run(run()) == 3
    assert sorted(r["id"] for r in find(connect(db, readonly=True), Query())) == ["id3", "id4"]


def test_the_daemon_removes_what_is_older_than_keep_days_when_it_starts(tmp_path):
    recordings = tmp_path / "rec"
    _aged(recordings / "old.wav", 10)
    _aged(recordings / "new.wav", 1)
    db = tmp_path / "calls.db"

    async def seed() -> None:
        store = CallRecords(db)
        await store.open()
        store.add(record(1, started=time.time() - 10 * 86400))
        store.add(record(2, started=time.time() - 86400))
        await store.close()

    asyncio.run(seed())
    with daemon_running(f"calls:\n  keep_days: 7\n  records: {db}\n  recordings_dir: {recordings}\n") as daemon:
        daemon.wait_for_event("retention.removed")
        assert "records=1 files=1 days=7" in daemon.log
    assert [p.name for p in recordings.iterdir()] == ["new.wav"]
    assert [r["id"] for r in find(connect(db, readonly=True), Query())] == ["id2"]
