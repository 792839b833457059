"""Call records: written in batches off the loop, read back by the filters `ivrd calls` offers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time

import pytest

from ivrd.records import (
    ADDED_COLUMNS,
    BATCH_SECONDS,
    COLUMNS,
    CallRecord,
    CallRecords,
    Query,
    RecordsError,
    WrapUp,
    connect,
    describe,
    find,
)


def record(n: int, **fields) -> CallRecord:
    base = dict(id=f"id{n}", call_id=f"c{n}@host", started=1000.0 + n, ended=1060.0 + n, caller=f"+1555000{n}",
                caller_name="", dialed="100", outcome="completed", end_reason="bye")  # fmt: skip
    return CallRecord(**{**base, **fields})


def write(path, records) -> int:
    async def run() -> int:
        store = CallRecords(path)
        await store.open()
        for r in records:  # added in one turn of the loop: the later ones wait for the first batch
            store.add(r)
        await store.close()
        return store.written

    return asyncio.run(run())


def test_records_are_committed_by_close_and_found_by_every_filter(tmp_path):
    db = tmp_path / "calls.db"
    records = [record(i) for i in range(20)]
    records.append(record(20, outcome="agent", queue="billing", wait=12.5, agent="2001", talk=61.0, hold=5.0,
                          wrap_up=10.0, transcript="billing | yes", digits="1",
                          path=json.dumps([{"event": "choice", "said": "billing"}])))  # fmt: skip
    records.append(record(21, transcript="50% off_sale"))
    assert write(db, records) == 22
    connection = connect(db, readonly=True)
    assert len(list(find(connection, Query(limit=100)))) == 22
    (agent,) = find(connection, Query(outcome="agent"))
    assert (agent["queue"], agent["wait"], agent["agent"], agent["talk"], agent["hold"]) == ("billing", 12.5, "2001",
                                                                                            61.0, 5.0)  # fmt: skip
    assert agent["path"] == [{"event": "choice", "said": "billing"}]
    assert [r["id"] for r in find(connection, Query(text="billing"))] == ["id20"]
    assert [r["id"] for r in find(connection, Query(text="50%"))] == ["id21"]  # % and _ are not wildcards
    assert list(find(connection, Query(text="5_%"))) == []
    assert [r["id"] for r in find(connection, Query(caller="+15550003"))] == ["id3"]
    newest = [r["id"] for r in find(connection, Query(since=1010.0, until=1013.0))]
    assert newest == ["id12", "id11", "id10"]
    line = describe(agent)
    assert 'said "billing | yes"' in line and "queue billing" in line and "agent 2001" in line and "[id20]" in line


def test_a_database_that_cannot_be_opened_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RecordsError, match="file"):
        connect(tmp_path / "file" / "calls.db")
    with pytest.raises(RecordsError):
        connect(tmp_path / "missing.db", readonly=True)


def test_ivrd_calls_filters_and_prints(tmp_path):
    db = tmp_path / "calls.db"
    now = time.time()
    write(db, [record(1, started=now - 7200, ended=now - 7100), record(2, started=now - 60, ended=now - 30,
                                                                       outcome="abandoned", queue="sales")])
    def calls(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ivrd.cli", "calls", "--db", str(db), *args],
                              capture_output=True, text=True, check=False)  # fmt: skip

    recent = calls("--since", "1h", "--json")
    assert recent.returncode == 0, recent.stderr
    assert [json.loads(line)["id"] for line in recent.stdout.splitlines()] == ["id2"]
    assert calls("--outcome", "abandoned").stdout.count("\n") == 1
    assert "queue sales" in calls("--queue", "sales").stdout
    bad = calls("--since", "yesterday")
    assert bad.returncode == 2 and "expected 2026-11-24" in bad.stderr and "Traceback" not in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "ivrd.cli", "calls", "--db", str(tmp_path / "none.db")],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert missing.returncode == 1 and "no call records" in missing.stderr


def test_an_agents_wrap_up_joins_its_record_even_when_it_comes_first(tmp_path):
    """A disposition and note reach the call's record whether the record was written before, in the same
    batch, or after them (the agent's page can be quicker than the caller's end); then they are found."""
    db = tmp_path / "calls.db"

    async def run() -> list[dict[str, object]]:
        store = CallRecords(db)
        await store.open()
        store.add(record(1, outcome="agent", agent="ada"))
        await asyncio.sleep(BATCH_SECONDS * 2)  # written
        store.annotate(WrapUp("id1", "resolved", "refund sent"))
        store.annotate(WrapUp("id2", "call back", "wants the manager"))  # its record is not there yet ...
        await asyncio.sleep(BATCH_SECONDS * 3)
        store.add(record(2, outcome="agent", agent="ada"))  # ... and comes later
        store.annotate(WrapUp("id3", None, "same batch"))
        store.add(record(3, outcome="agent"))
        await asyncio.sleep(BATCH_SECONDS * 2)
        history = await store.history("+15550002")
        await store.close()
        return history

    history = asyncio.run(run())
    assert [(r["id"], r["disposition"], r["note"]) for r in history] == [("id2", "call back", "wants the manager")]
    connection = connect(db, readonly=True)
    found = {r["id"]: (r["disposition"], r["note"]) for r in find(connection, Query())}
    assert found == {"id1": ("resolved", "refund sent"), "id2": ("call back", "wants the manager"),
                     "id3": (None, "same batch")}  # fmt: skip
    assert [r["id"] for r in find(connection, Query(disposition="resolved"))] == ["id1"]
    assert [r["id"] for r in find(connection, Query(text="manager"))] == ["id2"]  # notes are searched too
    assert 'note "refund sent"' in describe(next(find(connection, Query(disposition="resolved"))))


def test_a_database_from_before_wrap_ups_gains_their_columns(tmp_path):
    db = tmp_path / "calls.db"
    old = sqlite3.connect(db)
    columns = [c for c in COLUMNS if c not in ADDED_COLUMNS]
    old.execute(f"CREATE TABLE calls ({', '.join(columns)})")
    old.execute(f"INSERT INTO calls VALUES ({', '.join('?' * len(columns))})",
                [getattr(record(7), c) for c in columns])  # fmt: skip
    old.commit()
    old.close()
    assert write(db, [record(8, note="after")]) == 1
    found = {r["id"]: r["note"] for r in find(connect(db, readonly=True), Query())}
    assert found == {"id7": None, "id8": "after"}
