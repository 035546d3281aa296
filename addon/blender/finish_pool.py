"""A pool of background Blender processes that finish Production results, off the main thread.

Each worker is a separate Blender (`blender --factory-startup -b --python worker_entry.py`, or, when
Kiln itself runs as the `bpy` module, this Python with `worker_entry.py`) that lives for many jobs, so
Blender's start-up is paid once per worker, not once per asset. A request goes to a worker's stdin as
one JSON line; its reply comes back on stdout as one JSON line (the worker sends Blender's own output
to stderr). Reader threads hand requests on as workers free up, so the main thread only ever calls
`submit` and the non-blocking `poll`.

A worker that dies (killed, out of memory, a crash in Blender's C code) fails only the job it held,
with its exit code and the tail of its output; the next request starts a fresh worker. A worker that
hangs (a deadlock, an operator that never returns, a stopped process) is killed once its job has
taken `job_timeout_s`, and fails the same way: finishing never leaves a run waiting forever.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import bpy

_log = logging.getLogger(__name__)

REPLY_PREFIX = "KILN-FINISHED "
"""Marks a worker's reply line, so a stray line of output on stdout is never taken for one."""
ENTRY_SCRIPT = Path(__file__).with_name("worker_entry.py")
STDERR_TAIL_LINES = 30
JOB_TIMEOUT_S = 600.0
"""Longest one asset's finishing may take before its worker is deemed hung (a large asset's remesh,
LODs and exports take tens of seconds; a hung worker would otherwise hold its job for ever)."""


def default_size(headless: bool) -> int:
    """Every core for a headless run; in the artist's Blender one core stays for the UI (at least 1)."""
    cores = os.cpu_count() or 1
    return cores if headless else max(1, cores - 1)


def worker_command(package: str) -> list[str]:
    """How to start one worker. The Blender binary when there is one; under the `bpy` module
    `bpy.app.binary_path` is empty and this Python (which has `bpy`) runs the entry script."""
    root = Path(sys.modules[package].__path__[0])
    args = ["--package", package, "--root", str(root)]
    binary = bpy.app.binary_path
    if binary and Path(binary).is_file() and "blender" in Path(binary).name.lower():
        return [binary, "--factory-startup", "-b", "-noaudio", "--python", str(ENTRY_SCRIPT), "--", *args]
    return [sys.executable, str(ENTRY_SCRIPT), *args]


@dataclass(frozen=True)
class Outcome:
    """What became of one request: the worker's reply, or why there is none."""

    job_id: str
    ok: bool
    reply: dict[str, Any] = field(default_factory=dict)
    code: str = ""
    message: str = ""


class _Worker:
    def __init__(self, pool: FinishPool, command: list[str], threads: int) -> None:
        self.pool = pool
        env = dict(os.environ, KILN_WORKER_THREADS=str(threads))
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env, text=True, bufsize=1)
        self.job_id: str | None = None
        self.sent_at = 0.0
        """When the current job was sent (monotonic)."""
        self.hung_after = 0.0
        """Seconds the job had taken when the pool killed this worker as hung (0: it was not)."""
        self.tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.retiring = False
        self._errors = threading.Thread(target=self._read_errors, name="kiln-finish-stderr", daemon=True)
        self._errors.start()
        threading.Thread(target=self._read_replies, name="kiln-finish-reply", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, job_id: str, request: dict[str, Any]) -> bool:
        self.job_id = job_id
        self.sent_at = time.monotonic()
        stdin = self.process.stdin
        try:
            assert stdin is not None
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
        except (OSError, ValueError):
            return False  # it died before taking the request: the reader reports the job
        return True

    def close(self) -> None:
        self.retiring = True
        stdin: IO[str] | None = self.process.stdin
        try:
            if stdin is not None:
                stdin.close()  # the worker ends at the end of its input
        except OSError:
            pass

    def _read_errors(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        for line in stream:
            if line.strip():
                self.tail.append(line.rstrip())

    def _read_replies(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        for line in stream:
            if not line.startswith(REPLY_PREFIX):
                if line.strip():
                    self.tail.append(line.rstrip())
                continue
            try:
                reply = json.loads(line[len(REPLY_PREFIX):])
            except ValueError:
                self.tail.append(line.rstrip())
                continue
            self.pool._replied(self, reply)
        code = self.process.wait()
        self._errors.join(2.0)  # the reason needs its last words
        self.pool._ended(self, code)

    def reason(self, code: int) -> str:
        tail = " | ".join(list(self.tail)[-4:])
        if self.hung_after:
            how = f"gave no answer in {self.hung_after:.0f} s and was stopped (hung)"
        else:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"the finishing process (pid {self.pid}) {how}" + (f": {tail[-400:]}" if tail else "")


class FinishPool:
    """Up to `size` workers; requests beyond that wait in order. Thread-safe."""

    def __init__(self, package: str, size: int, job_timeout_s: float = JOB_TIMEOUT_S) -> None:
        self.package = package
        self.size = max(1, size)
        self.job_timeout_s = job_timeout_s
        self._lock = threading.Lock()
        self._pending: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._workers: list[_Worker] = []
        self._outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._wanted: set[str] = set()
        """Job ids whose outcome someone still waits for (`forget` drops the others on arrival)."""

    def submit(self, job_id: str, request: dict[str, Any]) -> None:
        with self._lock:
            self._wanted.add(job_id)
            self._pending.append((job_id, request))
            self._dispatch()

    def warm(self) -> None:
        """Start every worker now, before the first result needs one: Blender's start-up (a second or
        two each) then overlaps the generation instead of delaying the first finishes."""
        with self._lock:
            while len(self._workers) < self.size:
                try:
                    self._workers.append(_Worker(self, worker_command(self.package), self._threads()))
                except OSError as exc:
                    _log.warning("cannot start a finishing process: %s", exc)
                    return

    def _threads(self) -> int:
        return max(1, (os.cpu_count() or 1) // self.size)

    def poll(self) -> list[Outcome]:
        """Every outcome that arrived since the last call; never waits. Kills a worker whose job has
        taken longer than `job_timeout_s`: its reader then reports the job failed, like any death."""
        self._stop_hung()
        found: list[Outcome] = []
        while True:
            try:
                outcome = self._outcomes.get_nowait()
            except queue.Empty:
                return found
            with self._lock:
                if outcome.job_id not in self._wanted:
                    continue
                self._wanted.discard(outcome.job_id)
            found.append(outcome)

    def _stop_hung(self) -> None:
        now = time.monotonic()
        with self._lock:
            hung = [w for w in self._workers
                    if w.job_id is not None and not w.hung_after and now - w.sent_at > self.job_timeout_s]
            for worker in hung:
                worker.hung_after = now - worker.sent_at
        for worker in hung:
            _log.warning("finishing %s: pid %d gave no answer in %.0f s; stopping it", worker.job_id, worker.pid,
                         worker.hung_after)
            worker.process.kill()  # our own child, by its handle; SIGKILL also ends a stopped process

    def forget(self) -> None:
        """Drop every request not yet started and every outcome still to come (the engine stopped: its
        jobs are READY in the journal, and the next engine finishes them again)."""
        with self._lock:
            self._pending.clear()
            self._wanted.clear()

    def running(self) -> dict[str, int]:
        """Job id → pid of the worker finishing it."""
        with self._lock:
            return {w.job_id: w.pid for w in self._workers if w.job_id is not None}

    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending) or any(w.job_id is not None for w in self._workers)

    def close(self, timeout_s: float = 10.0) -> None:
        """Close every worker's input (it ends after the job it has); kill one that takes too long."""
        with self._lock:
            self._pending.clear()
            workers, self._workers = list(self._workers), []
        for worker in workers:
            worker.close()
        for worker in workers:
            try:
                worker.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                worker.process.kill()  # our own child, by its handle
                worker.process.wait()

    # Called with the lock held.
    def _dispatch(self) -> None:
        idle = [w for w in self._workers if w.job_id is None and not w.retiring]
        for worker in idle[:max(0, len(self._workers) - self.size)]:
            worker.close()  # the pool was made smaller
            self._workers.remove(worker)
            idle.remove(worker)
        while self._pending:
            if idle:
                worker = idle.pop(0)
            elif len(self._workers) < self.size:
                try:
                    worker = _Worker(self, worker_command(self.package), self._threads())
                except OSError as exc:
                    job_id, _ = self._pending.popleft()
                    self._outcomes.put(Outcome(job_id, False, code="finish_failed",
                                               message=f"cannot start a finishing process: {exc}"))
                    continue
                self._workers.append(worker)
            else:
                return
            job_id, request = self._pending.popleft()
            worker.send(job_id, request)

    # Called from a worker's reader thread.
    def _replied(self, worker: _Worker, reply: dict[str, Any]) -> None:
        with self._lock:
            job_id, worker.job_id = worker.job_id, None
            if job_id is not None:
                self._outcomes.put(Outcome(job_id, bool(reply.get("ok")), reply, str(reply.get("code", "")),
                                           str(reply.get("message", ""))))
            self._dispatch()

    def _ended(self, worker: _Worker, code: int) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            job_id, worker.job_id = worker.job_id, None
            if job_id is not None:
                reason = worker.reason(code)
                _log.warning("finishing %s failed: %s", job_id, reason)
                self._outcomes.put(Outcome(job_id, False, code="finish_failed", message=reason))
            elif not worker.retiring:
                _log.warning("%s", worker.reason(code))
            self._dispatch()
