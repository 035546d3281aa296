"""A Meshy API sandbox: the routes, shapes and limits of `shared/reference/backends.md` §2 on 127.0.0.1,
with results made by Kiln's local engine. Standard library only (http.server), like the Tripo sandbox.

    python -m sandbox.meshy --port 0 [--latency 1] [--queue-limit 10] [--rate 0] [--url-lifetime 300]

prints its base URL. Point Kiln at it with KILN_MESHY_BASE_URL=<url> and any key starting with msy_.

Two servers: the API (`url`, Bearer key) and a separate asset host (`asset_url`, another port) that
serves `model_urls`, `thumbnail_url` and `texture_urls` by signed links expiring after
`url_lifetime_s` (403 after, 404 once a task is deleted). The asset host never needs the key; every
Authorization header that reaches it is kept in `asset_auth_headers`, so a test can assert there is none.

Protocol: creates answer 202 `{"result": id}`; tasks go PENDING → IN_PROGRESS → SUCCEEDED | FAILED |
CANCELED by the clock (`latency_s` per task type); `GET …/{id}/stream` is Server-Sent Events (chunked
`text/event-stream`, `event: message` on every progress change, the full task object at the terminal
status, then the stream ends; `event: error` for an unknown task). Errors are `{"message": str}`;
both 429s (`NoMoreConcurrentTasks`, `RateLimitExceeded`) count against the whole account, as on Meshy.
DELETE of an unfinished task cancels it (CANCELED, refunded; a remesh, which cannot be cancelled, is
deleted); DELETE of a finished task deletes it (404 afterwards, its assets gone).

In-process (tests, benchmarks): knobs and counters are the fields of `MeshyState`, e.g.

    with MeshySandbox(MeshyState(latency_s={PREVIEW: 0.3}, queue_limit=10, drop_streams=[2])) as sandbox:
        ... sandbox.url, sandbox.asset_url; sandbox.state.completions(), .route_counts, .open_streams …
"""

from __future__ import annotations

import argparse
import base64
import binascii
import gzip
import hashlib
import json
import logging
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from addon.imaging.png import encode_png  # noqa: E402
from addon.jobs import JobKind, JobSpec, Mode  # noqa: E402
from sandbox._http import BackgroundServer, QuietHandler, RateWindow, SandboxServer, UrlSigner  # noqa: E402
from sandbox._results import (  # noqa: E402
    ResultCache,
    image_spec,
    read_png,
    run_local_engine,
    with_extras,
    with_texture,
)

_log = logging.getLogger(__name__)

TEST_MODE_KEY = "msy_dummy_api_key_for_test_mode_12345678"
"""Meshy's documented test key: accepted, and charged nothing."""

PREVIEW, REFINE = "text-to-3d-preview", "text-to-3d-refine"
IMAGE, MULTI_IMAGE, REMESH, RETEXTURE = "image-to-3d", "multi-image-to-3d", "remesh", "retexture"
FAMILIES: dict[str, tuple[str, ...]] = {
    "/openapi/v2/text-to-3d": (PREVIEW, REFINE),
    "/openapi/v1/image-to-3d": (IMAGE,),
    "/openapi/v1/multi-image-to-3d": (MULTI_IMAGE,),
    "/openapi/v1/remesh": (REMESH,),
    "/openapi/v1/retexture": (RETEXTURE,),
}
"""Route of each task family → the task types it creates and answers for."""
BALANCE_ROUTE = "/openapi/v1/balance"
PENDING, IN_PROGRESS, SUCCEEDED, FAILED, CANCELED = "PENDING", "IN_PROGRESS", "SUCCEEDED", "FAILED", "CANCELED"
TERMINAL = (SUCCEEDED, FAILED, CANCELED)
ERROR_TYPES = ("invalid_input", "timeout", "service_unavailable", "server_error")
AI_MODELS = ("meshy-4", "meshy-5", "meshy-6", "meshy-7", "latest")
ASSET_ROUTE = "/assets/"
ASSETS_KEPT_MS = 3 * 24 * 3600 * 1000
"""Assets are kept 3 days for non-Enterprise accounts (`expires_at`)."""


@dataclass
class MeshyTask:
    id: str
    type: str
    request: dict[str, Any]
    owner: str
    created: float
    duration: float
    pending_s: float
    credits: int
    failure: dict[str, str] | None = None
    """The task_error it will end with, if it fails."""
    source: str = ""
    """The task whose model it works on (a refine's preview, a remesh's or retexture's input)."""
    status: str = PENDING
    progress: int = 0
    started: float = 0.0
    finished: float = 0.0
    """Epoch seconds of the terminal status (0 until then): what a benchmark subtracts from "on disk"."""
    result_ready: threading.Event = field(default_factory=threading.Event)
    result_time: float = 0.0
    assets: dict[str, str] = field(default_factory=dict)
    """Asset role ("glb", "thumbnail", "base_color", …) → file name on the asset host."""


@dataclass
class MeshyState:
    """Knobs (set before or while serving) and counters (read by tests and benchmarks)."""

    # -- knobs --------------------------------------------------------------------------------------
    latency_s: dict[str, float] = field(default_factory=lambda: {
        PREVIEW: 1.0, REFINE: 2.0, IMAGE: 2.0, MULTI_IMAGE: 2.0, REMESH: 0.5, RETEXTURE: 1.0})
    """Seconds from create to the terminal status, per task type."""
    pending_fraction: float = 0.2
    """The first part of a task's latency it spends PENDING (queued) before IN_PROGRESS."""
    progress_step: int = 10
    """Progress moves in steps of this many percent: one SSE event per step."""
    queue_limit: int = 10
    """PENDING + IN_PROGRESS tasks of the account before a create gets 429 NoMoreConcurrentTasks."""
    rate_limit_per_s: float = 0.0
    """API requests per second of the account before 429 RateLimitExceeded (0: no limit)."""
    balance: int = 1000
    valid_keys: set[str] | None = None
    """If set, only these keys are accepted; otherwise any key starting with msy_ (others: 401)."""
    task_failures: list[dict[str, str]] = field(default_factory=list)
    """task_error of the next created tasks, consumed in order: they end FAILED with it (refunded),
    e.g. [{"type": "server_error", "message": "GPU lost"}]; an empty entry lets that task succeed (so a
    chain's refine can fail after its preview did)."""
    failure_rates: dict[str, float] = field(default_factory=dict)
    """task_error type → probability a new task fails with it, e.g. {"timeout": 0.1}."""
    create_errors: list[int | tuple[int, str]] = field(default_factory=list)
    """HTTP errors the next creates answer with (nothing created or charged), consumed in order: a
    status (402, 500, …) or (status, message); 0 lets that create through."""
    status_errors: dict[str, int] = field(default_factory=dict)
    """Meshy task id → the HTTP error its `GET /:id` answers with (its stream and other tasks are unaffected)."""
    sse_line_end: str = "\n"
    """How the event stream ends its lines: the spec allows "\n", "\r\n" and "\r"."""
    drop_streams: list[int] = field(default_factory=list)
    """The next SSE streams each close after this many events, with no terminal event (consumed in order)."""
    drop_every_stream_after: int = 0
    """Every SSE stream closes after this many events with no terminal event (0: never)."""
    url_lifetime_s: float = 300.0
    """Asset links answer 403 this long after the task object that carried them was served."""
    asset_route: str = ""
    """"": assets are on the separate asset host. A route such as "/openapi/v1/assets/": the API host
    serves them there instead, under a path that looks like the API's, to check that a client still
    never sends the key with a download (requests there are recorded in `asset_requests` too)."""
    drop_downloads: int = 0
    """The next N asset downloads announce the full length, send half and close."""
    asset_encoding: str = ""
    """"gzip": the asset host compresses what it serves to a client that accepts gzip (as a CDN may; HTTP's
    Content-Length is then the compressed size, RFC 9110 §8.6). "": plain bytes."""
    retry_after: str = ""
    """Retry-After of the 429 answers: "" none, delay-seconds ("30") or an HTTP-date, both of which HTTP
    allows (RFC 9110 §10.2.3); Meshy's docs do not say which it sends."""
    make_results: bool = True
    """False: no result is ever made, so tasks stay IN_PROGRESS at 99 (for tests that read only requests)."""
    reuse_results: bool = True
    """One generated result per (type, prompt or image) rather than per task: see ResultCache."""

    # -- counters -----------------------------------------------------------------------------------
    route_counts: Counter[str] = field(default_factory=Counter)
    """"METHOD route" → requests, route with :id, e.g. "GET /openapi/v2/text-to-3d/:id/stream"."""
    requests_seen: list[tuple[str, str, str]] = field(default_factory=list)
    """(method, path, Authorization header) of every API request."""
    asset_requests: list[tuple[str, str]] = field(default_factory=list)
    """(path, Authorization header or "") of every asset host request."""
    polls: Counter[str] = field(default_factory=Counter)
    """Task id → GETs of its task object (the list route not included)."""
    refusals: Counter[str] = field(default_factory=Counter)
    """"NoMoreConcurrentTasks" / "RateLimitExceeded" → 429s answered."""
    assets_compressed: int = 0
    """Asset answers sent gzip-encoded (`asset_encoding`)."""
    streams_opened: int = 0
    open_streams: int = 0
    peak_open_streams: int = 0
    stream_events: int = 0
    streams_dropped: int = 0
    timeline: list[tuple[float, str, str, int]] = field(default_factory=list)
    """(time, "create" | "refused" | SUCCEEDED | FAILED | CANCELED, task id, tasks in the queue after it)."""
    tasks: dict[str, MeshyTask] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    # -- machinery ----------------------------------------------------------------------------------
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    """Notified on every change a stream could report (a result made, a cancel, the server stopping)."""
    serving: bool = False
    """Set while a MeshySandbox serves this state: open streams end when it stops."""
    signer: UrlSigner = field(default_factory=lambda: UrlSigner(resolution_s=0.001))
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="meshy-sandbox-")))
    _rate_window: RateWindow = field(default_factory=RateWindow)
    result_cache: ResultCache = field(default_factory=ResultCache)
    """Made results by (type, subject); tests may share one between sandboxes to make each result once."""

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    @property
    def asset_auth_headers(self) -> list[str]:
        """Authorization headers that reached the asset host: always empty for a well-behaved client."""
        return [auth for _, auth in self.asset_requests if auth]

    def completions(self) -> dict[str, float]:
        """Task id → epoch seconds it reached its terminal status, for tasks that have."""
        with self.lock:
            self.advance()
            return {t.id: t.finished for t in self.tasks.values() if t.finished}

    # -- the clock ----------------------------------------------------------------------------------
    def in_queue(self) -> int:
        return sum(1 for t in self.tasks.values() if t.status in (PENDING, IN_PROGRESS))

    def advance(self) -> None:
        """Move every task along by the clock (callers hold the lock)."""
        now = time.time()
        for task in self.tasks.values():
            self._advance(task, now)

    def _advance(self, task: MeshyTask, now: float) -> None:
        if task.status in TERMINAL:
            return
        start, end = task.created + task.pending_s, task.created + task.duration
        if now < start:
            return
        task.status, task.started = IN_PROGRESS, start
        fraction = (now - start) / max(1e-9, end - start)
        task.progress = min(99, int(100 * fraction) // self.progress_step * self.progress_step)
        if now < end or (task.failure is None and not task.result_ready.is_set()):
            return  # still running, or the (simulated) provider is still rendering past its schedule
        # Done at its scheduled time (if the result was ready by then), not when someone next asks.
        task.finished = end if task.failure else max(end, task.result_time)
        task.status = FAILED if task.failure else SUCCEEDED
        if task.failure:
            self.balance += task.credits  # a failed task is refunded
        else:
            task.progress = 100
        self.timeline.append((task.finished, task.status, task.id, self.in_queue()))

    def next_change(self, task: MeshyTask) -> float | None:
        """Epoch seconds of the task's next visible change by the clock, or None if only a notify
        (its result made, a cancel) can change it."""
        if task.status in TERMINAL:
            return None
        start, end = task.created + task.pending_s, task.created + task.duration
        if task.status == PENDING:
            return start
        step_s = (end - start) * self.progress_step / 100
        # A hair past the step, so the float arithmetic of `_advance` has surely reached it.
        following = start + (task.progress // self.progress_step + 1) * step_s + 1e-4
        if following < end:
            return following
        return end if time.time() < end or task.failure else None

    def cancel(self, task: MeshyTask) -> None:
        self._advance(task, time.time())
        if task.status in TERMINAL:
            return
        task.status, task.finished = CANCELED, time.time()
        self.balance += task.credits
        self.timeline.append((task.finished, CANCELED, task.id, self.in_queue()))
        self.changed.notify_all()

    # -- results ------------------------------------------------------------------------------------
    def start_generation(self, task: MeshyTask) -> None:
        """Make the result in the background from the moment the task is created, as a provider's GPUs
        would, so finishing a task is instant and never holds the lock."""
        def work() -> None:
            try:
                self._make_result(task)
            finally:
                with self.lock:
                    task.result_time = time.time()
                    task.result_ready.set()
                    self.changed.notify_all()

        threading.Thread(target=work, name=f"meshy-gen-{task.id[:8]}", daemon=True).start()

    def _store(self, task: MeshyTask, role: str, data: bytes, suffix: str) -> None:
        name = f"{task.id}_{role}.{suffix}"
        with self.lock:
            self.files[name] = data
            task.assets[role] = name

    def _source_files(self, task: MeshyTask) -> tuple[bytes, bytes | None]:
        """The model (and thumbnail) a refine, remesh or retexture works on."""
        if task.source:
            source = self.tasks[task.source]
            source.result_ready.wait(120)
            with self.lock:
                return self.files[source.assets["glb"]], self.files.get(source.assets.get("thumbnail", ""))
        url = str(task.request.get("model_url", ""))
        data = data_uri_bytes(url)
        if data is None:  # a link to this sandbox's own asset host is the one URL it can fetch
            with self.lock:
                data = self.files.get(urlsplit(url).path.rsplit("/", 1)[-1])
        if data is None or not data.startswith(b"glTF"):
            raise ValueError("model_url is not a GLB this sandbox can read (a data URI or one of its asset links)")
        return data, None

    def _make_result(self, task: MeshyTask) -> None:
        try:
            if task.type in (REFINE, RETEXTURE, REMESH):
                model, thumbnail = self._source_files(task)
                if task.type == REMESH:
                    model = with_extras(model, {k: task.request[k] for k in ("topology", "target_polycount")
                                                if k in task.request})
                else:
                    label, textures = texture_pass(task)
                    model = with_texture(model, textures["base_color"], label)
                    for role, png in textures.items():
                        self._store(task, role, png, "png")
                self._store(task, "glb", model, "glb")
                if thumbnail is not None:
                    self._store(task, "thumbnail", thumbnail, "png")
                return
            model, thumbnail = self.result_cache.made(self._cache_key(task), lambda: self._generate(task)) \
                if self.reuse_results else self._generate(task)
            self._store(task, "glb", model, "glb")
            self._store(task, "thumbnail", thumbnail, "png")
        except Exception as exc:  # a result that cannot be made is a failed task, as on the provider
            _log.info("sandbox task %s cannot be made: %s", task.id, exc)
            with self.lock:
                task.failure = task.failure or {"type": "invalid_input", "message": str(exc)[:200]}

    def _cache_key(self, task: MeshyTask) -> tuple[str, str, bool]:
        images = task.request.get("image_urls") or [task.request.get("image_url", "")]
        subject = str(task.request.get("prompt", "")) if task.type == PREVIEW else \
            hashlib.sha256(str(images[0]).encode()).hexdigest()
        return task.type, subject, bool(task.request.get("should_texture", True))

    def _generate(self, task: MeshyTask) -> tuple[bytes, bytes]:
        if task.type == PREVIEW:
            spec = JobSpec(kind=JobKind.TEXT, backend="local", mode=Mode.DRAFT, prompt=str(task.request["prompt"]),
                           seed=int(task.request.get("seed", 1) or 1))
        else:  # image and multi-image: the local engine reads the first image
            images = task.request.get("image_urls") or [task.request.get("image_url", "")]
            mode = Mode.PRODUCTION if task.request.get("should_texture", True) else Mode.DRAFT
            spec = image_spec(data_uri_bytes(str(images[0])), self.work / f"{task.id}_input.npy", mode)
        files = run_local_engine(spec, self.work / task.id, self.work / f"engine_{task.id}")
        return Path(files["model"]).read_bytes(), Path(files["preview"]).read_bytes()

    # -- answers ------------------------------------------------------------------------------------
    def task_json(self, task: MeshyTask, assets: str, *, full: bool = True) -> dict[str, Any]:
        """The task object (`full`), or the short frame streams send while a task runs; `assets` is the
        URL prefix of asset links."""
        if not full:
            return {"id": task.id, "progress": task.progress, "status": task.status}
        links = {role: self.signer.sign(assets, name, self.url_lifetime_s)
                 for role, name in task.assets.items()} if task.status == SUCCEEDED else {}
        texture_roles = ("base_color", "metallic", "normal", "roughness")
        body: dict[str, Any] = {
            "id": task.id, "type": task.type, "status": task.status, "progress": task.progress,
            "model_urls": {"glb": links["glb"]} if "glb" in links else {},
            "thumbnail_url": links.get("thumbnail", ""),
            "texture_urls": [{role: links[role] for role in texture_roles if role in links}]
            if "base_color" in links else [],
            "created_at": ms(task.created), "started_at": ms(task.started), "finished_at": ms(task.finished),
            "expires_at": ms(task.finished) + ASSETS_KEPT_MS if task.status == SUCCEEDED else 0,
            "preceding_tasks": sum(1 for t in self.tasks.values() if t.status == PENDING and t.created < task.created)
            if task.status == PENDING else 0,
            "task_error": dict(task.failure) if task.status == FAILED and task.failure else {"message": ""},
            "consumed_credits": task.credits if task.status in (PENDING, IN_PROGRESS, SUCCEEDED) else 0,
        }
        for name in ("mode", "prompt", "texture_prompt", "preview_task_id", "input_task_id", "ai_model",
                     "topology", "target_polycount", "enable_pbr", "texture_resolution", "text_style_prompt"):
            if name in task.request:
                body[name] = task.request[name]
        return body

    def visible(self, task_id: str, key: str, family: str) -> MeshyTask | None:
        """The task as `key` may see it under `family`: only its creator knows it exists."""
        task = self.tasks.get(task_id)
        ok = task is not None and task.owner == key and task.type in FAMILIES[family]
        return task if ok else None


def ms(moment: float) -> int:
    """Meshy's timestamps: epoch milliseconds, 0 when unset."""
    return int(moment * 1000) if moment else 0


def data_uri_bytes(uri: str) -> bytes | None:
    """The bytes of a base64 data URI, or None if `uri` is not one (a URL) or cannot be decoded."""
    if not uri.startswith("data:") or ";base64," not in uri:
        return None
    try:
        return base64.b64decode(uri.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        return None


def texture_pass(task: MeshyTask) -> tuple[str, dict[str, bytes]]:
    """A refine's or retexture's textures: what it was asked for (the prompt wins over an image, as on
    Meshy) and a small base colour PNG made from it (the image itself if Kiln encoded it), plus flat
    metallic, roughness and normal maps when PBR was asked for."""
    request = task.request
    prompt = str(request.get("texture_prompt") or request.get("text_style_prompt") or "")
    image = str(request.get("texture_image_url") or request.get("image_style_url") or "")
    label = prompt or ("image" if image else "default")
    base_color = read_png(data_uri_bytes(image)) if image and not prompt else None
    if base_color is not None:
        base_color = base_color[:256, :256, :3]
    else:
        tint = np.frombuffer(hashlib.sha256(label.encode()).digest()[:3], np.uint8)
        ramp = np.linspace(0.6, 1.0, 32)[:, None, None]
        base_color = np.ascontiguousarray((np.broadcast_to(tint, (32, 32, 3)) * ramp).astype(np.uint8))
    textures = {"base_color": encode_png(np.ascontiguousarray(base_color))}
    if request.get("enable_pbr"):
        for role, value in (("metallic", (0, 0, 0)), ("roughness", (200, 200, 200)), ("normal", (128, 128, 255))):
            textures[role] = encode_png(np.full((4, 4, 3), value, np.uint8))
    return label, textures


def credits_for(kind: str, request: dict[str, Any]) -> int:
    """The credit table of backends.md §2."""
    model = str(request.get("ai_model", "latest"))
    if kind == PREVIEW:
        if model == "meshy-5" or request.get("model_type") == "smart-topology" or model == "meshy-t2":
            return 5
        return 20 + (5 if request.get("ultra_mode") else 0)
    if kind == REFINE:
        return 15 if request.get("texture_resolution") == "8k" else 10
    if kind in (IMAGE, MULTI_IMAGE):
        textured = bool(request.get("should_texture", True))
        if model in ("meshy-4", "meshy-5"):
            return 15 if textured else 5
        return (35 if request.get("texture_resolution") == "8k" else 30) if textured else 20
    return {REMESH: 5, RETEXTURE: 10}[kind]


class RequestError(Exception):
    """A create refused with an HTTP status and Meshy's `{"message": …}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_polycount(request: dict[str, Any]) -> None:
    if request.get("topology", "triangle") not in ("quad", "triangle"):
        raise RequestError(400, "topology must be quad or triangle")
    polycount = request.get("target_polycount", 30000)
    if not isinstance(polycount, int) or not 100 <= polycount <= 300000:
        raise RequestError(400, "target_polycount must be an integer in 100..300000")


def check_prompt(request: dict[str, Any], name: str, required: bool) -> None:
    value = request.get(name)
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise RequestError(400, f"{name} is required")
    if len(value) > 600:
        raise RequestError(400, f"{name} must be at most 600 characters")


def check_image(uri: Any, name: str) -> None:
    if not isinstance(uri, str) or not uri:
        raise RequestError(400, f"{name} is required")
    if uri.startswith("data:"):
        if not uri.startswith(("data:image/png;base64,", "data:image/jpeg;base64,", "data:image/jpg;base64,")) \
                or data_uri_bytes(uri) is None:
            raise RequestError(400, f"{name} must be a jpg or png data URI (data:image/png;base64,…)")
    elif not uri.startswith(("http://", "https://")):
        raise RequestError(400, f"{name} must be a URL or a data URI")


def serve_asset(handler: QuietHandler, state: MeshyState, route: str) -> None:
    """Answer a download: signed links only, no key needed (any Authorization header is recorded)."""
    path = urlsplit(handler.path)
    with state.lock:
        state.asset_requests.append((path.path, handler.headers.get("Authorization", "")))
    name = path.path.removeprefix(route)
    if not path.path.startswith(route) or not state.signer.valid(name, parse_qs(path.query)):
        handler.send_empty(403)
        return
    with state.lock:
        data = state.files.get(name)
        cut = state.drop_downloads > 0
        state.drop_downloads -= int(cut)
    if data is None:
        handler.send_empty(404)
        return
    content_type = "model/gltf-binary" if name.endswith(".glb") else "image/png"
    if state.asset_encoding == "gzip" and "gzip" in handler.headers.get("Accept-Encoding", "") and not cut:
        packed = gzip.compress(data)
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(packed)))
        handler.end_headers()
        handler.wfile.write(packed)
        with state.lock:
            state.assets_compressed += 1
        return
    handler.send_file(data, content_type, cut=cut)


def make_handler(state: MeshyState, asset_base: Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    """The API's handler; `asset_base()` gives the asset host's base URL (known once it listens)."""

    class Handler(QuietHandler):
        @property
        def assets(self) -> str:
            """The URL prefix of asset links: the asset host's, or the API host's `asset_route`."""
            return self.base + state.asset_route if state.asset_route else asset_base() + ASSET_ROUTE

        def _error(self, status: int, message: str) -> None:
            wait = {"Retry-After": state.retry_after} if status == 429 and state.retry_after else None
            self.send_json(status, {"message": message}, wait)

        def _route(self, method: str) -> tuple[str, str, str]:
            """(family or route, task id or "", suffix "" | "stream"), and the request counted by route."""
            path = urlsplit(self.path).path.rstrip("/")
            family = next((f for f in FAMILIES if path == f or path.startswith(f + "/")), "")
            rest = path.removeprefix(family).strip("/").split("/") if family else [""]
            task_id, suffix = rest[0], "/".join(rest[1:])
            pattern = (family or path) + ("/:id" if task_id else "") + (f"/{suffix}" if suffix else "")
            with state.lock:
                state.route_counts[f"{method} {pattern}"] += 1
                state.requests_seen.append((method, path, self.headers.get("Authorization", "")))
            return family or path, task_id, suffix

        def _authorised(self) -> bool:
            key = self.bearer
            if not key.startswith("msy_") or (state.valid_keys is not None and key not in state.valid_keys):
                self._error(401, "Invalid API key")
                return False
            with state.lock:
                state._rate_window.per_s = state.rate_limit_per_s
                allowed = state._rate_window.allow(time.time())
                if not allowed:
                    state.refusals["RateLimitExceeded"] += 1
            if not allowed:
                self._error(429, "RateLimitExceeded")
            return allowed

        def do_GET(self) -> None:
            if state.asset_route and self.path.startswith(state.asset_route):
                serve_asset(self, state, state.asset_route)
                return
            family, task_id, suffix = self._route("GET")
            if not self._authorised():
                return
            if family == BALANCE_ROUTE:
                with state.lock:
                    self.send_json(200, {"balance": state.balance})
            elif family not in FAMILIES or suffix not in ("", "stream"):
                self._error(404, "Not found")
            elif suffix == "stream":
                self._stream(family, task_id)
            elif task_id and task_id in state.status_errors:
                self._error(state.status_errors[task_id], "Invalid task id")
            elif task_id:
                with state.lock:
                    state.advance()
                    task = state.visible(task_id, self.bearer, family)
                    if task is not None:
                        state.polls[task_id] += 1
                        body = state.task_json(task, self.assets)
                if task is None:
                    self._error(404, "Task not found")
                else:
                    self.send_json(200, body)
            else:
                self._list(family)

        def _list(self, family: str) -> None:
            query = parse_qs(urlsplit(self.path).query)
            try:
                page, size = int(query.get("page_num", ["1"])[0]), int(query.get("page_size", ["10"])[0])
            except ValueError:
                self._error(400, "page_num and page_size must be integers")
                return
            if not 1 <= size <= 50 or page < 1:
                self._error(400, "page_size must be in 1..50 and page_num at least 1")
                return
            newest_first = query.get("sort_by", ["-created_at"])[0] != "+created_at"
            with state.lock:
                state.advance()
                mine = sorted((t for t in state.tasks.values() if state.visible(t.id, self.bearer, family)),
                              key=lambda t: t.created, reverse=newest_first)
                body = [state.task_json(t, self.assets) for t in mine[(page - 1) * size : page * size]]
            self.send_json(200, body)

        def _stream(self, family: str, task_id: str) -> None:
            """Server-Sent Events until a terminal status (or the drop knob), chunked like a real server."""
            with state.lock:
                task = state.visible(task_id, self.bearer, family)
                drop_after = state.drop_streams.pop(0) if state.drop_streams else state.drop_every_stream_after
                state.streams_opened += 1
                state.open_streams += 1
                state.peak_open_streams = max(state.peak_open_streams, state.open_streams)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sent, last = 0, None
            try:
                if task is None:
                    self._event("error", {"status_code": 404, "message": "Task not found"})
                    self._end_chunks()
                    return
                while True:
                    with state.lock:
                        gone = self._wait_for_change(task, last)
                        terminal = task.status in TERMINAL
                        last = (task.status, task.progress)
                        body = state.task_json(task, self.assets, full=terminal)
                    if gone:
                        self._event("error", {"status_code": 404, "message": "Task not found"})
                        self._end_chunks()
                        return
                    if drop_after and sent >= drop_after:
                        with state.lock:
                            state.streams_dropped += 1
                        self.close_connection = True  # gone mid-stream: no terminal event, no last chunk
                        return
                    self._event("message", body)
                    sent += 1
                    if terminal:
                        self._end_chunks()
                        return
            finally:
                with state.lock:
                    state.open_streams -= 1

        def _wait_for_change(self, task: MeshyTask, last: tuple[str, int] | None) -> bool:
            """Wait (the lock held) until the task's status or progress differs from `last`; True if the
            task was deleted meanwhile."""
            while True:
                if not state.serving:
                    raise ConnectionAbortedError("the sandbox stopped")  # an OSError: ends the stream quietly
                if task.id not in state.tasks:
                    return True
                state._advance(task, time.time())
                if (task.status, task.progress) != last:
                    return False
                following = state.next_change(task)
                state.changed.wait(None if following is None else max(0.0, following - time.time()))

        def _event(self, name: str, data: dict[str, Any]) -> None:
            end = state.sse_line_end
            frame = f"event: {name}{end}data: {json.dumps(data)}{end}{end}".encode()
            self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            self.wfile.flush()
            with state.lock:
                state.stream_events += 1

        def _end_chunks(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def do_DELETE(self) -> None:
            family, task_id, suffix = self._route("DELETE")
            if not self._authorised():
                return
            with state.lock:
                task = state.visible(task_id, self.bearer, family) if family in FAMILIES and not suffix else None
                if task is not None:
                    state._advance(task, time.time())
                    if task.status in TERMINAL or task.type == REMESH:
                        state.cancel(task)  # a remesh cannot be cancelled: it is refunded and deleted
                        del state.tasks[task.id]
                        for name in task.assets.values():
                            state.files.pop(name, None)
                        state.changed.notify_all()
                    else:
                        state.cancel(task)
            if task is None:
                self._error(404, "Task not found")
            else:
                self.send_json(200, {})

        def do_POST(self) -> None:
            family, task_id, suffix = self._route("POST")
            body = self.read_body()
            if not self._authorised():
                return
            if family not in FAMILIES or task_id or suffix:
                self._error(404, "Not found")
                return
            try:
                request = json.loads(body or b"{}")
                if not isinstance(request, dict):
                    raise RequestError(400, "the body must be a JSON object")
                with state.lock:
                    state.advance()
                    task = self._create(family, request)
            except json.JSONDecodeError:
                self._error(400, "Invalid JSON")
                return
            except RequestError as exc:
                self._error(exc.status, str(exc))
                return
            if state.make_results and task.failure is None:
                state.start_generation(task)
            self.send_json(202, {"result": task.id})

        def _create(self, family: str, request: dict[str, Any]) -> MeshyTask:
            """Check, charge and make the task (the lock held), or raise RequestError."""
            error = state.create_errors.pop(0) if state.create_errors else 0
            if error:  # 0: this create goes through
                status, message = error if isinstance(error, tuple) else (error, f"sandbox error {error}")
                raise RequestError(status, message)
            kind, source = self._validate(family, request)
            if state.in_queue() >= state.queue_limit:
                state.refusals["NoMoreConcurrentTasks"] += 1
                state.timeline.append((time.time(), "refused", "", state.in_queue()))
                raise RequestError(429, "NoMoreConcurrentTasks")
            credits = 0 if self.bearer == TEST_MODE_KEY else credits_for(kind, request)
            if state.balance < credits:
                raise RequestError(402, "Insufficient credits")
            state.balance -= credits
            failure = (state.task_failures.pop(0) or None) if state.task_failures else next(
                ({"type": kind_, "message": f"sandbox {kind_}"} for kind_, rate in state.failure_rates.items()
                 if random.random() < rate), None)
            duration = state.latency_s.get(kind, 1.0)
            task = MeshyTask(id=str(uuid.uuid4()), type=kind, request=request, owner=self.bearer,
                             created=time.time(), duration=duration, pending_s=duration * state.pending_fraction,
                             credits=credits, failure=failure, source=source)
            state.tasks[task.id] = task
            state.timeline.append((task.created, "create", task.id, state.in_queue()))
            return task

        def _validate(self, family: str, request: dict[str, Any]) -> tuple[str, str]:
            """The task type and source task id of a create, or RequestError."""
            if "ai_model" in request and request["ai_model"] not in (*AI_MODELS, "meshy-t2"):
                raise RequestError(400, f"ai_model must be one of {', '.join(AI_MODELS)}")
            if family == "/openapi/v2/text-to-3d":
                mode = request.get("mode")
                if mode == "preview":
                    check_prompt(request, "prompt", True)
                    check_polycount(request)
                    return PREVIEW, ""
                if mode != "refine":
                    raise RequestError(400, "mode must be preview or refine")
                if not request.get("preview_task_id"):
                    raise RequestError(400, "preview_task_id is required")
                preview = state.visible(str(request["preview_task_id"]), self.bearer, family)
                if preview is None or preview.type != PREVIEW:
                    raise RequestError(400, "preview_task_id is not a preview task of this account")
                if preview.status != SUCCEEDED:
                    raise RequestError(400, "the preview task has not SUCCEEDED")
                check_prompt(request, "texture_prompt", False)
                if request.get("texture_image_url") is not None:
                    check_image(request["texture_image_url"], "texture_image_url")
                if request.get("texture_resolution", "2k") not in ("2k", "4k", "8k"):
                    raise RequestError(400, "texture_resolution must be 2k, 4k or 8k")
                return REFINE, preview.id
            kind = FAMILIES[family][0]
            if kind == IMAGE:
                if not request.get("input_task_id"):
                    check_image(request.get("image_url"), "image_url")
            elif kind == MULTI_IMAGE:
                images = request.get("image_urls")
                if not isinstance(images, list) or not 1 <= len(images) <= 4:
                    raise RequestError(400, "image_urls must hold 1 to 4 images")
                for image in images:
                    check_image(image, "image_urls")
            if kind in (IMAGE, MULTI_IMAGE):
                check_polycount(request)
                return kind, ""
            source = str(request.get("input_task_id") or "")
            if source:
                found = state.tasks.get(source)
                if found is None or found.owner != self.bearer or found.type not in (PREVIEW, REFINE, IMAGE,
                                                                                     MULTI_IMAGE, REMESH, RETEXTURE):
                    raise RequestError(400, "input_task_id is not a task of this account")
                if found.status != SUCCEEDED:
                    raise RequestError(400, "the input task has not SUCCEEDED")
            elif not str(request.get("model_url") or ""):
                raise RequestError(400, "input_task_id or model_url is required")
            if kind == REMESH:
                check_polycount(request)
            else:
                check_prompt(request, "text_style_prompt", False)
                if not request.get("text_style_prompt"):
                    check_image(request.get("image_style_url"), "text_style_prompt or image_style_url")
            return kind, source

    return Handler


def make_asset_handler(state: MeshyState) -> type[BaseHTTPRequestHandler]:
    class AssetHandler(QuietHandler):
        def do_GET(self) -> None:
            serve_asset(self, state, ASSET_ROUTE)

    return AssetHandler


class MeshySandbox(BackgroundServer):
    """`with MeshySandbox(MeshyState(...)) as sandbox:` sandbox.url (API), sandbox.asset_url, sandbox.state."""

    def __init__(self, state: MeshyState | None = None, port: int = 0, asset_port: int = 0) -> None:
        self.state = state or MeshyState()
        self.assets = SandboxServer(("127.0.0.1", asset_port), make_asset_handler(self.state))
        super().__init__(make_handler(self.state, lambda: self.asset_url), port, "meshy-sandbox")
        self.servers.append(self.assets)

    @property
    def asset_url(self) -> str:
        return self.assets.url

    def start(self) -> None:
        self.state.serving = True
        super().start()

    def stop(self) -> None:
        with self.state.lock:
            self.state.serving = False
            self.state.changed.notify_all()  # open streams end with the provider
        super().stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Meshy API sandbox on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--asset-port", type=int, default=0, help="port of the separate asset host")
    parser.add_argument("--latency", type=float, default=1.0,
                        help="seconds for a preview (refine, image and multi-image: twice; remesh: half)")
    parser.add_argument("--queue-limit", type=int, default=10, help="queued tasks before NoMoreConcurrentTasks")
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second before RateLimitExceeded")
    parser.add_argument("--fail", action="append", default=[],
                        help="TYPE=RATE: tasks fail with this task_error type, e.g. timeout=0.1 (repeatable)")
    parser.add_argument("--drop-streams-after", type=int, default=0, help="close every SSE stream after K events")
    parser.add_argument("--url-lifetime", type=float, default=300.0)
    parser.add_argument("--balance", type=int, default=1000)
    args = parser.parse_args()
    latency = args.latency
    state = MeshyState(latency_s={PREVIEW: latency, REFINE: 2 * latency, IMAGE: 2 * latency,
                                  MULTI_IMAGE: 2 * latency, REMESH: latency / 2, RETEXTURE: latency},
                       queue_limit=args.queue_limit, rate_limit_per_s=args.rate, balance=args.balance,
                       failure_rates={t: float(r) for t, r in (f.split("=") for f in args.fail)},
                       drop_every_stream_after=args.drop_streams_after, url_lifetime_s=args.url_lifetime)
    MeshySandbox(state, args.port, args.asset_port).serve_from_command_line()


if __name__ == "__main__":
    main()
