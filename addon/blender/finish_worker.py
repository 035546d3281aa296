"""What a finishing worker process does with one request: import the downloaded result, finish it with
its batch's preset (the same `import_result` and `finish_result` as in the artist's Blender), and save
the finished asset as a `.blend` in the cache. The artist's Blender appends that (`finished.py`).

Runs only inside a worker (`worker_entry.py`): no scheduler, no add-on registration, a new empty
scene per asset. Replies go to the original stdout as one prefixed JSON line; Blender's own output is
sent to stderr, which the pool keeps the tail of for when a worker dies.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import bpy

from ..jobs import BatchSpec, Job
from .finish_pool import REPLY_PREFIX
from .finishing import finish_result
from .importer import ImportFailed, import_result
from .quiet import quiet_stdout

_log = logging.getLogger(__name__)


def serve() -> int:
    """Answer requests from stdin, one JSON line each, until it closes."""
    # Ctrl-C in a terminal reaches the whole process group: the run that owns this worker decides what
    # stops (a worker ends when its input closes).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # from here on, anything printed (Python or Blender's C code) goes to stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    threads = int(os.environ.get("KILN_WORKER_THREADS", "0") or 0)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            reply = finish_request(request, threads)
        except Exception as exc:  # a bug guard: the job fails with the reason, the worker carries on
            _log.exception("finishing failed")
            reply = {"ok": False, "code": "finish_failed", "message": f"finishing failed: {exc}"}
        replies.write(REPLY_PREFIX + json.dumps(reply) + "\n")
        replies.flush()
    return 0


def finish_request(request: dict[str, Any], threads: int = 0) -> dict[str, Any]:
    """Import, finish and save one job's result; the reply says where the `.blend` is and what was done."""
    started = time.perf_counter()
    job = Job.from_snapshot(request["job"])
    batch = BatchSpec.from_json(request["batch"])
    target = Path(request["blend"])
    bpy.ops.wm.read_homefile(use_empty=True)  # each asset alone in its file
    scene = bpy.context.scene
    if threads and scene is not None:
        # One worker per core: Cycles' bake and the remesher would otherwise each take every core.
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads
    try:
        import_result(job)
    except ImportFailed as exc:
        return {"ok": False, "code": exc.code,
                "message": f"{exc} (the downloaded result is kept: Retry imports it again without paying)"}
    finish_result(job, batch)
    for image in bpy.data.images:
        if image.packed_file is None and image.has_data and image.source in ("FILE", "GENERATED"):
            image.pack()  # the .blend carries its textures: the artist's file may be anywhere
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.stem}.{os.getpid()}.partial.blend")  # an orphan of a killed run
    # may still be writing its own
    with quiet_stdout():
        bpy.ops.wm.save_as_mainfile(filepath=str(partial), check_existing=False, copy=True)
    os.replace(partial, target)  # a .blend that exists is complete
    return {"ok": True, "blend": str(target), "finish": job.metadata.get("finish"),
            "import_ms": job.metadata.get("import_ms"), "kiln_import_ms": job.metadata.get("kiln_import_ms"),
            "warnings": list(job.warnings), "worker_s": round(time.perf_counter() - started, 3)}
