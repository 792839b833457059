"""Call records: one row per call in SQLite, written off the event loop, committed as each call ends.

One writer thread owns the connection. Records that end while a write is under way are written
together in the next transaction (a group commit), so a burst of hang-ups costs one fsync, not one
each. The database runs in write-ahead mode with full syncs: a record is on disk once its
transaction is committed, whatever happens to the process after that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from . import kpi
from .config import QueueConfig
from .logs import event

log = logging.getLogger("ivrd.records")


# How a call ended: with an agent; hung up while waiting for one; to be called back (the call back has its
# own record, "agent" or "no_answer"); transferred (REFER); ended by the flow; hung up in the flow; given
# up before we answered; refused by us.
OUTCOMES = ("agent", "abandoned", "callback", "no_answer", "transferred", "completed", "caller_hung_up",
            "cancelled", "rejected")  # fmt: skip


BATCH_SECONDS = 0.2  # records wait this long at most before their batch is written


_COLUMN = json.JSONEncoder(separators=(",", ":"), default=str)  # json.dumps makes one a call for these options


def as_json(value: object) -> str:
    """A record's JSON column: compact, anything not JSON as its text."""
    return _COLUMN.encode(value)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What is kept of one call. Times are Unix seconds; durations are seconds."""

    id: str  # the call's token (the one in the agents' context link)
    call_id: str
    started: float
    ended: float
    caller: str
    caller_name: str
    dialed: str
    outcome: str  # one of OUTCOMES
    end_reason: str
    flow: str | None = None
    flow_version: str | None = None
    digits: str = ""
    transcript: str = ""  # what the caller said, question by question
    path: str = "[]"  # JSON: the steps through the flows
    variables: str = "{}"  # JSON: the flow's variables at the end (lookup results among them)
    queue: str | None = None
    wait: float | None = None
    agent: str | None = None
    talk: float | None = None
    hold: float | None = None
    wrap_up: float | None = None
    recording: str | None = None
    recording_paused: str | None = None  # JSON: [from, to] seconds of the recording that are silence by request
    message: str | None = None  # a voicemail left at a record step
    rtp: str = "{}"  # JSON: packets, loss, jitter, RTCP figures both ways
    disposition: str | None = None  # what the agent said of the call at wrap-up (the queue's list)
    note: str | None = None  # the agent's own words at wrap-up
    repeated: str | None = None  # the id of the same caller's next call within kpi.repeat_window, if any
    csat: str | None = None  # the survey's answer, "1"-"5"; "none": surveyed, no answer; None: no survey


COLUMNS = tuple(f.name for f in fields(CallRecord))
_TYPES = {f.name: "TEXT PRIMARY KEY" if f.name == "id" else "REAL" if "float" in str(f.type) else "TEXT"
          for f in fields(CallRecord)}  # fmt: skip
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS calls ({", ".join(f"{name} {kind}" for name, kind in _TYPES.items())});
CREATE INDEX IF NOT EXISTS calls_started ON calls (started);
CREATE INDEX IF NOT EXISTS calls_caller ON calls (caller, started);
CREATE INDEX IF NOT EXISTS calls_outcome ON calls (outcome, started);
CREATE VIRTUAL TABLE IF NOT EXISTS transcripts USING fts5(text, call UNINDEXED, side UNINDEXED, start UNINDEXED,
                                                           finish UNINDEXED, words UNINDEXED);
"""
_INSERT = f"INSERT OR REPLACE INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


# columns later than the first schema: added to older databases when they are opened
ADDED_COLUMNS = ("recording_paused", "disposition", "note", "repeated", "csat")
NOTE_TRIES = 150  # batches a wrap-up note waits for its call's record (30 s) before it is given up
_ANNOTATE = "UPDATE calls SET disposition = ?, note = ? WHERE id = ?"
_BEFORE = "SELECT queue, agent, disposition FROM calls WHERE id = ?"
# the caller's last call disposed resolved within the window before this one, not already repeated: through
# an index of the disposed calls only (a number that calls often, a trunk's or a test's, would otherwise
# cost a walk over all its calls at every one of them; the query's terms are the index's own)
_UNSETTLED_INDEX = ("CREATE INDEX IF NOT EXISTS calls_unsettled ON calls (caller, started) "
                    "WHERE disposition IS NOT NULL AND repeated IS NULL")
_REPEATED = ("SELECT id, queue, agent FROM calls WHERE caller = ? AND started >= ? AND started < ? AND id != ? "
             "AND disposition IS NOT NULL AND repeated IS NULL AND disposition IN ({}) "
             "ORDER BY started DESC LIMIT 1")


@dataclass(frozen=True, slots=True)
class Resolution:
    """What first-call resolution counts as records are written: a call's first disposition (resolved or
    not), or a resolved call whose caller called again within the window."""

    queue: str | None
    agent: str | None
    disposition: str | None  # None: a repeat call
    resolved: bool


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One utterance of a call's conversation: which side, when (seconds into the recording), the text,
    and its words with their times (JSON)."""

    side: str  # "caller" or "agent"
    start: float
    end: float
    text: str
    words: str = "[]"


Transcript = tuple[str, Sequence[TranscriptLine]]  # a call's id, and its lines
_TRANSCRIBED = "INSERT INTO transcripts (text, call, side, start, finish, words) VALUES (?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class WrapUp:
    """What an agent said of a call after it (its record may not be written yet when it comes)."""

    id: str
    disposition: str | None
    note: str | None
    tries: int = 0


class RecordsError(Exception):
    pass


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the records database (created with its schema unless ``readonly``)."""
    try:
        if readonly:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(_SCHEMA)
            present = {row[1] for row in connection.execute("PRAGMA table_info(calls)")}
            for column in ADDED_COLUMNS:
                if column not in present:
                    connection.execute(f"ALTER TABLE calls ADD COLUMN {column} TEXT")
            connection.execute(_UNSETTLED_INDEX)
    except (sqlite3.Error, OSError) as exc:
        raise RecordsError(f"{path}: {exc}") from None
    connection.row_factory = sqlite3.Row
    return connection


class CallRecords:
    """The daemon's writer: :meth:`add` on the loop, the writing on one thread, in batches at most every
    ``BATCH_SECONDS`` (each batch one synced transaction: a few a second, not one per call)."""

    def __init__(self, path: Path, *, resolved: frozenset[str] = frozenset({"resolved"}),
                 repeat_window: float = 7 * 86400.0,
                 on_resolution: Callable[[Resolution], None] = lambda _: None) -> None:  # fmt: skip
        """``resolved``: the dispositions that say the caller's matter was settled; a caller who calls again
        within ``repeat_window`` seconds unsettles it (each reported to ``on_resolution``)."""
        self.path = path
        self._resolved = tuple(sorted(resolved))
        self._repeat_window = repeat_window
        self._on_resolution = on_resolution
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivrd-records")
        self._connection: sqlite3.Connection | None = None
        self._pending: list[CallRecord] = []
        self._notes: list[WrapUp] = []
        self._transcripts: list[Transcript] = []
        self._writing: asyncio.Future[tuple[list[WrapUp], list[Resolution]]] | None = None
        self._due: asyncio.TimerHandle | None = None
        self.written = 0
        self.failed = 0

    async def open(self) -> None:
        """Create or open the database (raises :class:`RecordsError`: the daemon does not start without it)."""
        self._connection = await asyncio.get_running_loop().run_in_executor(self._executor, connect, self.path)

    def add(self, record: CallRecord) -> None:
        self._pending.append(record)
        self._schedule()

    def annotate(self, wrap_up: WrapUp) -> None:
        """Keep the agent's disposition and note with the call's record (written with the next batch, after
        the record itself when that is still on its way)."""
        self._notes.append(wrap_up)
        self._schedule()

    def add_transcript(self, call: str, lines: Sequence[TranscriptLine]) -> None:
        """A call's conversation as text, written with the next batch."""
        self._transcripts.append((call, lines))
        self._schedule()

    async def transcript(self, call: str) -> list[dict[str, Any]]:
        """A call's conversation, line by line in time order (empty: none, or not yet)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, transcript, self._read(), call)

    async def history(self, caller: str, limit: int = 5) -> list[dict[str, Any]]:
        """The caller's last ``limit`` calls, newest first (read on the writer's thread, between batches)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: list(find(self._read(), Query(caller=caller,
                                                                                                  limit=limit))))

    async def kpi(self, since: float, until: float, queues: Mapping[str, QueueConfig],
                  resolved: frozenset[str]) -> dict[tuple[str, str], kpi.Figures]:  # fmt: skip
        """The KPI figures of the calls that started between ``since`` and ``until`` (:mod:`ivrd.kpi`)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, kpi.read, self._read(), since, until,
                                                                queues, resolved)  # fmt: skip

    async def prune(self, before: float) -> int:
        """Delete the records of calls that started before ``before``; how many went."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._prune, before)

    def _prune(self, before: float) -> int:
        assert self._connection is not None
        with self._connection:
            self._connection.execute("DELETE FROM transcripts WHERE call IN (SELECT id FROM calls WHERE started < ?)",
                                     (before,))  # fmt: skip
            return self._connection.execute("DELETE FROM calls WHERE started < ?", (before,)).rowcount

    def _read(self) -> sqlite3.Connection:
        assert self._connection is not None
        return self._connection

    def _schedule(self) -> None:
        if self._writing is None and self._due is None:
            self._due = asyncio.get_running_loop().call_later(BATCH_SECONDS, self._write_pending)

    def _write_pending(self) -> None:
        self._due = None
        batch, self._pending = self._pending, []
        notes, self._notes = self._notes, []
        transcripts, self._transcripts = self._transcripts, []
        self._writing = asyncio.get_running_loop().run_in_executor(self._executor, self._write, batch, notes,
                                                                   transcripts)  # fmt: skip
        self._writing.add_done_callback(lambda done: self._written(done, len(batch)))

    def _write(self, batch: Sequence[CallRecord], notes: Sequence[WrapUp],
               transcripts: Sequence[Transcript] = ()) -> tuple[list[WrapUp], list[Resolution]]:  # fmt: skip
        """Write the batch and the notes: the notes whose record is not there yet come back, with what
        first-call resolution counts (first dispositions, and resolved calls their callers called again
        about: each found through the caller index, never a scan)."""
        connection = self._connection
        assert connection is not None
        waiting, counted = [], []
        with connection:  # one transaction, committed (and synced) here
            connection.executemany(_INSERT, [[getattr(r, name) for name in COLUMNS] for r in batch])
            connection.executemany(_TRANSCRIBED, [(line.text, call, line.side, line.start, line.end, line.words)
                                                  for call, lines in transcripts for line in lines])  # fmt: skip
            for note in notes:
                before = connection.execute(_BEFORE, (note.id,)).fetchone()
                if before is None:
                    waiting.append(note)
                    continue
                connection.execute(_ANNOTATE, (note.disposition, note.note, note.id))
                if before["disposition"] is None and note.disposition is not None:
                    counted.append(Resolution(before["queue"], before["agent"], note.disposition,
                                              note.disposition in self._resolved))  # fmt: skip
            marks = ",".join("?" * len(self._resolved))
            for record in batch if self._resolved else ():
                if not record.caller:
                    continue
                first = connection.execute(_REPEATED.format(marks), (
                    record.caller, record.started - self._repeat_window, record.started, record.id,
                    *self._resolved)).fetchone()  # fmt: skip
                if first is not None:
                    connection.execute("UPDATE calls SET repeated = ? WHERE id = ?", (record.id, first["id"]))
                    counted.append(Resolution(first["queue"], first["agent"], None, False))
        return waiting, counted

    def _written(self, done: asyncio.Future[tuple[list[WrapUp], list[Resolution]]], count: int) -> None:
        error = None if done.cancelled() else done.exception()
        if error is None:
            self.written += count
            waiting, counted = done.result()
            for resolution in counted:
                self._on_resolution(resolution)
            for note in waiting:
                if note.tries < NOTE_TRIES:
                    self._notes.append(dataclasses.replace(note, tries=note.tries + 1))
                else:
                    event(log, "records.note_lost", logging.WARNING, id=note.id, disposition=note.disposition)
        else:  # the call.end log line still holds what the record would have
            self.failed += count
            event(log, "records.write_failed", logging.ERROR, records=count, error=repr(error))
        self._writing = None
        if (self._pending or self._notes or self._transcripts) and self._due is None:
            self._due = asyncio.get_running_loop().call_later(BATCH_SECONDS, self._write_pending)

    async def close(self) -> None:
        """Write what is pending, then close the database."""
        while self._writing is not None or self._pending or self._transcripts or any(n.tries == 0 for n in self._notes):
            if self._writing is None:  # not waiting for the batch's time: written now
                assert self._due is not None
                self._due.cancel()
                self._write_pending()
            assert self._writing is not None
            await asyncio.wait([self._writing])  # its done callback runs first
        if self._due is not None:  # notes still waiting for a record that never came
            self._due.cancel()
            self._due = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await asyncio.get_running_loop().run_in_executor(self._executor, connection.close)
        self._executor.shutdown(wait=True)


@dataclass(frozen=True, slots=True)
class Query:
    """``ivrd calls`` filters; None leaves a filter out."""

    since: float | None = None
    until: float | None = None
    caller: str | None = None
    outcome: str | None = None
    text: str | None = None  # in what the caller said, anywhere in their path, or in the agent's note
    disposition: str | None = None
    queue: str | None = None
    limit: int = 50


def find(connection: sqlite3.Connection, query: Query) -> Iterator[dict[str, Any]]:
    """The records that match, newest first."""
    where, values = [], []
    for column, op, value in (("started", ">=", query.since), ("started", "<", query.until),
                              ("caller", "=", query.caller), ("outcome", "=", query.outcome),
                              ("queue", "=", query.queue), ("disposition", "=", query.disposition)):  # fmt: skip
        if value is not None:
            where.append(f"{column} {op} ?")
            values.append(value)
    if query.text:
        pattern = "%" + query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(transcript LIKE ? ESCAPE '\\' OR path LIKE ? ESCAPE '\\' OR note LIKE ? ESCAPE '\\' "
                     "OR id IN (SELECT call FROM transcripts WHERE transcripts MATCH ?))")
        values += [pattern, pattern, pattern, _phrase(query.text)]
    sql = "SELECT * FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY started DESC LIMIT ?"
    for row in connection.execute(sql, [*values, query.limit]):
        record = dict(row)
        for column in ("path", "variables", "rtp"):
            record[column] = json.loads(record[column] or "null")
        if query.text:  # the lines of the conversation that say it, with their time in the call
            record["said"] = [dict(line) for line in connection.execute(
                "SELECT side, start, finish AS end, text FROM transcripts WHERE call = ? AND transcripts MATCH ? "
                "ORDER BY start", (record["id"], _phrase(query.text)))]  # fmt: skip
        yield record


def _phrase(text: str) -> str:
    """Words to find as a phrase in the transcripts' full-text index (never its query syntax)."""
    return '"' + text.replace('"', '""') + '"'


def transcript(connection: sqlite3.Connection, call: str) -> list[dict[str, Any]]:
    """A call's conversation, line by line in time order."""
    rows = connection.execute("SELECT side, start, finish AS end, text, words FROM transcripts WHERE call = ? "
                              "ORDER BY start", (call,))  # fmt: skip
    return [{**dict(row), "words": json.loads(row["words"])} for row in rows]


def describe(record: dict[str, Any]) -> str:
    """One line for a person: when, how long, who, what happened, and the id for the agents' link."""
    started = datetime.fromtimestamp(record["started"]).isoformat(sep=" ", timespec="seconds")
    parts = [started, f"{record['ended'] - record['started']:6.0f}s", f"{record['caller'] or '-':>14}",
             f"-> {record['dialed'] or '-':<8}", f"{record['outcome']:<14}", record["flow"] or "-"]  # fmt: skip
    if record["digits"]:
        parts.append(f"keys {record['digits']}")
    if record["transcript"]:
        parts.append(f'said "{record["transcript"]}"')
    if record["queue"]:
        parts.append(f"queue {record['queue']}")
    if record["wait"] is not None:
        parts.append(f"wait {record['wait']:.0f}s")
    if record["agent"]:
        parts.append(f"agent {record['agent']}")
    if record["talk"] is not None:
        parts.append(f"talk {record['talk']:.0f}s")
    if record.get("disposition"):
        parts.append(f"disposition {record['disposition']}")
    if record.get("note"):
        parts.append(f'note "{record["note"]}"')
    for line in record.get("said", ()):
        minutes, seconds = divmod(int(line["start"]), 60)
        parts.append(f'\n    {line["side"]:>6} {minutes}:{seconds:02d}  {line["text"]}')
    return " ".join([*parts, f"[{record['id']}]"])
