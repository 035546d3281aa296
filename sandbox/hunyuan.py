"""A Hunyuan3D `api_server.py` sandbox (2.0 or 2.1) on 127.0.0.1, with the real server's faults as knobs.
Standard library only (http.server), so it runs anywhere Kiln's tests run.

    python -m sandbox.hunyuan --port 0 [--version 2.1] [--slots 2] [--latency 1] [--texture-latency 1]

prints its URL. Point Kiln at one or several with KILN_HUNYUAN_URLS=<url>,<url>.

Routes as backends.md §4 describes them: `POST /send` → `{"uid"}`, `GET /status/{uid}`, `POST /generate`
(synchronous, the GLB bytes), and on 2.1 `GET /health` → `{"status": "healthy", "worker_id"}`. A job holds
one of `slots` while it generates (shape `latency_s`, then texture `texture_latency_s` when asked); the
others wait in order, reported as `processing` as the real server would. Faults, as the real servers have
them:
- any failure answered as HTTP 404 `{"text": "…NETWORK ERROR…", "error_code": 1}` (`error_answers`);
- 2.0 has no failure state: a job that crashes (`crash_next`) stays `processing` forever; on 2.1 it
  reports `error` with HTTP 500;
- 2.1 finishes only textured jobs: a `texture: false` job stays at `texturing` forever. Upstream's
  texturing answer carries no model; `initial_in_texturing` serves it there (as a patched server does);
- 2.1 validates its fields (422), 2.0 does not;
- `no_send`: a server with only `/generate`;
- `partial_reads`: status answers that read a model file still being written (cut in half).
`kill()` stops the server as a dead process would (connections dropped, unfinished jobs lost: `lost`), and
`restart()` brings it back on the same port with a new worker id and an empty memory (finished results
stay, as files on its disk do). Counters (`sends`, `generates`, `started`, `finished`, `finished_seeds`)
let tests check that nothing was lost or run twice without reading a clock.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from addon.imaging.glb import Material, MeshPart, build_glb  # noqa: E402
from sandbox._http import BackgroundServer, QuietHandler, SandboxServer  # noqa: E402
from sandbox._results import retextured  # noqa: E402

SERVER_ERROR_MSG = "**NETWORK ERROR DUE TO HIGH TRAFFIC. PLEASE REGENERATE OR REFRESH THIS PAGE.**"
RANGES_21 = {"octree_resolution": (64, 512), "num_inference_steps": (1, 20), "guidance_scale": (0.1, 20),
             "num_chunks": (1000, 20000), "face_count": (1000, 100000)}
"""2.1's pydantic bounds (out of range: 422)."""


def initial_model() -> bytes:
    """The untextured shape every job makes: a small tetrahedron GLB (the sandbox's GPUs are fast)."""
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    part = MeshPart(positions, positions / np.maximum(1e-6, np.linalg.norm(positions, axis=1, keepdims=True)),
                    positions[:, :2], np.array([0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3], np.uint32))
    return build_glb("hunyuan", [part], [Material("shape")])


INITIAL = initial_model()


def half(model: bytes) -> bytes:
    """The first half of a file (what a reader sees while its writer is halfway through)."""
    return model[: len(model) // 2]

TEXTURED = retextured(INITIAL, "hunyuan paint")


@dataclass
class SandboxJob:
    uid: str
    request: dict[str, Any]
    created: float
    texture: bool
    crash: bool = False
    state: str = "queued"
    """queued → running → done (or texturing forever, 2.1 without texture) | crashed | lost"""
    started: float = 0.0
    shape_done: float = 0.0
    end: float = 0.0
    delivered: bool = False


@dataclass
class HunyuanState:
    version: str = "2.1"
    slots: int = 2
    latency_s: float = 0.5
    """Shape generation per job."""
    texture_latency_s: float = 0.5
    """Texturing after the shape, when the job asks for it."""
    crash_next: int = 0
    """The next N jobs crash mid-generation (2.0: `processing` forever; 2.1: status `error`)."""
    crash_seeds: set[int] = field(default_factory=set)
    """Jobs with these seeds crash too (whatever order concurrent creates arrive in)."""
    error_answers: int = 0
    """The next N `/send` or `/generate` answer the 404 quirk instead of working."""
    no_send: bool = False
    partial_reads: int = 0
    """The next N status answers that serve a model carry only its first half: upstream answers `completed`
    (or 2.1's initial model) as soon as the file exists, and may read it while the worker still writes it."""
    initial_in_texturing: bool = True
    """2.1: the `texturing` answer carries `model_base64_initial` (False: upstream, which never serves it)."""
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    jobs: dict[str, SandboxJob] = field(default_factory=dict)
    finished_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """uid → the final status answer of a finished job (its files on disk survive a restart)."""
    clock: float = 0.0
    """Time of the last slot freed: a waiting job starts then, not when someone next asks."""
    sends: int = 0
    generates: int = 0
    status_requests: int = 0
    health_requests: int = 0
    started: int = 0
    finished: int = 0
    finished_seeds: list[int] = field(default_factory=list)
    """`seed` of every job that finished generating, in order (a job run twice shows twice)."""
    delivered_seeds: list[int] = field(default_factory=list)
    """`seed` of every job whose model was served (by its status or `/generate`), first time only."""
    lost: int = 0
    """Jobs that were queued or running when the server was killed (a job that finished just before,
    its model never fetched, is not lost but is in `finished_seeds` and not `delivered_seeds`)."""
    requests_seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    dead: bool = False
    """Killed: a request that slipped in before the connections were dropped gets no answer."""

    def _duration(self, job: SandboxJob) -> float:
        return self.latency_s + (self.texture_latency_s if job.texture else 0.0)

    def advance(self, now: float | None = None) -> None:
        """Run the simulated GPUs up to `now` (lock held): start waiting jobs as slots free, in order."""
        now = time.time() if now is None else now
        while True:
            running = [j for j in self.jobs.values() if j.state == "running"]
            waiting = [j for j in self.jobs.values() if j.state == "queued"]
            if waiting and len(running) < self.slots:
                job = waiting[0]
                job.state, job.started = "running", max(job.created, self.clock)
                job.shape_done = job.started + self.latency_s
                job.end = job.started + self._duration(job)
                self.started += 1
                continue
            ending = [j for j in running if j.end <= now]
            if not ending:
                return
            job = min(ending, key=lambda j: j.end)
            self.clock = job.end
            self._finish(job)

    def _finish(self, job: SandboxJob) -> None:
        if job.crash:
            job.state = "crashed"
            return
        job.state = "done"
        self.finished += 1
        self.finished_seeds.append(int(job.request.get("seed", 1234)))
        if self.version == "2.1" and not job.texture:
            answer: dict[str, Any] = {"status": "texturing"}  # upstream's bug: never `completed`
            if self.initial_in_texturing:
                answer["model_base64_initial"] = base64.b64encode(INITIAL).decode()
        elif self.version == "2.1":
            answer = {"status": "completed", "model_base64": base64.b64encode(TEXTURED).decode(),
                      "model_base64_initial": base64.b64encode(INITIAL).decode()}
        else:
            answer = {"status": "completed",
                      "model_base64": base64.b64encode(TEXTURED if job.texture else INITIAL).decode()}
        self.finished_files[job.uid] = answer

    def _delivered(self, uid: str) -> None:
        job = self.jobs.get(uid)
        if job is not None and not job.delivered:
            job.delivered = True
            self.delivered_seeds.append(int(job.request.get("seed", 1234)))

    def status(self, uid: str, now: float) -> tuple[int, dict[str, Any]]:
        """The status answer for `uid` (lock held)."""
        self.advance(now)
        if uid in self.finished_files:
            answer = self.finished_files[uid]
            if self.partial_reads > 0 and any(key.startswith("model_base64") for key in answer):
                self.partial_reads -= 1
                return 200, {key: base64.b64encode(half(base64.b64decode(value))).decode()
                             if key.startswith("model_base64") else value for key, value in answer.items()}
            return 200, answer  # counted as delivered by the handler once written (`_delivered`)
        job = self.jobs.get(uid)
        if job is not None and job.state == "crashed" and self.version == "2.1":
            return 500, {"status": "error", "message": "Failed to read generated file"}
        if (job is not None and job.state == "running" and self.version == "2.1" and job.texture
                and now >= job.shape_done and not job.crash):
            return 200, {"status": "texturing"}
        return 200, {"status": "processing"}  # unknown uids too: the real server only looks for files

    def create(self, request: dict[str, Any]) -> tuple[int, dict[str, Any], SandboxJob | None]:
        """A new job from a request body, or the error answer (lock held)."""
        if self.error_answers > 0:
            self.error_answers -= 1
            return 404, {"text": SERVER_ERROR_MSG, "error_code": 1}, None
        if self.version == "2.1":
            problems = [f"{key} must be in {low}..{high}" for key, (low, high) in RANGES_21.items()
                        if key in request and not (isinstance(request[key], int | float)
                                                   and low <= request[key] <= high)]
            if not request.get("image"):
                problems.append("image: field required")
            if problems:
                return 422, {"detail": [{"msg": p} for p in problems]}, None
        crash = self.crash_next > 0 or request.get("seed") in self.crash_seeds or not request.get("image")
        self.crash_next -= int(self.crash_next > 0)  # (2.0 crashes in its thread without an image)
        job = SandboxJob(str(uuid.uuid4()), request, time.time(), bool(request.get("texture", False)), crash)
        self.jobs[job.uid] = job
        self.advance(job.created)
        return 200, {"uid": job.uid}, job

    def kill(self) -> None:
        """The process dies (lock held): every job not finished is gone with its memory."""
        self.advance()
        for job in self.jobs.values():
            if job.state in ("queued", "running"):
                job.state = "lost"
                self.lost += 1
        self.jobs.clear()
        self.worker_id = uuid.uuid4().hex[:6]
        self.dead = True


def make_handler(state: HunyuanState) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _not_found(self) -> None:
            self.send_json(404, {"detail": "Not Found"})  # FastAPI's answer for a route it does not have

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            with state.lock:
                if state.dead:
                    self.close_connection = True
                    return
                state.requests_seen.append(("GET", path))
                if path == "/health" and state.version == "2.1":
                    state.health_requests += 1
                    self.send_json(200, {"status": "healthy", "worker_id": state.worker_id})
                elif path.startswith("/status/"):
                    state.status_requests += 1
                    uid = path.removeprefix("/status/")
                    code, answer = state.status(uid, time.time())
                    self.send_json(code, answer)
                    self.wfile.flush()
                    # Delivered only once the whole model went out: an answer a kill cut off was not, and
                    # the job moved to the other server is then fetched there for the first time.
                    if answer is state.finished_files.get(uid) and any(k.startswith("model_base64") for k in answer):
                        state._delivered(uid)
                else:
                    self._not_found()

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            raw = self.read_body()
            try:
                request = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                request = None
            with state.lock:
                if state.dead:
                    self.close_connection = True
                    return
                state.requests_seen.append(("POST", path))
                if path not in ("/send", "/generate") or (path == "/send" and state.no_send):
                    self._not_found()
                    return
                if not isinstance(request, dict):
                    self.send_json(422, {"detail": [{"msg": "body must be a JSON object"}]})
                    return
                code, body, job = state.create(request)
                if path == "/send":
                    state.sends += int(job is not None)
                    self.send_json(code, body)
                    return
                state.generates += int(job is not None)
            if job is None:
                self.send_json(code, body)
                return
            self._generate(job)

        def _generate(self, job: SandboxJob) -> None:
            """/generate blocks until the job is done, then answers the file (or the 404 quirk)."""
            while True:
                with state.lock:
                    state.advance()
                    answer = state.finished_files.get(job.uid)
                    if answer is not None:
                        state._delivered(job.uid)
                    if answer is not None or job.state in ("crashed", "lost"):
                        break
                time.sleep(0.01)
            if answer is None:
                self.send_json(404, {"text": SERVER_ERROR_MSG, "error_code": 1})
                return
            self.send_file(TEXTURED if job.texture else INITIAL, "model/gltf-binary")

    return Handler


class HunyuanSandbox(BackgroundServer):
    """The server in a background thread: `with HunyuanSandbox() as sandbox: sandbox.url …`."""

    def __init__(self, state: HunyuanState | None = None, port: int = 0) -> None:
        self.state = state or HunyuanState()
        super().__init__(make_handler(self.state), port, "hunyuan-sandbox")

    def generating(self) -> int:
        """Jobs generating right now, with some time left (to kill a server mid-job)."""
        with self.state.lock:
            self.state.advance()
            soon = time.time() + 0.05
            return sum(1 for job in self.state.jobs.values() if job.state == "running" and job.end > soon)

    def kill(self) -> None:
        """The server process dies mid-run: unreachable, and its unfinished jobs are lost."""
        self.stop()
        with self.state.lock:
            self.state.kill()

    def restart(self) -> None:
        """Back on the same port, as a new process (new worker id, nothing in memory)."""
        port = self.server.server_address[1]
        self.state.dead = False
        self.server = SandboxServer(("127.0.0.1", port), make_handler(self.state))
        self.servers = [self.server]
        self.start()


def main() -> None:
    parser = argparse.ArgumentParser(description="Hunyuan3D api_server.py sandbox on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--version", choices=("2.0", "2.1"), default="2.1")
    parser.add_argument("--slots", type=int, default=2, help="jobs generating at once; others wait")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds of shape generation per job")
    parser.add_argument("--texture-latency", type=float, default=1.0, help="seconds of texturing, when asked")
    parser.add_argument("--crash", type=int, default=0, help="the first N jobs crash (2.0: processing forever)")
    parser.add_argument("--error-answers", type=int, default=0, help="the first N creates answer the 404 quirk")
    parser.add_argument("--no-send", action="store_true", help="only the synchronous /generate")
    parser.add_argument("--upstream-texturing", action="store_true",
                        help="2.1: never serve the initial model of a job without texture (as upstream)")
    args = parser.parse_args()
    state = HunyuanState(version=args.version, slots=args.slots, latency_s=args.latency,
                         texture_latency_s=args.texture_latency, crash_next=args.crash,
                         error_answers=args.error_answers, no_send=args.no_send,
                         initial_in_texturing=not args.upstream_texturing)
    HunyuanSandbox(state, args.port).serve_from_command_line()


if __name__ == "__main__":
    main()
