"""Soak: many jobs through the real engine (Scheduler + journal on disk), nothing lost, nothing bought twice.
Writes JSON.

    python bench/soak_bench.py [--out bench/results/soak.json] [--local-jobs 1000] [--tripo-jobs 300]

The headless batch runner needs Blender, so this drives the Scheduler directly and drains results as the
main-thread pump does (take_ready → mark_imported, or mark_imported(finished=False) → mark_finished for
Production), checking each result file before "importing" it.

1. local: N Draft jobs on the embedded engine, built through the backend registry (`build("local")`).
2. tripo: N jobs (two thirds a Production batch, one third Drafts) against the Tripo sandbox on 127.0.0.1,
   with faults on: a concurrency limit below Kiln's (code 2000 + Retry-After), a request-rate limit
   (1007), task failures (2008, 2018), dropped and truncated downloads spread over the run, result URLs
   that live ~1-2 s, and odd statuses (banned, expired, unknown, garbage). When the queue is idle every
   failed job is retried once, as --resume or the panel's Retry does: a paid task is watched or
   downloaded again, never created again.

Each soak reports:
- lost: assets that neither finished (result on disk, intact) nor failed/uncertain with a reason (must be 0);
- duplicated creates: creates per asset beyond the attempts that needed one (must be 0); for the sandbox
  from its task log (each asset has its own seed, sent as model_seed), plus "orphan" tasks no job holds;
  for the local engine from the submits it received per job;
- peak threads (the scheduler's own, `Scheduler.threads_peak`, and the whole process's), threads left
  after shutdown, RSS before / peak / after (VmRSS), journal bytes and lines before and after the
  compaction at shutdown, wall time and jobs/s;
- a reload: a new scheduler on the compacted journal gets every job back in the state it ended in and
  sends nothing again.
"""

from __future__ import annotations

import argparse
import collections
import gc
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from bench_common import print_table, rss_kb, write_result  # noqa: E402

from addon.backends import registry  # noqa: E402
from addon.backends.base import Backend  # noqa: E402
from addon.backends.local import generate  # noqa: E402
from addon.backends.tripo import TripoBackend  # noqa: E402
from addon.jobs import BatchSpec, Job, JobKind, JobSpec, JobState, Mode  # noqa: E402
from addon.journal import Journal  # noqa: E402
from addon.scheduling import Scheduler, SchedulerConfig  # noqa: E402
from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_soak_bench"
PROMPTS = ("wooden crate", "mossy rock", "oak barrel", "old chair")
LOCAL_PROMPTS = ("crate", "rock", "barrel", "chair", "tree", "lamp", "table", "sword")
PUMP_DEADLINE_S = 240.0
"""A soak that has not drained by then counts what is still in flight as lost (a run that never ends)."""



# ---------------------------------------------------------------------------------------------- measuring
@dataclass
class Monitor:
    """Peaks sampled from the pump loop (every 50 ms at most): threads and resident memory."""

    threads_peak: int = 0
    kiln_threads_peak: int = 0
    rss_peak_kb: int = 0
    _last: float = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if now - self._last >= 0.05:
            self._last = now
            self.threads_peak = max(self.threads_peak, threading.active_count())
            self.kiln_threads_peak = max(self.kiln_threads_peak, kiln_threads())
            self.rss_peak_kb = max(self.rss_peak_kb, rss_kb())


class LogTally(logging.Handler):
    """What the engine logged during a soak, by level, with the first few errors word for word."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.levels: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.levels[record.levelname] += 1
        if record.levelno >= logging.ERROR and len(self.errors) < 5:
            self.errors.append(f"{record.name}: {record.getMessage()}"[:300])


def journal_size(journal: Journal) -> dict[str, int]:
    return {"bytes": journal.path.stat().st_size if journal.path.exists() else 0, "lines": journal.line_count()}


def kiln_threads() -> int:
    """Threads of Kiln's own making (the scheduler's and the local engine's pools)."""
    return sum(1 for t in threading.enumerate() if t.name.startswith("kiln-"))


def threads_left(baseline: int, timeout_s: float = 3.0) -> int:
    """Kiln threads still alive once shut-down pools have had a moment to exit (a leak if above 0)."""
    deadline = time.monotonic() + timeout_s
    while kiln_threads() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return kiln_threads() - baseline


def counting_submits(backend: Backend) -> collections.Counter[str]:
    """Count the creates `backend` receives per attempt (its client_ref, Kiln's job id). Instrumentation on
    the instance: the backend itself runs unchanged."""
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    submit = backend.submit

    def counted(spec: JobSpec, client_ref: str) -> str:
        with lock:
            counts[client_ref] += 1
        return submit(spec, client_ref)

    backend.submit = counted  # type: ignore[method-assign]  # patching this one instance on purpose
    return counts


# ---------------------------------------------------------------------------------------------- the pump
@dataclass
class PumpStats:
    imported: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    """Results the pump refused (file missing, or not the bytes the provider made): must stay empty."""
    drained: bool = True


def pump(scheduler: Scheduler, monitor: Monitor, stats: PumpStats, *, deadline: float,
         check: Callable[[Job], str | None] | None = None, tick: Callable[[], None] | None = None) -> None:
    """Stand-in for `runtime.pump` until the queue is idle: import each ready result (a check stands in for
    Blender reading the file) and finish Production ones, as the finishing step would."""
    while True:
        job = scheduler.take_ready()
        if job is not None:
            problem = None if Path(job.files.get("model", "")).is_file() else "no model file"
            problem = problem or (check(job) if check is not None else None)
            if problem is not None:
                stats.rejected[problem] += 1
                scheduler.mark_failed(job, "import_failed", f"the soak's import refused it: {problem}")
            elif job.spec.mode is Mode.PRODUCTION:
                scheduler.mark_imported(job, finished=False)
                scheduler.mark_finished(job)
                stats.imported += 1
            else:
                scheduler.mark_imported(job)
                stats.imported += 1
            continue
        monitor.sample()
        if tick is not None:
            tick()
        if scheduler.is_idle():
            return
        if time.monotonic() > deadline:
            stats.drained = False
            return
        time.sleep(0.005)


# ---------------------------------------------------------------------------------------------- outcomes
def outcome(scheduler: Scheduler, assets: int) -> dict[str, Any]:
    """Each asset by its newest attempt: finished (its result on disk), or failed/uncertain/cancelled with a
    reason. Anything else is lost, and so is an asset with no newest attempt or with two."""
    latest = [j for j in scheduler.jobs.values() if j.superseded_by is None]
    per_asset = collections.Counter(j.spec.index for j in latest)
    finished = {j.job_id for j in latest if j.state is JobState.FINISHED and Path(j.files.get("model", "")).is_file()}
    explained = {j.job_id for j in latest if j.state in (JobState.FAILED, JobState.UNCERTAIN, JobState.CANCELLED)
                 and ((j.error is not None and j.error.message.strip()) or j.note.strip())}
    lost = [j for j in latest if j.job_id not in finished and j.job_id not in explained]
    ended = [j for j in latest if j.job_id in explained]
    return {
        "assets": assets,
        "finished": len(finished),
        "failed": sum(j.state is JobState.FAILED for j in ended),
        "uncertain": sum(j.state is JobState.UNCERTAIN for j in ended),
        "cancelled": sum(j.state is JobState.CANCELLED for j in ended),
        "lost": len(lost) + max(0, assets - len(per_asset)) + sum(n - 1 for n in per_asset.values()),
        "lost_states": dict(collections.Counter(j.state.value for j in lost)),
        "failure_reasons": dict(collections.Counter(j.error.code if j.error else j.state.value
                                                    for j in ended).most_common()),
        "failure_examples": {code: next(j.error.message for j in ended if j.error and j.error.code == code)
                             for code in {j.error.code for j in ended if j.error}},
        "attempts": len(scheduler.jobs),
    }


def reload_check(folder: Path, backend: Backend, ended: dict[str, JobState], creates: Callable[[], int],
                 settle_s: float = 1.0) -> dict[str, int]:
    """A new scheduler on the compacted journal: every job back as it ended, and no create sent."""
    before = creates()
    scheduler = Scheduler([backend], journal=Journal(folder), config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    time.sleep(settle_s)
    states = {j.job_id: j.state for j in scheduler.jobs.values()}
    scheduler.shutdown()
    return {"recovered": len(states), "missing": sum(1 for i in ended if i not in states),
            "changed_state": sum(1 for i, s in ended.items() if i in states and states[i] is not s),
            "creates_after_reload": creates() - before}


@dataclass
class Run:
    """What every soak measures around its scheduler."""

    name: str
    jobs: int
    folder: Path
    monitor: Monitor = field(default_factory=Monitor)
    stats: PumpStats = field(default_factory=PumpStats)
    logs: LogTally = field(default_factory=LogTally)
    rss_before: int = 0
    kiln_before: int = 0
    started: float = 0.0

    def __enter__(self) -> Run:
        gc.collect()
        self.rss_before, self.kiln_before = rss_kb(), kiln_threads()
        logging.getLogger().addHandler(self.logs)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self.logs)

    def report(self, scheduler: Scheduler, journal: Journal, result: dict[str, Any], wall: float) -> dict[str, Any]:
        """Shut `scheduler` down (which compacts the journal) and measure everything around it."""
        before = journal_size(journal)
        rss_loaded = rss_kb()
        scheduler.shutdown()
        return {
            "name": self.name, "jobs": self.jobs, **result,
            "pump": {"imported": self.stats.imported, "rejected": dict(self.stats.rejected),
                     "drained": self.stats.drained},
            "threads": {"scheduler_peak": scheduler.threads_peak, "kiln_peak": self.monitor.kiln_threads_peak,
                        "process_peak": self.monitor.threads_peak,
                        "kiln_left_after_shutdown": threads_left(self.kiln_before)},
            "rss_kb": {"before": self.rss_before, "peak": self.monitor.rss_peak_kb, "after_drain": rss_loaded,
                       "growth": rss_loaded - self.rss_before},
            "journal": {"before_compaction": before, "after_compaction": journal_size(journal)},
            "wall_s": round(wall, 2),
            "jobs_per_s": round(self.jobs / wall, 2),
            "log": {"levels": dict(self.logs.levels), "first_errors": self.logs.errors},
        }


# ---------------------------------------------------------------------------------------------- soak 1
def engine_only_jobs_per_s(specs: list[JobSpec], work: Path, workers: int) -> float:
    """The embedded engine alone on these specs, as many at once as the backend runs: what the soak's
    jobs/s is to be read against on a machine others share."""
    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda item: generate(item[1], work / f"engine-only-{item[0]}"), enumerate(specs)))
    return len(specs) / (time.monotonic() - started)


def soak_local(n: int, work: Path) -> dict[str, Any]:
    """N local Draft jobs queued at once (an artist hammering Draft, or a script), on the artist's config
    (one slot kept for drafts)."""
    specs = [JobSpec(kind=JobKind.TEXT, backend="local", mode=Mode.DRAFT, prompt=LOCAL_PROMPTS[i % len(LOCAL_PROMPTS)],
                     seed=i + 1, index=i) for i in range(n)]
    workers = registry.capabilities("local").concurrency["cpu"]
    reference = engine_only_jobs_per_s(specs[: min(n, 100)], work, workers)
    with Run("local", n, work / "local") as run:
        backend = registry.build("local", scratch_dir=work / "local-scratch")
        submits = counting_submits(backend)
        journal = Journal(run.folder)
        scheduler = Scheduler([backend], journal=journal)
        scheduler.start()
        scheduler.add_many(specs)
        pump(scheduler, run.monitor, run.stats, deadline=time.monotonic() + PUMP_DEADLINE_S)
        wall = time.monotonic() - run.started
        result = outcome(scheduler, n)
        ended = {j.job_id: j.state for j in scheduler.jobs.values()}
        report = run.report(scheduler, journal, result, wall)
    report["creates"] = sum(submits.values())
    report["duplicated_creates"] = sum(count - 1 for count in submits.values() if count > 1)
    report["engine_only_jobs_per_s"] = round(reference, 2)
    report["cache_bytes"] = sum(p.stat().st_size for p in (run.folder / "results").rglob("*") if p.is_file())
    report["reload"] = reload_check(run.folder, registry.build("local", scratch_dir=work / "local-scratch-2"),
                                    ended, lambda: 0)
    return report


# ---------------------------------------------------------------------------------------------- soak 2
@dataclass
class Faults:
    """Faults the sandbox is asked for during the soak, and what it answered (tallied on the server side)."""

    state: SandboxState
    drops: int
    truncations: int
    every_s: float = 1.5
    """At most one drop and one truncation armed per period, so they spread over the run."""
    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    answered: collections.Counter[str] = field(default_factory=collections.Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last: float = 0.0

    def tick(self) -> None:
        """Spread dropped and truncated downloads over the run (the sandbox's counters serve the next ones)."""
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        with self.state.lock:
            if self.injected["drop"] < self.drops and self.state.drop_connections == 0:
                self.state.drop_connections += 1
                self.injected["drop"] += 1
            if self.injected["truncate"] < self.truncations and self.state.truncate_downloads == 0:
                self.state.truncate_downloads += 1
                self.injected["truncate"] += 1

    def listen(self, sandbox: TripoSandbox) -> None:
        """Tally every error the sandbox answers (by Tripo code) and every CDN answer that is not a 200."""
        faults = self
        handler: Any = sandbox.server.RequestHandlerClass

        class Tallied(handler):  # type: ignore[misc]  # the sandbox builds its handler class per server
            def _error(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
                with faults._lock:
                    faults.answered[f"code_{code}"] += 1
                super()._error(status, code, message, headers)

            def send_response(self, code: int, message: str | None = None) -> None:
                if self.path.startswith("/cdn/") and code != 200:
                    with faults._lock:
                        faults.answered[f"cdn_{code}"] += 1
                super().send_response(code, message)

        sandbox.server.RequestHandlerClass = Tallied


def soak_tripo(n: int, work: Path, *, latency_s: float = 0.4) -> dict[str, Any]:
    """N jobs against the Tripo sandbox with faults on, on the headless config (every slot to production);
    then one retry of every failed job."""
    state = SandboxState(
        latency_s={"draft": latency_s, "textured": 2 * latency_s},
        limit=6,  # below Kiln's 10: creates past it are refused with 2000 and Retry-After
        rate_limit_per_s=25.0,
        failure_rates={2008: 0.03, 2018: 0.02},
        url_lifetime_s=1.5,  # whole seconds on the wire: links live 0.5-1.5 s
        odd_statuses={"banned": 0.01, "expired": 0.01, "unknown": 0.01, "???": 0.005},
        create_errors=[2000, 1007, 2000, 1007],
        balance=1e7,
    )
    faults = Faults(state, drops=max(1, n // 15), truncations=max(1, n // 15))
    with Run("tripo", n, work / "tripo") as run, TripoSandbox(state) as sandbox:
        faults.listen(sandbox)
        settings = registry.BackendSettings(KEY, sandbox.url, timeout_s=5.0)
        backend = registry.build("tripo", settings)
        assert isinstance(backend, TripoBackend)
        journal = Journal(run.folder)
        scheduler = Scheduler([backend], journal=journal,
                              config=SchedulerConfig(draft_reserved_slots=0, give_up_after_s=5.0))
        scheduler.start()
        scheduler.add_batch(BatchSpec("soak", backend="tripo"))
        jobs = scheduler.add_many(
            JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.DRAFT if i % 3 == 2 else Mode.PRODUCTION,
                    prompt=PROMPTS[i % len(PROMPTS)], seed=i + 1, index=i,
                    batch="" if i % 3 == 2 else "soak")
            for i in range(n))
        # Attempts that needed a create: every first attempt, and retries of jobs with nothing paid.
        fresh = {j.job_id for j in jobs}

        def intact(job: Job) -> str | None:
            """The bytes the provider made, not a truncated or dropped download."""
            assert job.task_id is not None
            for role in ("model", "preview"):
                made = state.files.get(f"{job.task_id}_{role}")
                path = job.files.get(role)
                if made is not None and path is not None and Path(path).read_bytes() != made:
                    return f"{role} differs from what the provider made"
            return None

        deadline = time.monotonic() + PUMP_DEADLINE_S
        pump(scheduler, run.monitor, run.stats, deadline=deadline, check=intact, tick=faults.tick)
        first = outcome(scheduler, n)
        first["wall_s"] = round(time.monotonic() - run.started, 2)
        retried = 0
        for job in list(scheduler.jobs.values()):
            if job.superseded_by is None and job.state is JobState.FAILED:
                attempt = scheduler.retry(job.job_id)
                retried += 1
                if attempt.task_id is None:
                    fresh.add(attempt.job_id)
        pump(scheduler, run.monitor, run.stats, deadline=deadline, check=intact, tick=faults.tick)
        wall = time.monotonic() - run.started
        result = outcome(scheduler, n)
        ended = {j.job_id: j.state for j in scheduler.jobs.values()}
        with state.lock:
            tasks = list(state.tasks.values())
        creates = collections.Counter(int(t.request.get("model_seed", 0)) for t in tasks)
        needed = collections.Counter(scheduler.jobs[i].spec.seed for i in fresh)
        held = {j.task_id for j in scheduler.jobs.values() if j.task_id}
        delivered = {j.task_id for j in scheduler.jobs.values() if j.state is JobState.FINISHED}
        paid = {t.task_id for t in tasks if t.status == "success" and not t.override}
        report = run.report(scheduler, journal, result, wall)
        report.update({
            "creates": len(tasks),
            "creates_needed": sum(needed.values()),
            "duplicated_creates": sum(max(0, count - needed[seed]) for seed, count in creates.items()),
            "orphan_tasks": sum(1 for t in tasks if t.task_id not in held),
            "paid_not_delivered": len(paid - delivered),
            # What the sandbox charged for results Kiln saw, against what Kiln booked (retries move the cost).
            "credits": {"charged": sum(t.credits for t in tasks if t.task_id in paid),
                        "booked": sum(j.credits_spent for j in scheduler.jobs.values())},
            "first_pass": {k: first[k] for k in ("finished", "failed", "uncertain", "lost", "failure_reasons",
                                                 "failure_examples", "wall_s")},
            "retried": retried,
            "faults": {"injected": dict(faults.injected), "answered": dict(sorted(faults.answered.items())),
                       "odd_statuses_served": dict(collections.Counter(str(t.override.get("status"))
                                                                       for t in tasks if t.override)),
                       "task_failures": sum(1 for t in tasks if t.fail_code),
                       "status_refreshes": sum(1 for m, p, _ in state.requests_seen
                                               if m == "GET" and p.startswith("/v3/tasks/")),
                       "status_requests": state.status_requests},
            "ideal_s": round(sum(state.latency_s["draft" if j.spec.mode is Mode.DRAFT else "textured"]
                                 for j in jobs) / state.limit, 1),
            "sandbox": {"latency_s": state.latency_s, "limit": state.limit, "rate_limit_per_s": state.rate_limit_per_s,
                        "url_lifetime_s": state.url_lifetime_s},
        })
        again = registry.build("tripo", settings)
        report["reload"] = reload_check(run.folder, again, ended, lambda: state.creates)
    return report


# ---------------------------------------------------------------------------------------------- main
def table(soaks: Iterable[dict[str, Any]]) -> None:
    rows = [("soak", "jobs", "finished", "failed", "uncertain", "lost", "dup", "thr sched/proc", "RSS +MB",
             "journal lines→", "journal MB→", "wall s", "jobs/s")]
    for s in soaks:
        j = s["journal"]
        rows.append((s["name"], str(s["jobs"]), str(s["finished"]), str(s["failed"]), str(s["uncertain"]),
                     str(s["lost"]), str(s["duplicated_creates"]),
                     f"{s['threads']['scheduler_peak']}/{s['threads']['process_peak']}",
                     f"{s['rss_kb']['growth'] / 1024:.1f}",
                     f"{j['before_compaction']['lines']}→{j['after_compaction']['lines']}",
                     f"{j['before_compaction']['bytes'] / 2**20:.2f}→{j['after_compaction']['bytes'] / 2**20:.2f}",
                     f"{s['wall_s']:.1f}", f"{s['jobs_per_s']:.1f}"))
    print_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/soak.json")
    parser.add_argument("--local-jobs", type=int, default=1000)
    parser.add_argument("--tripo-jobs", type=int, default=300)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kiln-soak-") as work:
        local = soak_local(args.local_jobs, Path(work))
        tripo = soak_tripo(args.tripo_jobs, Path(work))
    result = {
        "benchmark": "soak",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "lost": local["lost"] + tripo["lost"],
        "duplicated_creates": local["duplicated_creates"] + tripo["duplicated_creates"],
        "total_wall_s": round(time.monotonic() - started, 1),
        "local": local,
        "tripo": tripo,
    }
    table([local, tripo])
    write_result(args.out, result, show={k: v for k, v in result.items() if k not in ("local", "tripo")})


if __name__ == "__main__":
    main()
