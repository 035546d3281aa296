"""One Kiln batch manifest across a Ray cluster: one Ray task per shard, then one merge.

    python scripts/kiln_ray.py MANIFEST --out DIR [--address auto|ray://HOST:10001] [--shards N]
                               [--blender /path/to/blender] [--cpus-per-shard C] [--gpus-per-shard G]
                               [--max-retries R] [--resume] [-- EXTRA kiln_batch FLAGS]

Each task runs `python scripts/kiln_batch.py MANIFEST --shard I/N` (the worker's Python must have the
`bpy` module), or `blender -b --python-exit-code 1 --python scripts/kiln_batch.py -- MANIFEST --shard I/N`
with --blender. Every shard writes into the same OUT/<batch>/ (its own .blend, journal and lock), so on a
multi-machine cluster OUT and the manifest must be on a shared file system, at the same path, and so must
this checkout. Without --address a local Ray runs on this machine.

Failures: a shard that crashes (a signal, such as a killed or OOM-killed Blender) or whose worker is
lost is retried by Ray, up to --max-retries times. A retry runs with --resume, so it continues from that
shard's journal: what finished is kept, nothing is bought twice. Exit 1 of a shard (it finished, some
jobs failed) is a completed shard; exit 2 (bad manifest or setup) is not retried: nothing ran.
When every shard has completed, a merge task (`kiln_batch.py --merge`) makes one .blend, report.json and
contact sheet. Progress per shard and in total is printed on stderr.

Exit codes: 0 every job finished; 1 some failed; 2 bad input, or a shard refused to start; 3 a shard
still crashed after its retries (run again with --resume).

Ray is optional for Kiln: `pip install "ray[default]"` in the Python that runs this script.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

KILN_BATCH = Path(__file__).resolve().parent / "kiln_batch.py"
RAY_FOLDER = ".kiln-ray"
"""OUT/.kiln-ray/<run id>/: each shard's attempt count, child pid and log (outside every shard's own
journal folder, which a fresh shard run empties)."""
EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT, EXIT_CRASHED = 0, 1, 2, 3
_EVENT = re.compile(r"^kiln: (?P<job>\S+#[0-9]+ .*) → (?P<state>[a-z_]+)")
"""A shard's progress line (kiln batch's non-terminal progress: one line per job state change)."""


class RayUnavailable(Exception):
    """Ray could not be started here, or the cluster at --address could not be joined."""


def connect(ray: Any, address: str | None) -> None:
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # Ray raises a bare Exception when its node is slow to start (30 s, fixed)
        ray.shutdown()
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RayUnavailable(f"cannot start or join {where}: {' '.join(str(exc).split())[:300]}") from exc


class ShardCrashed(RuntimeError):
    """The shard's process ended by a signal (or was interrupted): Ray retries the task."""


@dataclass(frozen=True)
class ShardSpec:
    """What one Ray task runs. Paths are absolute: a Ray worker's working folder is not the driver's."""

    index: int
    count: int
    manifest: str
    out: str
    run_id: str
    blender: str | None = None
    resume: bool = False
    extra: tuple[str, ...] = ()
    cpus: float = 1.0

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    @property
    def folder(self) -> Path:
        return Path(self.out) / RAY_FOLDER / self.run_id


def shard_command(spec: ShardSpec, resume: bool, python: str) -> list[str]:
    """The shard's command line: the same `kiln_batch.py --shard I/N` a farm runs by hand. --json puts the
    shard's report alone on stdout (Blender's own prints go to stderr with the progress lines)."""
    arguments = [spec.manifest, "--out", spec.out, "--shard", f"{spec.index}/{spec.count}", "--json",
                 *(["--resume"] if resume else []), *spec.extra]
    if not any(a.split("=")[0] == "--finish-workers" for a in spec.extra):
        # A shard finishes on the CPUs Ray reserved for it, not on every core of its node (kiln batch's
        # default), which several shards on one node would oversubscribe. One CPU: finishing in the shard's
        # own Blender, which saves starting a worker Blender.
        workers = int(spec.cpus) if spec.cpus >= 2 else 0
        arguments += ["--finish-workers", str(workers)]
    if spec.blender:
        return [spec.blender, "-b", "--python-exit-code", "1", "--python", str(KILN_BATCH), "--", *arguments]
    return [python, str(KILN_BATCH), *arguments]


def merge_command(batch_folder: str, blender: str | None, python: str) -> list[str]:
    if blender:
        return [blender, "-b", "--python-exit-code", "1", "--python", str(KILN_BATCH), "--",
                "--merge", batch_folder, "--json"]
    return [python, str(KILN_BATCH), "--merge", batch_folder, "--json"]


def _die_with_parent() -> None:
    """In the shard's process (Linux): end when the Ray worker that started it dies, so a lost worker's
    retry never finds the shard's lock still held by an orphan."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _next_attempt(spec: ShardSpec) -> int:
    spec.folder.mkdir(parents=True, exist_ok=True)
    counter = spec.folder / f"{spec.name}.attempts"
    attempt = int(counter.read_text() or 0) + 1 if counter.is_file() else 1
    counter.write_text(str(attempt))
    return attempt


def run_shard(spec: ShardSpec, board: Any = None) -> dict[str, Any]:
    """The body of one Ray task. Returns the shard's outcome for exit 0, 1 (completed) and 2 (refused);
    raises ShardCrashed for a signal, which Ray's retry answers. A retry (the attempt counter in
    OUT/.kiln-ray/<run>/ says so) runs with --resume: it continues from the shard's journal."""
    attempt = _next_attempt(spec)
    resume = spec.resume or attempt > 1
    command = shard_command(spec, resume, sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}  # the shard isolates its own
    started = time.monotonic()
    jobs: dict[str, str] = {}

    def publish(running: bool) -> Any:
        if board is None:
            return None
        states = list(jobs.values())
        return board.update.remote(spec.index, {
            "attempt": attempt, "running": running, "total": len(states),
            "done": states.count("finished"), "failed": sum(s in ("failed", "cancelled") for s in states)})

    publish(True)
    with open(spec.folder / f"{spec.name}.log", "a", encoding="utf-8") as log:
        log.write(f"--- attempt {attempt}: {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                                   encoding="utf-8", errors="replace", preexec_fn=_die_with_parent)
        (spec.folder / f"{spec.name}.pid").write_text(str(process.pid))
        stdout: list[str] = []
        reader = threading.Thread(target=lambda: stdout.append(process.stdout.read() if process.stdout else ""),
                                  daemon=True)
        reader.start()
        last_line = ""
        assert process.stderr is not None
        for line in process.stderr:
            log.write(line)
            log.flush()
            if line.strip():
                last_line = line.strip()
            event = _EVENT.match(line)
            if event:
                jobs[event["job"]] = event["state"]
                publish(True)
        code = process.wait()
        reader.join()
    seconds = round(time.monotonic() - started, 2)
    final = publish(False)
    if final is not None:  # before the task returns: the driver's last progress line shows the shard done
        import ray

        ray.get(final)
    if code < 0 or code == 130:
        raise ShardCrashed(f"shard {spec.index}/{spec.count} (attempt {attempt}) ended by "
                           f"{'signal ' + str(-code) if code < 0 else 'an interrupt'}; its log: "
                           f"{spec.folder / (spec.name + '.log')}")
    report: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        report = json.loads("".join(stdout)) if code in (0, 1) else {}
    error = last_line if code not in (0, 1) else ""
    if code in (0, 1) and not report:  # a Blender binary ends with 1 on a Python error: not a completed shard
        error = f"ended without its report: {last_line}"
    return {"shard": f"{spec.index}/{spec.count}", "index": spec.index, "exit": code, "attempt": attempt,
            "seconds": seconds, "error": error, "folder": report.get("output", {}).get("folder"),
            "totals": report.get("totals", {})}


def run_merge(batch_folder: str, blender: str | None, ray_section: dict[str, Any]) -> dict[str, Any]:
    """The body of the merge task: `kiln_batch.py --merge`, then Ray's own figures added to report.json."""
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    started = time.monotonic()
    result = subprocess.run(merge_command(batch_folder, blender, sys.executable), capture_output=True, text=True,
                            env=env, check=False)
    seconds = round(time.monotonic() - started, 2)
    if result.returncode not in (0, 1):
        return {"exit": result.returncode, "error": (result.stderr.strip().splitlines() or ["?"])[-1],
                "seconds": seconds}
    report_file = Path(batch_folder) / "report.json"
    document = json.loads(report_file.read_text(encoding="utf-8"))
    document["ray"] = {**ray_section, "merge_process_s": seconds}
    report_file.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return {"exit": result.returncode, "seconds": seconds, "totals": document["totals"],
            "output": document["output"]}


class Board:
    """Each shard's latest progress, kept in a small Ray actor that the tasks update and the driver reads."""

    def __init__(self) -> None:
        self.shards: dict[int, dict[str, Any]] = {}

    def update(self, index: int, state: dict[str, Any]) -> None:
        self.shards[index] = state

    def snapshot(self) -> dict[int, dict[str, Any]]:
        return dict(self.shards)


@dataclass
class Terminal:
    """The driver's progress: a live line on a terminal, a line per change otherwise (logs, CI)."""

    count: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    started: float = field(default_factory=time.monotonic)
    _last: str = ""

    def show(self, shards: dict[int, dict[str, Any]]) -> None:
        parts = []
        for index in range(1, self.count + 1):
            state = shards.get(index)
            if state is None:
                parts.append(f"{index}: waiting")
                continue
            what = f"{state['done']}/{state['total'] or '?'}" + (f" ({state['failed']} failed)" if state["failed"]
                                                                  else "")
            retry = f" try {state['attempt']}" if state["attempt"] > 1 else ""
            parts.append(f"{index}: {what}{retry}{'' if state['running'] else ' ✓'}")
        done = sum(s["done"] for s in shards.values())
        total = sum(s["total"] for s in shards.values())
        line = (f"kiln ray: {done}/{total or '?'} done · shards " + " · ".join(parts)
                + f" · {time.monotonic() - self.started:.0f}s")
        core = line.rsplit(" · ", 1)[0]
        live = self.stream.isatty()
        if live:
            self.stream.write("\r" + line.ljust(len(self._last)))
            self._last = line
        elif core != self._last:
            self.stream.write(line + "\n")
            self._last = core
        self.stream.flush()

    def close(self) -> None:
        if self.stream.isatty() and self._last:
            self.stream.write("\n")


def _remote_functions(ray: Any) -> tuple[Any, Any, Any]:
    """The task functions, sent to the workers by value: a worker need not be able to import this script."""
    module = sys.modules[__name__]
    if __name__ != "__main__":
        ray.cloudpickle.register_pickle_by_value(module)
    return ray.remote(run_shard), ray.remote(run_merge), ray.remote(num_cpus=0)(Board)


def run(manifest: Path, out: Path, *, shards: int = 2, address: str | None = None, blender: str | None = None,
        cpus_per_shard: float = 1.0, gpus_per_shard: float = 0.0, max_retries: int = 2, resume: bool = False,
        extra: tuple[str, ...] = (), run_id: str | None = None, stream: TextIO | None = None) -> dict[str, Any]:
    """Run the shards on Ray and merge them; returns the summary (exit code, shards, merge). Joins a
    running Ray (ray.init already called, or `address`), else starts a local one for the run."""
    import ray

    started = time.monotonic()
    owned = not ray.is_initialized()
    if owned:
        connect(ray, address)
    ray_start_s = round(time.monotonic() - started, 2)
    try:
        shard_task, merge_task, board_actor = _remote_functions(ray)
        board = board_actor.remote()
        run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        specs = [ShardSpec(i, shards, str(manifest.resolve()), str(out.resolve()), run_id, blender, resume, extra,
                           cpus_per_shard) for i in range(1, shards + 1)]
        terminal = Terminal(shards, stream or sys.stderr)
        pending = {shard_task.options(num_cpus=cpus_per_shard, num_gpus=gpus_per_shard, max_retries=max_retries,
                                      retry_exceptions=[ShardCrashed], name=f"kiln {spec.name}").remote(spec, board):
                   spec for spec in specs}
        results: dict[int, dict[str, Any]] = {}
        crashed: list[str] = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                spec = pending.pop(ref)
                try:
                    results[spec.index] = ray.get(ref)
                except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError,
                        ray.exceptions.NodeDiedError) as exc:
                    crashed.append(f"shard {spec.index}/{spec.count}: {str(exc).strip().splitlines()[-1][:300]}")
            terminal.show(ray.get(board.snapshot.remote()))
        terminal.close()
        shards_s = round(time.monotonic() - started - ray_start_s, 2)
        summary: dict[str, Any] = {"run_id": run_id, "shards": [results[i] for i in sorted(results)],
                                   "ray_start_s": ray_start_s, "shards_s": shards_s}
        refused = [r for r in results.values() if r["exit"] not in (0, 1) or r["error"]]
        if refused or crashed:
            summary["errors"] = [f"shard {r['shard']} exit {r['exit']}: {r['error']}" for r in refused] + crashed
            summary["exit"] = EXIT_BAD_INPUT if refused else EXIT_CRASHED
            return summary
        folder = next((r["folder"] for r in results.values() if r["folder"]), None)
        if folder is None:  # more shards than assets, and every shard was empty: nothing to merge
            summary["exit"] = EXIT_OK
            return summary
        ray_section = {"run_id": run_id, "ray_start_s": ray_start_s, "shards_s": shards_s,
                       "shards": [{k: r[k] for k in ("shard", "exit", "attempt", "seconds")}
                                  for r in summary["shards"]]}
        merged = ray.get(merge_task.options(num_cpus=cpus_per_shard).remote(folder, blender, ray_section))
        summary["merge"] = merged
        summary["exit"] = merged["exit"] if merged["exit"] in (0, 1) else EXIT_BAD_INPUT
        if merged["exit"] not in (0, 1):
            summary["errors"] = [f"merge exit {merged['exit']}: {merged['error']}"]
        summary["wall_s"] = round(time.monotonic() - started, 2)
        return summary
    finally:
        if owned:
            ray.shutdown()


def parse_args(argv: list[str]) -> argparse.Namespace:
    extra: list[str] = []
    if "--" in argv:
        argv, extra = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    parser = argparse.ArgumentParser(prog="kiln_ray.py", description="Run a Kiln batch manifest across a Ray "
                                     "cluster, one task per shard, then merge the shards into one result.")
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (shared by every worker)")
    parser.add_argument("--address", default=None, help="join this Ray cluster (auto, or ray://HOST:10001); "
                        "default: a local Ray on this machine")
    parser.add_argument("--shards", type=int, default=None, help="number of shards (default: the cluster's CPUs "
                        "divided by --cpus-per-shard)")
    parser.add_argument("--blender", default=None, help="run each shard in this Blender binary (blender -b) "
                        "instead of the worker's Python with the bpy module")
    parser.add_argument("--cpus-per-shard", type=float, default=1.0)
    parser.add_argument("--gpus-per-shard", type=float, default=0.0,
                        help="GPUs each shard reserves (self-hosted backends: one shard per GPU server)")
    parser.add_argument("--max-retries", type=int, default=2, help="Ray retries of a crashed or lost shard")
    parser.add_argument("--resume", action="store_true", help="every shard continues from its journal")
    args = parser.parse_args(argv)
    args.extra = tuple(extra)
    if args.shards is not None and not 1 <= args.shards <= 10_000:
        parser.error("--shards must be from 1 to 10000")
    if not args.manifest.is_file():
        parser.error(f"no manifest at {args.manifest}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        import ray
    except ImportError:
        print('kiln ray: error: Ray is not installed: pip install "ray[default]" (in this Python)', file=sys.stderr)
        return EXIT_BAD_INPUT
    shards = args.shards
    try:
        if shards is None:  # as many shards as the cluster runs at once
            connect(ray, args.address)
            resources = ray.cluster_resources()  # type: ignore[no-untyped-call]  # Ray leaves it unannotated
            shards = max(1, int(resources.get("CPU", 1) // args.cpus_per_shard))
        summary = run(args.manifest, args.out, shards=shards, address=args.address, blender=args.blender,
                      cpus_per_shard=args.cpus_per_shard, gpus_per_shard=args.gpus_per_shard,
                      max_retries=args.max_retries, resume=args.resume, extra=args.extra)
    except RayUnavailable as exc:
        print(f"kiln ray: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for error in summary.get("errors", []):
        print(f"kiln ray: error: {error}", file=sys.stderr)
    merged = summary.get("merge")
    if merged and merged.get("totals"):
        totals, output = merged["totals"], merged["output"]
        retried = [s["shard"] for s in summary["shards"] if s["attempt"] > 1]
        print(f"kiln ray: {totals['assets']} assets from {totals['jobs']} jobs in {shards} shards: "
              f"{totals['finished']} finished, {totals['failed']} failed, in {summary['wall_s']:.1f}s"
              + (f" (retried: {', '.join(retried)})" if retried else ""))
        for label in ("blend", "exports", "report", "contact_sheet"):
            if output.get(label):
                print(f"  {label.replace('_', ' ')}: {output[label]}")
    if summary["exit"] == EXIT_CRASHED:
        print("kiln ray: a shard still crashed after its retries; run the same command with --resume",
              file=sys.stderr)
    return int(summary["exit"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
