"""The embedded `local` backend: offline generation with numpy, no key, no network.

It behaves like a provider so the rest of Kiln cannot tell the difference: `submit` queues work on
its own small pool (its "concurrency limit" is the CPU), `watch` is push (it blocks until a task
ends), and `download` moves the finished GLB into Kiln's cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...jobs import JobKind, JobSpec, Mode
from ..base import Backend, BackendError, Capabilities, TaskStatus, TaskUpdate
from . import text
from .glb import write_glb

_log = logging.getLogger(__name__)

SUPPORTED_KINDS = (JobKind.TEXT,)


@dataclass
class LocalResult:
    files: dict[str, str]
    metadata: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def generate_text(spec: JobSpec, out_dir: Path) -> LocalResult:
    """Build the blockout for a text spec and write it as `model.glb` in `out_dir`."""
    production = spec.mode is Mode.PRODUCTION
    text_plan = text.plan(spec.prompt, production)
    parts, materials = text.build(text_plan, spec.seed, production)
    matched = text_plan.archetype.name if text_plan.archetype else None
    warnings = []
    if matched is None:
        nouns = "', '".join(text_plan.unknown_words) or spec.prompt
        warnings.append(f"local engine does not know '{nouns}'; generic blockout used")
    metadata = {"matched": matched, "engine": "kiln-local-1", "seed": spec.seed}
    out_dir.mkdir(parents=True, exist_ok=True)
    model = out_dir / "model.glb"
    size = write_glb(model, "blockout", parts, materials, extras=metadata)
    metadata["triangles"] = int(sum(p.indices.shape[0] for p in parts))
    metadata["bytes"] = size
    return LocalResult({"model": str(model)}, metadata, warnings)


class LocalBackend(Backend):
    name = "local"

    def __init__(self, scratch_dir: Path | None = None, workers: int | None = None) -> None:
        limit = workers or max(1, min(2, os.cpu_count() or 1))
        self.capabilities = Capabilities(
            push=True,
            batch_status=True,
            cancel=True,
            needs_network=False,
            needs_key=False,
            concurrency={"cpu": limit},
            typical_latency_s={"draft": 0.05, "production": 0.3},
        )
        self._scratch = Path(scratch_dir or tempfile.mkdtemp(prefix="kiln-local-"))
        self._pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="kiln-local")
        self._futures: dict[str, Future[LocalResult]] = {}
        self._lock = threading.Lock()

    def estimate_credits(self, spec: JobSpec) -> float:
        return 0.0

    def submit(self, spec: JobSpec, client_ref: str) -> str:
        if spec.kind not in SUPPORTED_KINDS:
            raise BackendError("unsupported_input", f"the local engine cannot do {spec.kind.value} jobs yet")
        if not spec.prompt.strip():
            raise BackendError("empty_prompt", "the prompt is empty")
        task_id = f"local-{uuid.uuid4().hex[:12]}"
        future = self._pool.submit(generate_text, spec, self._scratch / task_id)
        with self._lock:
            self._futures[task_id] = future
        return task_id

    def watch(self, task_ids: Sequence[str], timeout_s: float) -> list[TaskUpdate]:
        with self._lock:
            futures = {tid: self._futures.get(tid) for tid in task_ids}
        pending = [f for f in futures.values() if f is not None]
        if pending and not any(f.done() for f in pending):
            wait(pending, timeout=timeout_s, return_when=FIRST_COMPLETED)
        updates = []
        for task_id, future in futures.items():
            if future is None:
                updates.append(TaskUpdate(task_id, TaskStatus.FAILED, error_code="not_found",
                                          error_message="the local engine has no such task (restarted?)"))
            elif future.cancelled():
                updates.append(TaskUpdate(task_id, TaskStatus.CANCELLED))
            elif future.done():
                error = future.exception()
                if error is None:
                    updates.append(TaskUpdate(task_id, TaskStatus.SUCCESS, 1.0))
                else:
                    message = getattr(error, "message", str(error))
                    code = getattr(error, "code", "local_failed")
                    updates.append(TaskUpdate(task_id, TaskStatus.FAILED, error_code=code, error_message=message))
        return updates

    def result(self, task_id: str) -> LocalResult:
        with self._lock:
            future = self._futures[task_id]
        return future.result(timeout=0)

    def download(self, task_id: str, dest_dir: Path) -> dict[str, str]:
        result = self.result(task_id)
        dest_dir.mkdir(parents=True, exist_ok=True)
        files = {}
        for role, source in result.files.items():
            target = dest_dir / Path(source).name
            shutil.move(source, target)
            files[role] = str(target)
        return files

    def task_metadata(self, task_id: str) -> tuple[dict[str, Any], list[str]]:
        result = self.result(task_id)
        return result.metadata, result.warnings

    def cancel(self, task_id: str) -> None:
        with self._lock:
            future = self._futures.get(task_id)
        if future is not None:
            future.cancel()  # a blockout already being built finishes in milliseconds anyway

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self._scratch, ignore_errors=True)
