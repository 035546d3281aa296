"""Self-hosted Hunyuan3D: a pool of `api_server.py` servers (one per GPU box) used as one backend.

The protocol is Tencent's `api_server.py` (Hunyuan3D-2 and 2.1; backends.md §4): `POST /send` → `{"uid"}`,
then `GET /status/{uid}` until `completed` with the model as base64; `POST /generate` answers the model
bytes synchronously and is used only for a server without `/send`. No key: plain http is fine for a
key-less server on the LAN (DESIGN, "Keys and plain http").

The servers' known faults, tolerated here:
- every failure is answered as HTTP 404 `{"text": "…NETWORK ERROR…", "error_code": 1}`: read as a server
  error (nothing was made, so the job may be sent again), never as "no such route";
- 2.0 has no failure state (a crashed job stays `processing` forever): a job still `processing` after
  `stuck_after_s` fails, saying so;
- 2.1 only counts `{uid}_textured.glb` as done, so a job sent with `texture: false` stays at `texturing`:
  when texturing was not asked for, the initial model is the result, accepted as soon as the server
  serves it (`model_base64_initial` / `initial_model_base64`); a server that never does fails the job
  after `stuck_after_s`, saying why;
- both report a job done as soon as its `.glb` exists (backends.md §4: "only `.glb` outputs are detected"),
  so a status asked while the worker is still writing the file carries a cut-off model: a model shorter
  than its own GLB header says is not the result yet, and is asked for again.

The pool. Each server runs `slots_per_server` jobs at once, and the backend declares the sum as its
concurrency, so the scheduler sees one backend. A create goes to the least-loaded healthy server; a
server never gets more jobs than its slots, so jobs waiting for a slot wait in Kiln's queue, bound to no
server, and simply go to whichever server frees up (nothing queued on a server can be lost). A server that
refuses a connection (nothing listens) or fails `take_out_after` requests in a row (time-outs) is taken out
and probed back every `probe_every_s` (`/health` on 2.1; 2.0 has none, so any HTTP answer counts). A create
refused by a dead server made nothing and is sent to the next server at once.

A job whose server died after accepting it: the server's jobs live in its memory (a thread per job), so
they died with it. Once the server is taken out, each such job is sent again, once, to another server (its
request is kept for this) before any new job gets a slot, and the engine follows the new task id
(`TaskUpdate.moved_to`, journaled; the old ids stay in the job's `moved_from`). The task id itself says
which server owns the job: `<uid>@<server url>`. If a server was only unreachable (its jobs kept running)
and comes back, the moved job's first run may finish too: its result is ignored (Kiln follows the new id),
and that GPU time is the one thing spent twice. A job recovered from the journal after a restart has no
request kept: if its server is gone it gives up after "Give up after", recoverably.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from ..http import HttpClient, image_part
from ..jobs import JobKind, JobSpec, Mode
from .base import Backend, BackendError, Capabilities, ConcurrencyRefused, TaskStatus, TaskUpdate
from .registry import split_urls

_log = logging.getLogger(__name__)

MAX_RESULT_BYTES = 300 * 1024 * 1024
MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""Kiln sends images of at most 2048 px; this only stops a runaway file from going out as base64."""
SYNC_PREFIX = "sync-"
"""Task ids of results made by `/generate` (already here when the id is handed out)."""

# What Draft and Production ask of the server (api_server.py's body fields). 2.1 bounds them:
# octree_resolution 64-512, num_inference_steps 1-20, face_count 1000-100000.
MODE_DEFAULTS: dict[Mode, dict[str, Any]] = {
    Mode.DRAFT: {"octree_resolution": 128, "num_inference_steps": 5, "texture": False},
    Mode.PRODUCTION: {"octree_resolution": 256, "num_inference_steps": 20, "texture": True, "face_count": 40000},
}
FILM = {"octree_resolution": 384, "face_count": 100000}
"""A film target keeps detail: a finer octree and the largest face count 2.1 accepts."""
BODY_FIELDS = ("seed", "octree_resolution", "num_inference_steps", "guidance_scale", "texture", "face_count",
               "num_chunks", "remove_background")
"""Spec parameters sent to the server as they are (others are Kiln's own)."""


@dataclass
class _Server:
    url: str
    http: HttpClient
    probe_http: HttpClient
    slots: int
    tasks: set[str] = field(default_factory=set)
    """Task ids this server accepted that have not ended."""
    sending: int = 0
    """Creates on their way to it (a slot each)."""
    failures: int = 0
    out: bool = False
    next_probe: float = 0.0
    worker_id: str = ""
    probing: bool = False
    sync_only: bool = False
    """It has no `/send`: jobs go through `/generate`."""

    @property
    def load(self) -> int:
        return len(self.tasks) + self.sending

    @property
    def host(self) -> str:
        return self.http.api_host


@dataclass
class _Task:
    server: str
    body: dict[str, Any] | None
    """The request, kept to send it again if the server dies (None: recovered from the journal)."""
    texture: bool
    started: float
    stuck_state: str = "processing"


class HunyuanBackend(Backend):
    """Built through `registry.build` from the pool's URLs (environment, preferences or manifest)."""

    name = "hunyuan"
    capabilities = Capabilities(
        cancel=False, reconcile=False, durable_tasks=True,
        concurrency={"gpu": 1},  # per server; a built backend declares the sum over its pool
        typical_latency_s={"draft": 20.0, "production": 90.0},
        input_kinds=frozenset({"image"}),  # api_server.py's text-to-image step is disabled upstream
        paced_polling=True,
    )

    def __init__(self, urls: Sequence[str] | str, *, online: Callable[[], bool] = lambda: True, timeout_s: float = 30.0,
                 slots_per_server: int = 1, stuck_after_s: float = 600.0, take_out_after: int = 2,
                 probe_every_s: float = 2.0) -> None:
        urls = split_urls(urls if isinstance(urls, str) else ",".join(urls))
        if not urls:
            raise BackendError("no_servers", "no Hunyuan3D server: set its URL in Preferences ▸ Add-ons ▸ Kiln "
                               "(or KILN_HUNYUAN_URLS, several separated by commas)")
        self.stuck_after_s = stuck_after_s
        self.take_out_after = max(1, take_out_after)
        self.probe_every_s = probe_every_s
        self.timeout_s = timeout_s
        self._online = online
        self.servers = {url: _Server(
            url,
            HttpClient(url, "", timeout_s=timeout_s, max_read_retries=0, online=online),
            HttpClient(url, "", timeout_s=min(timeout_s, 3.0), max_read_retries=0, online=online),
            max(1, slots_per_server)) for url in urls}
        self.capabilities = replace(type(self).capabilities,
                                    concurrency={"gpu": sum(s.slots for s in self.servers.values())})
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self._results: dict[str, bytes] = {}
        self.moves = 0
        """Jobs sent again because their server died (for tests and the benchmark)."""

    # ------------------------------------------------------------------ requests
    def request_body(self, spec: JobSpec) -> dict[str, Any]:
        """The JSON body of `/send` and `/generate` for `spec`."""
        if spec.kind is not JobKind.IMAGE:
            raise BackendError("unsupported_input", "Hunyuan3D's api_server makes models from an image only (its "
                               "text-to-image step is disabled upstream): give an image, or use another backend "
                               "for text", nothing_created=True)
        params = spec.params_dict
        body: dict[str, Any] = dict(MODE_DEFAULTS[spec.mode])
        if spec.mode is Mode.PRODUCTION and params.get("target") == "film":
            body.update(FILM)
        body.update({k: v for k, v in params.items() if k in BODY_FIELDS})
        if spec.mode is Mode.PRODUCTION and "face_limit" in params:
            body["face_count"] = max(1000, min(100000, int(params["face_limit"])))
        body["seed"] = int(body.get("seed", spec.seed or 1234))
        prepared = params.get("prepared_images", ())
        source = str(prepared[0]) if prepared else spec.image_paths[0]
        try:
            data, _, _ = image_part(source, limit_bytes=MAX_IMAGE_BYTES, provider="the Hunyuan3D server")
        except BackendError as exc:
            raise BackendError(exc.code, exc.message, nothing_created=True) from None
        except OSError as exc:
            raise BackendError("unsupported_input", f"could not read the image '{Path(source).name}': {exc}",
                               nothing_created=True) from None
        body["image"] = base64.b64encode(data).decode("ascii")
        body["type"] = "glb"
        return body

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _server_error(self, server: _Server, response: requests.Response) -> BackendError | None:
        """The error a server's answer carries, or None for a success. Its 404 quirk (any failure as 404
        with a JSON `text`) is a server error, told apart from a route the server lacks."""
        body = self._json(response)
        if response.status_code == 404 and "error_code" in body:
            return BackendError("server_error", f"the Hunyuan3D server at {server.host} failed to generate this "
                                f"model (it said: {str(body.get('text', '')).strip('* ') or 'nothing'}; its log "
                                "says why)", retryable=True, nothing_created=True)
        if response.status_code == 422:
            return BackendError("invalid_request", f"the Hunyuan3D server at {server.host} refused the request: "
                                f"{_detail(body)}", nothing_created=True)
        if response.status_code >= 400:
            return BackendError(f"http_{response.status_code}", f"the Hunyuan3D server at {server.host} answered "
                                f"HTTP {response.status_code}: {_detail(body)}", retryable=True,
                                nothing_created=response.status_code < 500 or "error" in body)
        return None

    # ------------------------------------------------------------------ the pool
    def _probe_due(self) -> None:
        """Ask each server that is out whether it is back, when its probe is due: in the background, so a
        host that swallows packets never holds up the servers that work."""
        now = time.monotonic()
        with self._lock:
            due = [s for s in self.servers.values() if s.out and not s.probing and now >= s.next_probe]
            for server in due:
                server.probing, server.next_probe = True, now + self.probe_every_s
        for server in due:
            threading.Thread(target=self._probe_once, args=(server,), name="kiln-hunyuan-probe", daemon=True).start()

    def _probe_once(self, server: _Server) -> None:
        try:
            self._probe(server)
        finally:
            with self._lock:
                server.probing = False

    def _probe(self, server: _Server) -> bool:
        """`/health` (2.1), or any HTTP answer at all from a server without it (2.0)."""
        try:
            response = server.probe_http.request("GET", "/health")
        except BackendError:
            return False
        body = self._json(response)
        if response.status_code >= 500:
            return False
        worker = str(body.get("worker_id", ""))
        with self._lock:
            if server.out:
                _log.info("hunyuan: %s is back%s", server.url,
                          " (restarted)" if worker and server.worker_id and worker != server.worker_id else "")
            server.out, server.failures = False, 0
            server.worker_id = worker or server.worker_id
        return True

    def _failed(self, server: _Server, error: BackendError) -> None:
        """One more failure in a row; the server is out after `take_out_after` of them, or at once when the
        connection was refused (nothing listens: the server process is gone)."""
        refused = error.code == "connection_failed" and error.nothing_created
        with self._lock:
            server.failures = max(server.failures + 1, self.take_out_after if refused else 0)
            if server.failures >= self.take_out_after and not server.out:
                server.out = True
                server.next_probe = time.monotonic() + self.probe_every_s
                _log.warning("hunyuan: %s taken out of the pool (%s)", server.url, error.message)

    def _waiting_moves(self) -> int:
        """Jobs on servers that are out, waiting to be sent elsewhere (lock held)."""
        return sum(1 for s in self.servers.values() if s.out for t in s.tasks
                   if (task := self._tasks.get(t)) is not None and task.body is not None)

    def _pick(self, tried: set[str], moving: bool) -> _Server:
        """The least-loaded healthy server with a free slot, its slot taken (lock held). A job moving off a
        dead server goes before new ones. Raises when there is none."""
        healthy = [s for s in self.servers.values() if not s.out and s.url not in tried]
        free = [s for s in healthy if s.load < s.slots]
        spare = sum(s.slots - s.load for s in free)
        if not healthy:
            raise BackendError("no_server", "no Hunyuan3D server answers (" + ", ".join(self.servers) + ")",
                               retryable=True, nothing_created=True)
        if not free or (not moving and spare <= self._waiting_moves()):
            raise ConcurrencyRefused("every Hunyuan3D server in the pool is busy", retry_after_s=0.2)
        server = min(free, key=lambda s: (s.load / s.slots, s.load))
        server.sending += 1
        return server

    def _send_anywhere(self, body: dict[str, Any], *, moving: bool = False, avoid: str = "") -> str:
        """Send `body` to the pool; returns the task id. A server that cannot be reached made nothing, so
        the next one is tried at once."""
        self._probe_due()
        tried = {avoid} if avoid else set()
        while True:
            with self._lock:
                server = self._pick(tried, moving)
            try:
                task_id = self._send(server, body)
            except BackendError as exc:
                with self._lock:
                    server.sending -= 1
                if exc.code == "connection_failed" and exc.nothing_created:
                    self._failed(server, exc)
                    tried.add(server.url)
                    continue
                raise
            with self._lock:
                server.sending -= 1
                server.failures = 0
                if not task_id.startswith(SYNC_PREFIX):
                    server.tasks.add(task_id)
                    self._tasks[task_id] = _Task(server.url, body, bool(body.get("texture")), time.monotonic())
            return task_id

    def _send(self, server: _Server, body: dict[str, Any]) -> str:
        if not server.sync_only:
            response = server.http.request("POST", "/send", json=body)
            if response.status_code in (404, 405) and "error_code" not in self._json(response):
                _log.info("hunyuan: %s has no /send; using its synchronous /generate", server.url)
                server.sync_only = True
            else:
                error = self._server_error(server, response)
                if error is not None:
                    raise error
                uid = self._json(response).get("uid")
                if not uid:
                    raise BackendError("bad_response", f"the Hunyuan3D server at {server.host} accepted the job "
                                       "but sent no uid")
                return f"{uid}@{server.url}"
        return self._generate(server, body)

    def _generate(self, server: _Server, body: dict[str, Any]) -> str:
        """The synchronous route: the model comes back in the answer, after the whole generation."""
        slow = HttpClient(server.url, "", timeout_s=max(self.timeout_s, self.stuck_after_s), max_read_retries=0,
                          online=self._online)
        response = slow.request("POST", "/generate", json=body)
        error = self._server_error(server, response)
        if error is not None:
            raise error
        task_id = f"{SYNC_PREFIX}{uuid.uuid4().hex}@{server.url}"
        with self._lock:
            self._results[task_id] = response.content
        return task_id

    # ------------------------------------------------------------------ Backend interface
    def estimate_credits(self, spec: JobSpec) -> float:
        return 0.0  # your own GPUs

    def submit(self, spec: JobSpec, client_ref: str) -> str:
        return self._send_anywhere(self.request_body(spec))

    def verify(self) -> None:
        """Every server is asked once; those that do not answer start out of the pool (probed back later).
        Fails only when none answers."""
        answered = [server.url for server in self.servers.values() if self._probe(server)]
        for server in self.servers.values():
            if server.url not in answered:
                with self._lock:
                    server.out, server.failures = True, self.take_out_after
                    server.next_probe = time.monotonic() + self.probe_every_s
                _log.warning("hunyuan: %s does not answer; it joins the pool when it does", server.url)
        if not answered:
            raise BackendError("no_server", "no Hunyuan3D server answers (" + ", ".join(self.servers) + ")")

    def _owner(self, task_id: str) -> tuple[str, _Server | None]:
        uid, _, url = task_id.partition("@")
        return uid, self.servers.get(url.rstrip("/"))

    def watch(self, task_ids: Sequence[str], timeout_s: float) -> list[TaskUpdate]:
        """Each task asked of its own server, now (the scheduler paces the calls). A server that does not
        answer is not asked again this round; its tasks move once it is taken out."""
        self._probe_due()
        updates: list[TaskUpdate] = []
        silent: set[str] = set()
        for task_id in task_ids:
            uid, server = self._owner(task_id)
            if server is None:  # the pool was changed since this job was sent
                updates.append(TaskUpdate(task_id, TaskStatus.FAILED, error_code="not_in_pool", error_message=(
                    f"this job ran on {task_id.partition('@')[2] or 'a server'}, which is no longer in the "
                    "Hunyuan3D server list: add it back to fetch the result")))
                continue
            if task_id.startswith(SYNC_PREFIX):
                with self._lock:
                    done = task_id in self._results
                updates.append(TaskUpdate(task_id, TaskStatus.SUCCESS if done else TaskStatus.MISSING, 1.0))
                continue
            with self._lock:
                task = self._tasks.get(task_id)
                if task is None:  # recovered from the journal: what it asked is not known
                    task = self._tasks[task_id] = _Task(server.url, None, True, time.monotonic())
                server.tasks.add(task_id)
                out = server.out
            if out:
                updates.append(self._move(task_id, task, server))
                continue
            if server.url in silent:
                updates.append(TaskUpdate(task_id, TaskStatus.UNKNOWN,
                                          error_message=f"the Hunyuan3D server at {server.host} does not answer"))
                continue
            try:
                response = server.http.request("GET", f"/status/{uid}")
            except BackendError as exc:
                self._failed(server, exc)
                silent.add(server.url)
                updates.append(TaskUpdate(task_id, TaskStatus.UNKNOWN, error_message=exc.message))
                continue
            with self._lock:
                server.failures = 0
            update = self._status(task_id, task, server, response)
            if update.status.is_terminal:
                with self._lock:
                    server.tasks.discard(task_id)
                    self._tasks.pop(task_id, None)
            updates.append(update)
        return updates

    def _move(self, task_id: str, task: _Task, server: _Server) -> TaskUpdate:
        """Send a dead server's job to another one, once; the engine then follows the new id."""
        waiting = TaskUpdate(task_id, TaskStatus.UNKNOWN, error_message=f"the Hunyuan3D server at {server.host} "
                             "is out of the pool" + ("; waiting for a free server to run it again" if task.body
                                                     else ""))
        if task.body is None:
            return waiting
        try:
            new_id = self._send_anywhere(task.body, moving=True, avoid=server.url)
        except BackendError as exc:
            if exc.nothing_created:
                return waiting
            raise
        with self._lock:
            server.tasks.discard(task_id)
            self._tasks.pop(task_id, None)
            self.moves += 1
        _log.warning("hunyuan: job %s moved from %s (out of the pool) to %s", task_id, server.url, new_id)
        return TaskUpdate(task_id, TaskStatus.RUNNING, moved_to=new_id)

    def _status(self, task_id: str, task: _Task, server: _Server, response: requests.Response) -> TaskUpdate:
        body = self._json(response)
        status = str(body.get("status", "")).strip().lower()
        if status == "error" or response.status_code >= 500:
            return TaskUpdate(task_id, TaskStatus.FAILED, error_code="hunyuan_error",
                              error_message=f"the Hunyuan3D server at {server.host} failed this job: "
                              f"{_detail(body)}")
        if response.status_code == 404 and "error_code" not in body:
            return TaskUpdate(task_id, TaskStatus.MISSING)
        if response.status_code >= 400:
            error = self._server_error(server, response)
            return TaskUpdate(task_id, TaskStatus.UNKNOWN, error_message=error.message if error else "")
        initial = body.get("model_base64_initial") or body.get("initial_model_base64")
        served: Any = None
        if status == "completed":
            served = body.get("model_base64") if task.texture else initial or body.get("model_base64")
        elif status == "texturing" and not task.texture and initial:
            served = initial  # 2.1 never completes a job without texture
        if served is not None or status == "completed":
            update = self._result(task_id, served)
            if update is not None:
                return update
            status = "writing"  # the file was read while the worker was still writing it: ask again
        elif status not in ("processing", "texturing"):
            return TaskUpdate(task_id, TaskStatus.UNKNOWN, error_message=f"it reports status {status or body!r}")
        if status != task.stuck_state:
            task.stuck_state, task.started = status, time.monotonic()
        waited = time.monotonic() - task.started
        if waited > self.stuck_after_s:
            return TaskUpdate(task_id, TaskStatus.FAILED, error_code="stuck", error_message=_stuck_message(
                server.host, status, waited, task.texture))
        return TaskUpdate(task_id, TaskStatus.RUNNING, {"texturing": 0.5, "writing": 0.9}.get(status, 0.0))

    def _result(self, task_id: str, data: Any) -> TaskUpdate | None:
        """The finished job with its model kept, a failure, or None: a GLB still being written."""
        if not isinstance(data, str) or len(data) * 3 // 4 > MAX_RESULT_BYTES:
            return TaskUpdate(task_id, TaskStatus.FAILED, error_code="no_model",
                              error_message="the Hunyuan3D server reported the job done without a usable model")
        try:
            model = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return TaskUpdate(task_id, TaskStatus.FAILED, error_code="no_model",
                              error_message="the Hunyuan3D server sent a model Kiln cannot decode")
        if len(model) >= 4 and not model.startswith(b"glTF"):
            return TaskUpdate(task_id, TaskStatus.FAILED, error_code="no_model",
                              error_message="the Hunyuan3D server sent a model that is not a GLB")
        if len(model) < 12 or int.from_bytes(model[8:12], "little") != len(model):
            return None  # fewer bytes than its header's total length: the rest is not written yet
        with self._lock:
            self._results[task_id] = model
        return TaskUpdate(task_id, TaskStatus.SUCCESS, 1.0)

    def download(self, task_id: str, dest_dir: Path) -> dict[str, str]:
        """The model arrived with the status: written out here. After a restart, asked for again."""
        with self._lock:
            model = self._results.get(task_id)
        if model is None:
            uid, server = self._owner(task_id)
            if server is None or task_id.startswith(SYNC_PREFIX):
                raise BackendError("unknown_task", f"no Hunyuan3D server in the pool holds {task_id}")
            with self._lock:
                task = self._tasks.get(task_id) or _Task(server.url, None, True, time.monotonic())
            update = self._status(task_id, task, server, server.http.request("GET", f"/status/{uid}"))
            if update.status is not TaskStatus.SUCCESS:
                raise BackendError("no_model", update.error_message or "the Hunyuan3D server has no model for "
                                   "this job any more", retryable=update.status is not TaskStatus.FAILED)
            with self._lock:
                model = self._results[task_id]
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / "model.glb"
        partial = target.with_name("model.glb.part")
        partial.write_bytes(model)
        os.replace(partial, target)
        with self._lock:
            self._results.pop(task_id, None)
        return {"model": str(target)}


def _detail(body: dict[str, Any]) -> str:
    """What an error answer says: 2.1's `message`, FastAPI's `detail`, the 404 quirk's `text`."""
    for key in ("message", "detail", "text", "error"):
        if body.get(key):
            return str(body[key])[:300]
    return "no details"


def _stuck_message(host: str, status: str, waited: float, texture: bool) -> str:
    if status == "writing":
        return (f"the Hunyuan3D server at {host} reported the job done but served an incomplete model for "
                f"{waited:.0f} s (its file on the server is cut off: see its log and disk)")
    if status == "texturing" and not texture:
        return (f"the Hunyuan3D server at {host} made the model but never served it ({waited:.0f} s at "
                "'texturing': a 2.1 server only finishes textured jobs): turn texture on, or update the server")
    return (f"the Hunyuan3D server at {host} reported '{status}' for {waited:.0f} s without finishing: it has "
            "no failure state, so it probably crashed on this job (see its log)")
