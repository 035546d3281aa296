"""The journal: an append-only JSON-lines record of every job, kept outside the .blend file.

Each line is a full snapshot of one job after a change, so recovery is "the last line per job id"
and needs no replay logic. JSON lines rather than SQLite because appends are atomic enough for one
writer, a torn last line after a crash is simply skipped, and a person can read the file when a
paid task seems lost. Lines that record a remote task id are fsynced before the job moves on: that
id is money spent, and losing it would mean paying twice.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from .jobs import Job

_log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"
# Terminal jobs older than this are dropped at compaction; a week covers any "what happened last
# night" question while keeping the file small across months of sessions.
TERMINAL_RETENTION_S = 7 * 24 * 3600.0


class Journal:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / JOURNAL_NAME
        self._lock = threading.Lock()
        self.torn_lines = 0

    def record(self, job: Job, *, durable: bool = False) -> None:
        """Append the job's current snapshot. `durable` fsyncs (used when a task id is first known)."""
        line = json.dumps({"t": time.time(), "job": job.snapshot()}, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())

    def load(self) -> list[Job]:
        """The latest snapshot of every job, in first-seen order. Unreadable lines are skipped."""
        latest: dict[str, dict[str, Any]] = {}
        self.torn_lines = 0
        if not self.path.exists():
            return []
        with self._lock, open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                    snapshot = entry["job"]
                    latest[snapshot["job_id"]] = snapshot
                except (json.JSONDecodeError, KeyError, TypeError):
                    # A crash mid-write leaves a torn last line; anything before it is intact.
                    self.torn_lines += 1
        if self.torn_lines:
            _log.warning("journal %s: skipped %d unreadable line(s)", self.path, self.torn_lines)
        jobs = []
        for snapshot in latest.values():
            try:
                jobs.append(Job.from_snapshot(snapshot))
            except (KeyError, ValueError, TypeError) as exc:
                _log.warning("journal: dropping unreadable job %s: %s", snapshot.get("job_id"), exc)
        return jobs

    def compact(self, jobs: list[Job] | None = None, *, now: float | None = None) -> int:
        """Rewrite the file as one line per job worth keeping; returns the number of lines kept.

        Live jobs are always kept; terminal ones only within the retention window. The rewrite goes to a
        temporary file that replaces the journal atomically, so a crash here loses nothing.
        """
        now = time.time() if now is None else now
        jobs = self.load() if jobs is None else jobs
        keep = [
            job
            for job in jobs
            if not job.state.is_terminal or now - job.created_at < TERMINAL_RETENTION_S
        ]
        tmp = self.path.with_suffix(".compact")
        with self._lock:
            with open(tmp, "w", encoding="utf-8") as handle:
                for job in keep:
                    handle.write(json.dumps({"t": now, "job": job.snapshot()}, separators=(",", ":")) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        return len(keep)

    def line_count(self) -> int:
        if not self.path.exists():
            return 0
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            return sum(1 for _ in handle)

