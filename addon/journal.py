"""The journal: an append-only JSON-lines record of every job and batch, kept outside the .blend file.

Each line is a full snapshot of one job (or one batch) after a change, so recovery is "the last line
per job id" and needs no replay logic. JSON lines rather than SQLite because appends are atomic enough
for one writer, a torn last line after a crash is simply skipped, and a person can read the file when
a paid task seems lost.

Durability: the intent to create (a job entering `submitting`) is fsynced before the create is sent,
and the task id the moment it returns; between the two, a crash leaves an *uncertain* job, never a
forgotten one.

Versions: every line carries the format version (`"v"`). A line this version cannot read (a newer
format, an unknown kind, fields it does not understand) is never dropped: it is reported in
`unreadable`, rewritten verbatim at compaction, and the job it names is held back (not recovered from
an older snapshot, which could send a paid job again).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .jobs import BatchSpec, Job, JobState

_log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"
FORMAT_VERSION = 1
"""Lines without a version were written before versions existed (same shape): version 0."""
READABLE_VERSIONS = frozenset({0, FORMAT_VERSION})
LATE_ID_STATES = frozenset({JobState.SUBMITTING, JobState.UNCERTAIN})
"""States in which a job's create may still bring a task id home after its engine read the journal."""
# Terminal jobs older than this are dropped at compaction; a week covers any "what happened last
# night" question while keeping the file small across months of sessions.
TERMINAL_RETENTION_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class UnreadableEntry:
    """A complete journal line this version of Kiln cannot read: kept as it is, and shown to the artist."""

    line_number: int
    reason: str
    text: str
    """The line exactly as written (without its newline)."""
    job_id: str | None = None
    """The job it is about, when that much could be read (that job is held back)."""

    @property
    def summary(self) -> str:
        about = f" (job {self.job_id})" if self.job_id else ""
        return f"line {self.line_number}{about}: {self.reason}"


@dataclass
class JournalContents:
    """What `Journal.load` found."""

    jobs: list[Job] = field(default_factory=list)
    """The latest snapshot of every readable job, in first-seen order."""
    batches: dict[str, BatchSpec] = field(default_factory=dict)
    """Every batch, as last recorded, in first-seen order."""
    unreadable: list[UnreadableEntry] = field(default_factory=list)
    torn_lines: int = 0
    """Incomplete lines (not even JSON): a write cut short by a crash, never a whole entry."""
    held_jobs: set[str] = field(default_factory=set)
    """Jobs whose newest entry cannot be read: left out of `jobs` rather than rebuilt from an older one."""


class Journal:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / JOURNAL_NAME
        self._lock = threading.Lock()
        self._tail_checked = False
        self.torn_lines = 0
        self.unreadable: list[UnreadableEntry] = []

    # ------------------------------------------------------------------ writing
    def record(self, job: Job, *, durable: bool = False) -> None:
        """Append the job's current snapshot. `durable` fsyncs (a create going out, a task id come back)."""
        self.record_snapshot(job.snapshot(), durable=durable)

    def record_snapshot(self, snapshot: dict[str, Any], *, durable: bool = False) -> None:
        """`record` for a snapshot taken earlier (under the engine's lock, written outside it)."""
        self._append({"job": snapshot}, durable=durable)

    def record_batch(self, batch: BatchSpec, *, durable: bool = False) -> None:
        """Append a batch's settings; its jobs are recorded after it, so a restart knows them first."""
        self._append({"batch": batch.to_json()}, durable=durable)

    def _append(self, entry: dict[str, Any], *, durable: bool) -> None:
        line = _line({"v": FORMAT_VERSION, "t": time.time(), **entry})
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            if not self._tail_checked:
                self._tail_checked = True
                if self._ends_torn():
                    # A crash cut the last line short; without this newline our entry would be glued
                    # to it and both would be unreadable.
                    handle.write("\n")
            handle.write(line)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())

    def _ends_torn(self) -> bool:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                if handle.tell() == 0:
                    return False
                handle.seek(-1, os.SEEK_END)
                return handle.read(1) != b"\n"
        except OSError:
            return False

    # ------------------------------------------------------------------ reading
    def load(self) -> JournalContents:
        """Every job's latest snapshot and every batch. Unreadable entries are kept in the file and
        reported (`unreadable`); a job named by one after its last readable snapshot is held back."""
        with self._lock:
            scan = _scan(self.path)
        contents = JournalContents(batches=scan.batches, unreadable=scan.unreadable, torn_lines=scan.torn,
                                   held_jobs=scan.held)
        contents.jobs = [job for job_id, (_, _, job) in scan.jobs.items() if job_id not in scan.held]
        self.torn_lines, self.unreadable = contents.torn_lines, contents.unreadable
        if contents.torn_lines:
            _log.warning("journal %s: skipped %d incomplete line(s) left by a crash", self.path, contents.torn_lines)
        for entry in contents.unreadable:
            _log.warning("journal %s: kept an entry this version cannot read, %s", self.path, entry.summary)
        return contents

    # ------------------------------------------------------------------ compaction
    def compact(self, jobs: Iterable[Job] | None = None, batches: Iterable[BatchSpec] | None = None, *,
                now: float | None = None) -> int:
        """Rewrite the file as one line per job and batch worth keeping; returns the number of lines kept.

        Live jobs are always kept; terminal ones only within the retention window; batches while one of
        their kept jobs needs them. A task id the file knows and `jobs` does not is never dropped.
        Unreadable entries are copied verbatim (first, in their order), and so is the last readable line
        of each job they hold back. The rewrite goes to a temporary file that replaces the journal
        atomically, so a crash here loses nothing.
        """
        now = time.time() if now is None else now
        if jobs is None or batches is None:
            found = self.load()
            jobs = found.jobs if jobs is None else jobs
            batches = found.batches.values() if batches is None else batches
        with self._lock:
            scan = _scan(self.path)
            keep = [job for job in jobs if job.job_id not in scan.held
                    and (not job.state.is_terminal or now - job.created_at < TERMINAL_RETENTION_S)]
            needed = {job.spec.batch for job in keep}
            # Verbatim lines first, in their order: a snapshot written now must stay newer than them.
            verbatim = [(e.line_number, e.text) for e in scan.unreadable]
            verbatim += [(number, text) for job_id, (number, text, _) in scan.jobs.items() if job_id in scan.held]
            lines = [text + "\n" for _, text in sorted(verbatim)]
            lines += [_line({"v": FORMAT_VERSION, "t": now, "batch": b.to_json()}) for b in batches
                      if b.name in needed]
            for job in keep:
                on_file = scan.jobs.get(job.job_id)
                if job.state in LATE_ID_STATES and on_file is not None and on_file[2].task_id is not None:
                    # A task id written after this copy of the job was read (a create that came back
                    # after its engine stopped): the id is money, so the file's line wins.
                    lines.append(on_file[1] + "\n")
                else:
                    lines.append(_line({"v": FORMAT_VERSION, "t": now, "job": job.snapshot()}))
            tmp = self.path.with_suffix(".compact")
            with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as handle:
                handle.writelines(lines)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            self._tail_checked = True
        return len(lines)

    def line_count(self) -> int:
        if not self.path.exists():
            return 0
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            return sum(1 for _ in handle)


def _line(entry: dict[str, Any]) -> str:
    return json.dumps(entry, separators=(",", ":")) + "\n"


@dataclass
class _Scan:
    jobs: dict[str, tuple[int, str, Job]] = field(default_factory=dict)
    """Job id → (line number, text, job) of its newest readable snapshot."""
    batches: dict[str, BatchSpec] = field(default_factory=dict)
    unreadable: list[UnreadableEntry] = field(default_factory=list)
    torn: int = 0

    @property
    def held(self) -> set[str]:
        """Jobs with an unreadable entry newer than their newest readable one: not recovered, kept as is."""
        return {e.job_id for e in self.unreadable if e.job_id and e.line_number > self.jobs.get(e.job_id, (0,))[0]}


def _scan(path: Path) -> _Scan:
    """Read every line once: what load and compaction both need (the journal's lock held)."""
    scan = _Scan()
    if not path.exists():
        return scan
    snapshots: dict[str, tuple[int, str, dict[str, Any]]] = {}
    with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.rstrip("\n")
            if not text.strip():
                continue
            try:
                entry = json.loads(text)
            except (json.JSONDecodeError, UnicodeError):
                entry = None
            if not isinstance(entry, dict):
                scan.torn += 1  # never JSON: a write cut short, not an entry anyone made
                continue
            problem = _unreadable_reason(entry)
            if not problem and "batch" in entry:
                try:
                    batch = BatchSpec.from_json(entry["batch"])
                except (KeyError, ValueError, TypeError) as exc:
                    problem = f"a batch this version cannot read ({exc})"
                else:
                    scan.batches[batch.name] = batch
                    continue
            if problem:
                scan.unreadable.append(UnreadableEntry(number, problem, text, _job_id_of(entry)))
                continue
            snapshots[entry["job"]["job_id"]] = (number, text, entry["job"])
    for job_id, (number, text, snapshot) in snapshots.items():
        try:
            scan.jobs[job_id] = (number, text, Job.from_snapshot(snapshot))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            scan.unreadable.append(UnreadableEntry(number, f"a job this version cannot read ({exc})", text, job_id))
    scan.unreadable.sort(key=lambda e: e.line_number)
    return scan


def _unreadable_reason(entry: dict[str, Any]) -> str:
    """Why this version cannot read a (complete, JSON) entry; empty when it can."""
    version = entry.get("v", 0)
    if version not in READABLE_VERSIONS:
        return f"written by a newer Kiln (journal format {version!r}; this version reads {FORMAT_VERSION})"
    if "job" in entry:
        job = entry["job"]
        if not isinstance(job, dict) or not isinstance(job.get("job_id"), str):
            return "a job entry without a job id"
        return ""
    if "batch" in entry:
        return "" if isinstance(entry["batch"], dict) else "a batch entry that is not an object"
    return f"an entry of an unknown kind ({', '.join(sorted(k for k in entry if k not in ('v', 't')))})"


def _job_id_of(entry: dict[str, Any]) -> str | None:
    job = entry.get("job")
    job_id = job.get("job_id") if isinstance(job, dict) else None
    return job_id if isinstance(job_id, str) else None
