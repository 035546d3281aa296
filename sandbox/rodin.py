"""A Hyper3D Rodin API v2 sandbox: the routes and shapes Kiln uses, on 127.0.0.1 under /api/v2, with
results made by Kiln's local engine (`_results.run_local_engine`). Standard library only.

    python -m sandbox.rodin --port 0 [--latency 2] [--jobs 2] [--url-lifetime 600] [--balance 100]

prints its base URL (…/api/v2). Point Kiln at it with KILN_RODIN_BASE_URL=<url> and any key.
Knobs (command line, or attributes of `RodinState` in tests): task latency per tier, jobs per task (the
task is done when all are Done, failed when any Failed), the number of failing jobs of the next tasks
(`fail_jobs`), errors the next creates answer with (`create_errors`: an error string such as
"INSUFFICIENT_FUND", or an HTTP status), the create's success status (the docs' example answers 201),
link lifetime (10 minutes on Rodin), starting balance. Result files are served from /cdn/ on the same
host with signed, expiring links; `requests_seen` records where the key went.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from addon.jobs import JobKind, JobSpec, Mode  # noqa: E402
from sandbox._http import BackgroundServer, QuietHandler, UrlSigner, form_parts  # noqa: E402
from sandbox._results import ResultCache, image_spec, run_local_engine  # noqa: E402

PREFIX = "/api/v2"
CDN = "/cdn/"
CREDITS = 0.5


@dataclass
class RodinTask:
    uuid: str
    subscription_key: str
    fields: dict[str, str]
    images: list[bytes]
    created: float
    duration: float
    job_ids: list[str]
    failing: int = 0
    owner: str = ""
    ready: threading.Event = field(default_factory=threading.Event)

    def job_statuses(self, now: float) -> list[str]:
        elapsed = now - self.created
        if elapsed < 0.2 * self.duration:
            return ["Waiting"] * len(self.job_ids)
        if elapsed < self.duration or not self.ready.is_set():
            return ["Generating"] * len(self.job_ids)
        return ["Failed" if n < self.failing else "Done" for n in range(len(self.job_ids))]


@dataclass
class RodinState:
    latency_s: dict[str, float] = field(default_factory=lambda: {"Sketch": 1.0, "default": 2.0})
    jobs_per_task: int = 2
    fail_jobs: list[int] = field(default_factory=list)
    """Failing jobs of each next task, consumed in order (e.g. [1]: the next task fails one of its jobs)."""
    create_errors: list[str | int] = field(default_factory=list)
    """What the next creates answer instead (consumed): an error string in a 200, or an HTTP status."""
    create_status: int = 201
    url_lifetime_s: float = 600.0
    balance: float = 100.0
    valid_keys: set[str] | None = None
    tasks: dict[str, RodinTask] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    creates: int = 0
    status_requests: int = 0
    download_requests: int = 0
    requests_seen: list[tuple[str, str, str]] = field(default_factory=list)
    """(method, path, Authorization header) of every request, to check where the key went."""
    reuse_results: bool = True
    """One generated result per (prompt or image, tier): the sandbox shares the cores with Kiln."""
    results: ResultCache = field(default_factory=ResultCache)
    lock: threading.Lock = field(default_factory=threading.Lock)
    signer: UrlSigner = field(default_factory=lambda: UrlSigner(resolution_s=0.001))
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rodin-sandbox-")))

    def by_key(self, key: str, subscription_key: str) -> RodinTask | None:
        task = next((t for t in self.tasks.values() if t.subscription_key == subscription_key), None)
        return task if task is not None and task.owner == key else None

    def generate(self, task: RodinTask) -> None:
        """Make the result in the background from the moment the task is created, as Rodin's GPUs would."""
        def work() -> None:
            try:
                self._make(task)
            finally:
                task.ready.set()

        threading.Thread(target=work, name=f"rodin-gen-{task.uuid[:8]}", daemon=True).start()

    def _make(self, task: RodinTask) -> None:
        tier = task.fields.get("tier", "Regular")
        source = task.fields.get("prompt", "") if not task.images else str(hash(task.images[0]))
        mode = Mode.DRAFT if tier == "Sketch" else Mode.PRODUCTION

        def make() -> tuple[bytes, bytes]:
            spec = image_spec(task.images[0], self.work / f"{task.uuid}_input.npy", mode) if task.images else \
                JobSpec(kind=JobKind.TEXT, backend="local", mode=mode, prompt=source or "crate",
                        seed=int(task.fields.get("seed", "1") or 1))
            made = run_local_engine(spec, self.work / task.uuid, self.work / f"engine_{task.uuid}")
            return Path(made["model"]).read_bytes(), Path(made["preview"]).read_bytes()

        cache_key = (source, tier)
        model, preview = self.results.made(cache_key, make) if self.reuse_results else make()
        with self.lock:
            self.files[f"{task.uuid}/base_basic_pbr.glb"] = model
            self.files[f"{task.uuid}/preview.png"] = preview


def make_handler(state: RodinState) -> type[QuietHandler]:
    class Handler(QuietHandler):
        @property
        def _key(self) -> str:
            return self.bearer

        def _send(self, status: int, body: dict[str, Any]) -> None:
            self.send_json(status, body)

        def _authorised(self) -> bool:
            if not self._key or (state.valid_keys is not None and self._key not in state.valid_keys):
                self._send(401, {"detail": "Not authenticated"})
                return False
            return True

        def do_GET(self) -> None:
            path = urlsplit(self.path)
            with state.lock:
                state.requests_seen.append(("GET", path.path, self.headers.get("Authorization", "")))
            if path.path.startswith(CDN):
                self._cdn(path.path.removeprefix(CDN), parse_qs(path.query))
            elif not self._authorised():
                return
            elif path.path == f"{PREFIX}/check_balance":
                self._send(200, {"balance": state.balance})
            else:
                self._send(404, {"error": "NOT_FOUND", "message": "no such route"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            body = self.read_body()
            with state.lock:
                state.requests_seen.append(("POST", path, self.headers.get("Authorization", "")))
            if not self._authorised():
                return
            route = path.removeprefix(PREFIX)
            if route == "/rodin":
                self._create(body)
                return
            try:
                request = json.loads(body or b"{}")
            except json.JSONDecodeError:
                self._send(400, {"error": "INVALID_JSON"})
                return
            if route == "/status":
                self._status(str(request.get("subscription_key", "")))
            elif route == "/download":
                self._download(str(request.get("task_uuid", "")))
            else:
                self._send(404, {"error": "NOT_FOUND", "message": "no such route"})

        def _create(self, body: bytes) -> None:
            fields, files = form_parts(self.headers.get("Content-Type", ""), body)
            images = files.get("images", [])
            with state.lock:
                if state.create_errors:
                    error = state.create_errors.pop(0)
                    if isinstance(error, int):
                        self._send(error, {"error": f"HTTP_{error}", "message": "sandbox error"})
                    else:
                        self._send(200, {"error": error, "message": "sandbox error"})
                    return
                if len(images) > 5:
                    self._send(400, {"error": "TOO_MANY_IMAGES", "message": "at most 5 images"})
                    return
                if not images and not fields.get("prompt", "").strip():
                    self._send(400, {"error": "PROMPT_REQUIRED", "message": "prompt is required without images"})
                    return
                if fields.get("seed") and not 0 <= int(fields["seed"]) <= 65535:
                    self._send(400, {"error": "INVALID_SEED", "message": "seed must be within 0-65535"})
                    return
                if state.balance < CREDITS:
                    self._send(200, {"error": "INSUFFICIENT_FUND", "message": "insufficient fund"})
                    return
                state.balance -= CREDITS
                tier = fields.get("tier", "Regular")
                task = RodinTask(uuid=str(uuid.uuid4()), subscription_key=uuid.uuid4().hex + uuid.uuid4().hex,
                                 fields=fields, images=images, created=time.time(),
                                 duration=state.latency_s.get(tier, state.latency_s["default"]),
                                 job_ids=[str(uuid.uuid4()) for _ in range(state.jobs_per_task)],
                                 failing=state.fail_jobs.pop(0) if state.fail_jobs else 0, owner=self._key)
                state.tasks[task.uuid] = task
                state.creates += 1
            state.generate(task)
            self._send(state.create_status, {"error": None, "message": "Submitted.", "uuid": task.uuid,
                                             "prompt": fields.get("prompt"), "submit_time": task.created,
                                             "jobs": {"uuids": task.job_ids,
                                                      "subscription_key": task.subscription_key}})

        def _status(self, subscription_key: str) -> None:
            with state.lock:
                state.status_requests += 1
                task = state.by_key(self._key, subscription_key)
            if task is None:
                self._send(404, {"error": "TASK_NOT_FOUND", "jobs": []})
                return
            statuses = task.job_statuses(time.time())
            self._send(201, {"error": None, "jobs": [{"uuid": j, "status": s}
                                                     for j, s in zip(task.job_ids, statuses, strict=True)]})

        def _download(self, task_uuid: str) -> None:
            with state.lock:
                state.download_requests += 1
                task = state.tasks.get(task_uuid)
                task = task if task is not None and task.owner == self._key else None
            if task is None:
                self._send(404, {"error": "TASK_NOT_FOUND", "list": []})
                return
            if any(s != "Done" for s in task.job_statuses(time.time())):
                self._send(400, {"error": "TASK_NOT_COMPLETED", "list": []})
                return
            names = [n for n in state.files if n.startswith(f"{task.uuid}/")]
            self._send(201, {"error": None, "list": [
                {"url": state.signer.sign(f"{self.base}{CDN}", n, state.url_lifetime_s),
                 "name": n.split("/", 1)[1]} for n in names]})

        def _cdn(self, name: str, query: dict[str, list[str]]) -> None:
            data = state.files.get(name) if state.signer.valid(name, query) else None
            if data is None:
                self.send_empty(403)
            else:
                self.send_file(data, "application/octet-stream")

    return Handler


class RodinSandbox(BackgroundServer):
    """The server in a background thread: `with RodinSandbox() as sandbox: sandbox.url …` (…/api/v2)."""

    def __init__(self, state: RodinState | None = None, port: int = 0) -> None:
        self.state = state or RodinState()
        super().__init__(make_handler(self.state), port, name="rodin-sandbox")

    @property
    def url(self) -> str:
        return f"{self.server.url}{PREFIX}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Hyper3D Rodin API v2 sandbox on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per task (Sketch: half)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs per task")
    parser.add_argument("--url-lifetime", type=float, default=600.0, help="seconds a download link works")
    parser.add_argument("--balance", type=float, default=100.0)
    args = parser.parse_args()
    state = RodinState(latency_s={"Sketch": args.latency / 2, "default": args.latency}, jobs_per_task=args.jobs,
                       url_lifetime_s=args.url_lifetime, balance=args.balance)
    RodinSandbox(state, args.port).serve_from_command_line()


if __name__ == "__main__":
    main()
