"""Headless batch runs: manifest in, finished assets out. The one implementation behind
`scripts/kiln_batch.py` (blender -b or plain Python) and `blender -c kiln batch`.

This module parses arguments, validates the manifest, the flags and the environment completely
(nothing is spent on a bad one), prints progress and decides the exit code (`report.exit_code`). The
Blender work (images, specs, import, finishing, export, contact sheet, .blend) is the injected
`Runner`, `addon/blender/batch_run.py`: nothing in addon/ outside addon/blender/ imports it.

Bad input is exit 2 and ONE line on stderr, `kiln batch: error: <key>: <what is wrong and the fix>`,
never a traceback. Under --json, stdout carries only the JSON document: every other message,
Blender's own C-level prints included, goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import re
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ..backends import registry
from ..backends.base import Backend
from ..backends.registry import BackendSettings
from ..jobs import JobState, JobView
from .manifest import Manifest, ManifestError, PlannedAsset, load_manifest
from .plan import (
    DEFAULT_GIVE_UP_S,
    BatchOptions,
    Plan,
    Runner,
    check_balance,
    check_budget,
    check_outputs,
    check_start,
    describe_plan,
    plan_json,
)
from .report import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, assemble, exit_code, summary

_log = logging.getLogger(__name__)

PROG = "kiln batch"
MAX_JOBS_IN_FLIGHT = 1000
MAX_FINISH_WORKERS = 64
MAX_SHARDS = 10_000
MAX_GIVE_UP_S = 7 * 24 * 3600.0


# --------------------------------------------------------------------------------------- arguments
class _Parser(argparse.ArgumentParser):
    """argparse, except that a mistake is a ManifestError (one line naming the flag), not usage text."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):
            first = message.removeprefix("unrecognized arguments: ").split(" ")[0]
            raise ManifestError(first, "unknown option (see kiln batch --help)")
        if message.startswith("the following arguments are required: "):
            missing = message.removeprefix("the following arguments are required: ")
            raise ManifestError(missing, "missing: give the batch manifest, e.g. kiln batch batch.toml")
        found = re.match(r"argument ([^:]+): (.*)", message, re.S)
        if found:
            flag = found.group(1).split("/")[-1]
            what = found.group(2)
            if what.startswith("expected one argument"):
                what = f"needs a value (write {flag}=VALUE for a value that starts with -)"
            elif what.startswith("ignored explicit argument"):
                what = f"takes no value, not {what.removeprefix('ignored explicit argument ')}"
            raise ManifestError(flag, what)
        raise ManifestError("arguments", message)


def _whole(text: str, what: str, maximum: int) -> int:
    if not re.fullmatch(r"[0-9]+", text.strip()) or not 1 <= int(text) <= maximum:
        raise argparse.ArgumentTypeError(f"must be {what} from 1 to {maximum}, not {text!r}")
    return int(text)


def _jobs(text: str) -> int:
    return _whole(text, "a whole number of jobs", MAX_JOBS_IN_FLIGHT)


def _workers(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text.strip()) or not 0 <= int(text) <= MAX_FINISH_WORKERS:
        raise argparse.ArgumentTypeError(f"must be a whole number of processes from 0 (finish in this Blender) "
                                         f"to {MAX_FINISH_WORKERS}, not {text!r}")
    return int(text)


def _shard(text: str) -> tuple[int, int]:
    found = re.fullmatch(r"\s*([0-9]{1,9})\s*/\s*([0-9]{1,9})\s*", text)
    if not found or not 1 <= int(found.group(1)) <= int(found.group(2)) <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"must look like I/N with 1 <= I <= N <= {MAX_SHARDS} (e.g. 2/4), "
                                         f"not {text!r}")
    return int(found.group(1)), int(found.group(2))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= MAX_GIVE_UP_S:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0 (at most {MAX_GIVE_UP_S:.0f}), "
                                         f"not {text!r}")
    return value


def _host(text: str) -> str:
    try:
        return registry.allowed_host(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a folder, not empty")
    return Path(text)


def _file(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a manifest file, not empty")
    return Path(text)


def parse_args(argv: list[str]) -> BatchOptions:
    """The options; raises ManifestError naming the flag (and SystemExit(0) for --help)."""
    parser = _Parser(prog=PROG, allow_abbrev=False,
                     description="Run a Kiln batch manifest headless: generate, finish, export.")
    parser.add_argument("manifest", type=_file, help="the batch manifest (TOML)")
    parser.add_argument("--out", type=_folder, default=Path("out"),
                        help="output folder (default: out/); everything is written to OUT/<batch>/")
    parser.add_argument("--export-dir", type=_folder, default=None,
                        help="write exports here instead of the manifest's [export] folder inside OUT/<batch>/")
    parser.add_argument("--resume", action="store_true", help="continue a run from its journal")
    parser.add_argument("--fresh", action="store_true",
                        help="start over, discarding the previous run's journal (paid tasks that never landed are "
                             "given up)")
    parser.add_argument("--resubmit-uncertain", action="store_true",
                        help="with --resume: send again the creates whose outcome is unknown (each may be charged "
                             "twice; check the provider's dashboard first)")
    parser.add_argument("--shard", type=_shard, default=(1, 1), help="run slice I of N, e.g. 2/4 (default 1/1)")
    parser.add_argument("--dry-run", action="store_true", help="print the jobs and their cost, submit nothing")
    parser.add_argument("--jobs", type=_jobs, default=None, help="cap on jobs in flight")
    parser.add_argument("--give-up-after", type=_seconds, default=DEFAULT_GIVE_UP_S, metavar="S",
                        help="per job, seconds without reaching the provider before the job fails (default 120)")
    parser.add_argument("--finish-workers", type=_workers, default=None, metavar="N",
                        help="background Blender processes that finish assets in parallel (default: one per "
                             "core; 0: finish in this Blender)")
    parser.add_argument("--wait", action="store_true",
                        help="allow a [batch] start_at more than 7 days away")
    parser.add_argument("--allow-host", type=_host, action="append", default=[], metavar="HOST",
                        help="let the manifest's [backends.<name>] base_url send your API key to HOST (or "
                             "HOST:PORT); repeatable. Without it a manifest cannot redirect a key")
    parser.add_argument("--quiet", action="store_true", help="print only errors and the summary")
    parser.add_argument("--json", action="store_true",
                        help="print the final report as JSON on stdout (and nothing else there)")
    args = parser.parse_args(argv)
    if args.fresh and args.resume:
        raise ManifestError("--fresh", "--fresh starts over and --resume continues: choose one")
    if args.resubmit_uncertain and not args.resume:
        raise ManifestError("--resubmit-uncertain", "only means something with --resume")
    return BatchOptions(manifest=args.manifest, out=args.out, resume=args.resume, shard=args.shard,
                        dry_run=args.dry_run, jobs=args.jobs, quiet=args.quiet, json=args.json,
                        give_up_after_s=args.give_up_after, wait=args.wait, export_dir=args.export_dir,
                        fresh=args.fresh, resubmit_uncertain=args.resubmit_uncertain,
                        finish_workers=args.finish_workers,
                        allow_hosts=tuple(dict.fromkeys(args.allow_host)))


# ------------------------------------------------------------------------------------ environment
def check_environment(manifest: Manifest, settings: BackendSettings, environ: Mapping[str, str]) -> None:
    """What the backend reads from the environment (the registry names the variables): a key must be one
    clean line (a CRLF `.env` file leaves a `\\r`), and a base URL must parse. The key is never shown."""
    info = registry.info(manifest.backend)
    if info.key_variable:
        from_environment = environ.get(info.key_variable, "")
        where = info.key_variable if from_environment else "[batch] backend"
        whose = f"the key in {info.key_variable}" if from_environment else "the key in Kiln's preferences"
        problem = registry.key_problem(from_environment or settings.api_key)
        if problem is not None:
            raise ManifestError(where, f"{whose} {problem}")
    url = environ.get(info.url_variable, "") if info.url_variable else ""
    if url:
        problem = registry.endpoints_problem(info.name, url, with_key=info.needs_key)
        if problem:
            raise ManifestError(info.url_variable, problem)


def check_endpoint(manifest: Manifest, settings: BackendSettings, environ: Mapping[str, str]) -> None:
    """A manifest's [backends.<name>] base_url may not take the user's key to a host the user did not
    choose: the provider's own, the endpoint in the environment or preferences, or --allow-host."""
    url = manifest.backend_settings.get(manifest.backend, {}).get("base_url", "")
    problem = registry.redirect_problem(manifest.backend, settings, url, environ)
    if problem is not None:
        raise ManifestError(f"[backends.{manifest.backend}] base_url", problem)


def check_backend(manifest: Manifest, online_access: bool, settings: BackendSettings) -> None:
    info = registry.info(manifest.backend)
    if info.needs_network and not online_access:
        raise ManifestError("[batch] backend", f"'{info.name}' needs the internet, but online access is off "
                            "(run Blender with --online-mode, or use backend = \"local\")")
    if info.needs_key and not settings.api_key:
        raise ManifestError("[batch] backend", f"no API key for '{info.name}' (set {info.key_variable}, or the key "
                            "in Kiln's preferences)")


# ---------------------------------------------------------------------------------------- progress
@dataclass
class Progress:
    """A live line on a terminal; one log line per event otherwise (CI logs, farms). Always stderr."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    started: float = field(default_factory=time.monotonic)
    _seen: dict[str, str] = field(default_factory=dict)
    _last_line: str = ""

    @property
    def live(self) -> bool:
        return self.stream.isatty() and not self.quiet

    def update(self, jobs: Sequence[JobView], eta_s: float | None) -> None:
        counts = {state: 0 for state in JobState}
        for job in jobs:
            counts[job.state] += 1
        done = counts[JobState.FINISHED]
        failed = counts[JobState.FAILED] + counts[JobState.CANCELLED]
        running = sum(counts[s] for s in (JobState.SUBMITTING, JobState.RUNNING, JobState.DOWNLOADING,
                                         JobState.READY, JobState.IMPORTED))
        credits = sum(job.credits_spent for job in jobs)
        eta = f"{eta_s:.0f}s" if eta_s is not None else "?"
        line = (f"kiln: {done}/{self.total} done, {running} running, {failed} failed, ETA {eta}, "
                f"{credits:g} credits, {time.monotonic() - self.started:.0f}s")
        if self.live:
            if line != self._last_line:
                self.stream.write("\r" + line.ljust(len(self._last_line)))
                self.stream.flush()
                self._last_line = line
            return
        if self.quiet:
            return
        for job in jobs:
            if self._seen.get(job.job_id) != job.state.value:
                self._seen[job.job_id] = job.state.value
                detail = f": {job.error.message}" if job.error else ""
                self.stream.write(f"kiln: {job.spec.batch}#{job.spec.index + 1} {job.label[:48]!r} → "
                                  f"{job.state.value}{detail}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self._last_line:
            self.stream.write("\n")


# ------------------------------------------------------------------------------------------ streams
def _forgiving_streams() -> None:
    """Prompts and messages are Unicode; a console set to ASCII or Latin-1 must not turn a progress line
    into a traceback."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="backslashreplace")


@contextlib.contextmanager
def _stdout_for_json(enabled: bool) -> Iterator[None]:
    """While a --json run works, everything bound for stdout goes to stderr: Python's prints, and
    Blender's C code, which writes to file descriptor 1 directly. The JSON is written afterwards."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        saved = -1  # no real descriptors (an embedding host): the Python-level redirect still holds
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved >= 0:
            os.dup2(saved, 1)
            os.close(saved)


def _fail(exc: ManifestError) -> int:
    """The one line for bad input. Whatever a message carries (a TOML error, a provider's text), it stays
    one line."""
    print(" ".join(f"kiln batch: error: {exc}".split()), file=sys.stderr)
    return EXIT_BAD_INPUT


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str], *, runner: Runner, online_access: bool = False,
         backends: Mapping[str, BackendSettings] | None = None, backend: Backend | None = None,
         environ: Mapping[str, str] | None = None, now: float | None = None) -> int:
    """Run a batch; returns the process exit code. `runner` is the Blender half
    (`addon.blender.batch_run`). `backends` holds each backend's key and endpoint as the caller found
    them (`ui.preferences.installed_engine_settings`: the environment, then the add-on's preferences);
    without it the environment alone decides. `backend` replaces the manifest's (tests)."""
    _forgiving_streams()
    try:
        options = parse_args(argv)
    except ManifestError as exc:
        return _fail(exc)
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_BAD_INPUT
    with _stdout_for_json(options.json):
        code, document = _run(options, runner, online_access, backends or {}, backend,
                              os.environ if environ is None else environ, time.time() if now is None else now)
    if document is not None:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        sys.stdout.flush()
    return code


def _run(options: BatchOptions, runner: Runner, online_access: bool, backends: Mapping[str, BackendSettings],
         backend: Backend | None, environ: Mapping[str, str], now: float) -> tuple[int, dict[str, Any] | None]:
    """The run; returns the exit code and, under --json, the document for stdout."""
    try:
        ready = _check_and_prepare(options, runner, online_access, backends, backend, environ, now)
    except ManifestError as exc:
        return _fail(exc), None
    except KeyboardInterrupt:
        print("kiln batch: interrupted before anything was submitted", file=sys.stderr)
        return EXIT_INTERRUPTED, None
    except Exception as exc:  # a check Kiln lacks: still one line, and exit 2 (nothing was submitted)
        _log.debug("unexpected error while checking the input", exc_info=True)
        return _fail(ManifestError("kiln batch", f"unexpected {type(exc).__name__} while checking the input "
                                   f"({str(exc)[:200]}); nothing was submitted. Please report this")), None
    manifest, assets, plan = ready
    if plan is None:
        print(f"kiln batch: shard {options.shard[0]}/{options.shard[1]} has no assets; nothing to do",
              file=sys.stderr)
        empty = assemble(batch=manifest.name, manifest=str(manifest.path), mode=manifest.mode.value,
                         backend=manifest.backend, interrupted=False, entries=[], wall_s=0.0, output={},
                         shard=options.shard)
        return EXIT_OK, empty if options.json else None
    if options.dry_run:
        if options.json:
            return EXIT_OK, plan_json(manifest, assets, plan.estimated_credits, plan)
        describe_plan(manifest, assets, plan.estimated_credits, sys.stdout, plan)
        return EXIT_OK, None
    progress = Progress(total=len(plan.specs), quiet=options.quiet)
    if getattr(signal.getsignal(signal.SIGINT), "fired", False):
        # Ctrl-C while the run was being prepared (the script's early handler): nothing was created yet.
        print(f"{PROG}: interrupted before anything was submitted", file=sys.stderr)
        return EXIT_INTERRUPTED, None
    report = runner.run(manifest, plan, options, progress)
    code = exit_code(report)
    output = report["output"]
    if output.get("export_error"):
        print(f"kiln batch: export failed: {output['export_error']}", file=sys.stderr)
    if not options.quiet and not options.json:
        print("\n".join(summary(report)))
    if report.get("interrupted"):
        kept = report["totals"]["finished"]
        print(f"\nkiln batch: interrupted; kept {kept} finished asset(s) in {output.get('blend')}. "
              "Run the same command with --resume to continue.")  # on stderr under --json (redirected)
    return code, report if options.json else None


def _check_and_prepare(options: BatchOptions, runner: Runner, online_access: bool,
                       backends: Mapping[str, BackendSettings], backend: Backend | None, environ: Mapping[str, str],
                       now: float) -> tuple[Manifest, list[PlannedAsset], Plan | None]:
    """Everything before the first create: the manifest, the keys and endpoints, the folders, then the
    runner's own checks (images, backend, estimate) and the budget. No plan: the shard is empty."""
    manifest = load_manifest(options.manifest, set(registry.names()))
    settings = backends.get(manifest.backend) or registry.resolve(manifest.backend, environ=environ)
    settings = registry.allow_hosts(settings, options.allow_hosts)
    check_environment(manifest, settings, environ)
    check_backend(manifest, online_access, settings)
    check_endpoint(manifest, settings, environ)
    check_start(manifest, options.wait, now)
    check_outputs(manifest, options)
    assets = manifest.shard(*options.shard)
    if not assets:
        return manifest, assets, None
    plan = runner.prepare(manifest, assets, options, backend, settings)
    check_budget(manifest, plan.estimated_credits)
    check_balance(manifest, plan)
    return manifest, assets, plan


def merge_main(argv: list[str], *, merger: Any) -> int:
    """`kiln_batch.py --merge OUT/<batch> [--json] [--quiet]`: the shards of a batch made one result.
    `merger` is the Blender half (`addon.blender.merge`: `merge(folder)` and `MergeError`), injected
    as the runner is. Exit codes as a run's: 0 every job finished, 1 some failed, 2 cannot merge (yet)."""
    _forgiving_streams()
    parser = _Parser(prog=f"{PROG} --merge", allow_abbrev=False,
                     description="Merge the shard outputs in OUT/<batch>/ into one .blend, report and contact sheet.")
    parser.add_argument("--merge", type=_folder, required=True, metavar="OUT/BATCH", help="the batch folder")
    parser.add_argument("--quiet", action="store_true", help="print only errors and the summary")
    parser.add_argument("--json", action="store_true", help="print the merged report as JSON on stdout")
    try:
        args = parser.parse_args(argv)
    except ManifestError as exc:
        return _fail(exc)
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_BAD_INPUT
    with _stdout_for_json(args.json):
        try:
            document = merger.merge(args.merge)
        except merger.MergeError as exc:
            return _fail(ManifestError("--merge", str(exc)))
        if not args.json:
            print("\n".join(summary(document)))
    if args.json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        sys.stdout.flush()
    return exit_code(document)


def cli_command(argv: list[str], *, runner: Runner, online_access: bool = False,
                backends: Mapping[str, BackendSettings] | None = None) -> int:
    """`blender -c kiln batch …` (registered with bpy.utils.register_cli_command in the add-on)."""
    if not argv or argv[0] != "batch":
        print("kiln: error: usage: blender -c kiln batch MANIFEST [--out DIR] [--export-dir DIR] [--resume] "
              "[--shard I/N] [--dry-run] [--jobs N] [--give-up-after S] [--finish-workers N] [--wait] "
              "[--allow-host HOST] "
              "[--quiet|--json]",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    return main(argv[1:], runner=runner, online_access=online_access, backends=backends)
