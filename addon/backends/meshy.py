"""Meshy backend: text-to-3d preview and refine, image and multi-image to 3d, remesh and retexture, with
live status pushed over Server-Sent Events.

The protocol is Meshy's public OpenAPI as `shared/reference/backends.md` §2 describes it. Its modes map
Kiln's directly: Draft is a fast preview; Production is a preview, then a refine of it (two tasks of one
job, both journaled); Promote on a finished Meshy draft is the refine of that very preview.

Task ids. Meshy's ids are per route family (`/openapi/v2/text-to-3d/<id>` ≠ `/openapi/v1/image-to-3d/<id>`),
so the id Kiln journals is `<family>:<Meshy id>` ("text-to-3d:0193…"): a restarted Kiln knows where to
ask about every task. `meshy_id` strips the family where Meshy wants its own id (a refine's
`preview_task_id`, a remesh's `input_task_id`).

Status. The scheduler reads each running task's `/stream` (Capabilities.streams) on its own stream
threads; `watch` is the poll (`GET /:id` per task) for tasks without a stream. Creates are sent again
only after a 429: `NoMoreConcurrentTasks` (the queue is full: wait for a slot, not an error, and the plan
concurrency drops as for Tripo's refusals) or `RateLimitExceeded` (back off). Any other 4xx refused the
create and charged nothing; a 5xx says nothing certain (the engine makes the job uncertain).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import requests

from ..http import HttpClient, retry_after
from ..imaging.png import encode_png
from ..jobs import PREVIEW_TASK_ID, THEME_PROMPT, JobKind, JobSpec, Mode
from .base import (
    Backend,
    BackendError,
    Capabilities,
    ConcurrencyRefused,
    InputLimits,
    TaskStatus,
    TaskUpdate,
    unknown_task_message,
)

_log = logging.getLogger(__name__)

API_ROUTES = ("/openapi/",)
"""Where the key goes. Result links (`model_urls`, `thumbnail_url`) are plain downloads, sent without it."""
FAMILIES: dict[str, str] = {
    "text-to-3d": "/openapi/v2/text-to-3d",
    "image-to-3d": "/openapi/v1/image-to-3d",
    "multi-image-to-3d": "/openapi/v1/multi-image-to-3d",
    "remesh": "/openapi/v1/remesh",
    "retexture": "/openapi/v1/retexture",
}
MAX_DOWNLOAD_BYTES = 300 * 1024 * 1024
MAX_IMAGES = 4
PRO_QUEUE_LIMIT = 10
"""Queued tasks a Pro account may hold (Studio 20, Enterprise 50+): the plan concurrency preference or
`[backends.meshy] concurrency` sets the account's own figure."""
STREAM_READ_TIMEOUT_S = 60.0
"""Silence tolerated on a status stream before it counts as dropped (Meshy sends a frame per progress step)."""

STATUSES: dict[str, TaskStatus] = {
    "PENDING": TaskStatus.QUEUED, "IN_PROGRESS": TaskStatus.RUNNING, "SUCCEEDED": TaskStatus.SUCCESS,
    "FAILED": TaskStatus.FAILED, "CANCELED": TaskStatus.CANCELLED, "CANCELLED": TaskStatus.CANCELLED,
}

# HTTP status → (message for the artist, retryable). 429 is read from its message (two kinds).
HTTP_ERRORS: dict[int, tuple[str, bool]] = {
    400: ("Meshy rejected the request", False),
    401: ("API key rejected: check your Meshy key (msy_…) in Kiln's preferences", False),
    402: ("not enough Meshy credits", False),
    403: ("Meshy forbids this request for your account", False),
    404: ("Meshy does not know this task (wrong key or expired)", False),
    422: ("Meshy could not process this input", False),
}
TASK_ERRORS: dict[str, str] = {
    "invalid_input": "Meshy could not use the input",
    "timeout": "the task timed out on Meshy",
    "service_unavailable": "Meshy's service was unavailable",
    "server_error": "Meshy had a server error",
}

# Credits per task (backends.md §2, "Credits").
PREVIEW_CREDITS = {"fast": 5, "standard": 20}
ULTRA_CREDITS = 5
REFINE_CREDITS = {"standard": 10, "8k": 15}
IMAGE_CREDITS = {"plain": 20, "textured": 30, "8k": 35, "old_plain": 5, "old_textured": 15}
REMESH_CREDITS = 5
RETEXTURE_CREDITS = 10
FAST_MODELS = frozenset({"meshy-5"})
"""Models billed as the cheap preview (5 credits); so is `model_type` smart-topology."""

DRAFT_MODEL = "meshy-5"
PRODUCTION_MODEL = "latest"


ONE_TASK_ERRORS = frozenset({"400", "422", "bad_response"})
"""Answers to one task's status request that say nothing about the other tasks: a request Meshy calls
malformed for that id, or a body Kiln cannot read."""


def meshy_id(task_id: str) -> str:
    """Meshy's own id from Kiln's `<family>:<id>` (an id without a family is taken as it is)."""
    return task_id.split(":", 1)[1] if ":" in task_id else task_id


def _family_route(task_id: str) -> str:
    family = task_id.split(":", 1)[0] if ":" in task_id else "text-to-3d"
    route = FAMILIES.get(family)
    if route is None:
        raise BackendError("unknown_task", unknown_task_message(task_id))
    return f"{route}/{meshy_id(task_id)}"


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number and abs(number) != float("inf") else 0.0


def error_from(response: requests.Response) -> BackendError:
    """Meshy's `{"message": …}` error answer as a BackendError with a clear message. A 4xx refused the
    request (nothing created, nothing charged); a 5xx leaves a create's outcome unknown."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str(body.get("message", "") if isinstance(body, dict) else "")[:300]
    status = response.status_code
    if status == 429:
        if "NoMoreConcurrentTasks" in message:
            return ConcurrencyRefused("Meshy's task queue is full; waiting for a slot",
                                      retry_after_s=retry_after(response))
        return BackendError("rate_limited", "Meshy's request-rate limit was hit; slowing down", retryable=True,
                            nothing_created=True, retry_after_s=retry_after(response))
    known = HTTP_ERRORS.get(status)
    if known is not None:
        text = known[0] + (f": {message}" if message and status not in (401,) else "")
        return BackendError(str(status), text, retryable=known[1], nothing_created=True)
    if status >= 500:
        return BackendError(str(status), f"Meshy had a server error (HTTP {status})", retryable=True)
    return BackendError(str(status), f"Meshy answered HTTP {status}: {message or 'no details'}",
                        nothing_created=400 <= status < 500)


def task_error_message(task: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of a FAILED task's `task_error`."""
    error = task.get("task_error")
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "task_failed")
    detail = str(error.get("message") or "")[:300]
    text = TASK_ERRORS.get(kind, "Meshy failed this task")
    return kind, f"{text}: {detail}" if detail else text


def data_uri(path: str) -> str:
    """An input image as a `data:` URI (Meshy takes jpg/png). Kiln's prepared arrays (.npy) are
    encoded as PNG; PNG and JPEG files go as they are."""
    source = Path(path)
    if source.suffix.lower() == ".npy":
        data, mime = encode_png(np.load(source)), "image/png"
    else:
        mime_or_none = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(source.suffix.lower())
        if mime_or_none is None:
            raise BackendError("unsupported_input", f"Meshy takes PNG or JPEG images, not '{source.name}'",
                               nothing_created=True)
        data, mime = source.read_bytes(), mime_or_none
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class MeshyBackend(Backend):
    """Built through `registry.build`, which resolves the key and endpoint (environment, preferences)."""

    name = "meshy"
    capabilities = Capabilities(
        cancel=False, reconcile=False, durable_tasks=True,
        concurrency={"tasks": PRO_QUEUE_LIMIT},
        typical_latency_s={},  # Meshy's priors are in scheduling/eta.py, TASK_PRIORS_S
        paced_polling=True,
        streams=50,  # Meshy documents no limit on open streams; SchedulerConfig.max_streams bounds Kiln's
        # A longer prompt is refused before the click (it was cut at 600 here); Meshy has no negative prompt.
        limits=InputLimits(prompt_max_chars=600, negative_prompt_max_chars=0),
    )

    def __init__(self, api_key: str, base_url: str, *, online: Callable[[], bool] = lambda: True,
                 timeout_s: float = 30.0) -> None:
        if not api_key:
            raise BackendError("no_key", "no Meshy API key")
        self.http = HttpClient(base_url, api_key, key_routes=API_ROUTES, timeout_s=timeout_s, online=online)
        self._lock = threading.Lock()
        self._tasks: dict[str, dict[str, Any]] = {}
        """Task id → its last full task object (a SUCCEEDED one carries the result links)."""

    # ------------------------------------------------------------------ helpers
    def _call(self, method: str, path: str, *, json_body: Any = None) -> Any:
        response = self.http.request(method, path, json=json_body)
        if response.status_code >= 400:
            raise error_from(response)
        try:
            return response.json()
        except ValueError:
            raise BackendError("bad_response", "Meshy sent an answer Kiln cannot read", retryable=True) from None

    def _preview_fields(self, spec: JobSpec) -> dict[str, Any]:
        """The options a preview (and an image route) shares: model, topology and polycount. A game
        target's face budget becomes the polycount."""
        params = spec.params_dict
        fields: dict[str, Any] = {"ai_model": str(params.get("ai_model", PRODUCTION_MODEL)),
                                  "target_formats": ["glb"]}
        polycount = params.get("target_polycount") or params.get("face_limit")
        if polycount:
            fields["target_polycount"] = max(100, min(300000, int(str(polycount))))
            fields["should_remesh"] = True
        for key in ("topology", "model_type", "should_remesh", "pose_mode", "ultra_mode", "origin_at"):
            if key in params:
                fields[key] = params[key]
        if spec.seed:
            fields["seed"] = spec.seed
        return fields

    def _refine_fields(self, spec: JobSpec, preview_task_id: str) -> dict[str, Any]:
        params = spec.params_dict
        fields: dict[str, Any] = {"mode": "refine", "preview_task_id": meshy_id(preview_task_id),
                                  "enable_pbr": bool(params.get("enable_pbr", True)),
                                  "texture_resolution": str(params.get("texture_resolution", "2k")),
                                  "target_formats": ["glb"]}
        texture_prompt = str(params.get(THEME_PROMPT) or params.get("texture_prompt") or "")
        if texture_prompt:
            fields["texture_prompt"] = texture_prompt[:600]
        return fields

    @staticmethod
    def _image_source(spec: JobSpec, number: int) -> str:
        prepared = spec.params_dict.get("prepared_images", ())  # modes.PREPARED_IMAGES: Kiln's checked copy
        return str(prepared[number]) if number < len(prepared) else spec.image_paths[number]

    def request_fields(self, spec: JobSpec, step: int = 0, previous_task_id: str = "") -> tuple[str, dict[str, Any]]:
        """(Task family, JSON body) of the create for step `step` of `spec`."""
        params = spec.params_dict
        steps = self.steps(spec)
        if steps[step] == "refine":
            preview = previous_task_id or str(params.get(PREVIEW_TASK_ID) or "")
            if not preview:
                raise BackendError("unsupported_input", "a Meshy refine needs a finished preview",
                                   nothing_created=True)
            return "text-to-3d", self._refine_fields(spec, preview)
        if spec.kind is JobKind.TEXT:
            fields = {"mode": "preview", "prompt": spec.prompt[:600], **self._preview_fields(spec)}
            return "text-to-3d", fields
        if spec.kind in (JobKind.IMAGE, JobKind.MULTIVIEW):
            fields = self._preview_fields(spec)
            textured = spec.mode is Mode.PRODUCTION
            fields["should_texture"] = textured
            if textured:
                fields["enable_pbr"] = bool(params.get("enable_pbr", True))
                if params.get(THEME_PROMPT):
                    fields["texture_prompt"] = str(params[THEME_PROMPT])[:600]
            count = len(spec.image_paths)
            if spec.kind is JobKind.IMAGE or count == 1:
                return "image-to-3d", {**fields, "image_url": data_uri(self._image_source(spec, 0))}
            if count > MAX_IMAGES:
                raise BackendError("unsupported_input", f"Meshy takes 1 to {MAX_IMAGES} images, not {count}",
                                   nothing_created=True)
            return "multi-image-to-3d", {**fields, "image_urls": [data_uri(self._image_source(spec, n))
                                                                  for n in range(count)]}
        source = str(params.get("original_task_id") or "")
        if spec.kind is JobKind.TEXTURE:
            prompt = str(params.get(THEME_PROMPT) or params.get("texture_prompt") or spec.prompt)
            return "retexture", {"input_task_id": meshy_id(source), "text_style_prompt": prompt[:600],
                                 "enable_pbr": bool(params.get("enable_pbr", True))}
        if spec.kind is JobKind.REFINE and params.get("operation") == "remesh":
            fields = {"input_task_id": meshy_id(source), "topology": str(params.get("topology", "triangle")),
                      "target_polycount": int(str(params.get("target_polycount") or params.get("face_limit")
                                                  or 30000)),
                      "target_formats": ["glb"]}
            return "remesh", fields
        raise BackendError("unsupported_input", f"Kiln's Meshy backend cannot do {spec.kind.value} jobs",
                           nothing_created=True)

    # ------------------------------------------------------------------ Backend interface
    def steps(self, spec: JobSpec) -> tuple[str, ...]:
        """Draft: one preview. Production text: preview then refine of it. Promote (a preview id given):
        only the refine. Images, remesh, retexture: one task."""
        if spec.kind is JobKind.TEXT and spec.mode is Mode.PRODUCTION:
            return ("refine",) if spec.params_dict.get(PREVIEW_TASK_ID) else ("preview", "refine")
        if spec.kind is JobKind.TEXTURE:
            return ("retexture",)
        if spec.kind is JobKind.REFINE:
            return ("remesh",)
        return (spec.mode.value,)

    def estimate_credits(self, spec: JobSpec) -> float:
        return float(sum(self._step_credits(spec, step) for step in self.steps(spec)))

    def _step_credits(self, spec: JobSpec, step: str) -> int:
        params = spec.params_dict
        model = str(params.get("ai_model", PRODUCTION_MODEL))
        fast = model in FAST_MODELS or params.get("model_type") == "smart-topology"
        if step == "refine":
            return REFINE_CREDITS["8k" if params.get("texture_resolution") == "8k" else "standard"]
        if step == "retexture":
            return RETEXTURE_CREDITS
        if step == "remesh":
            return REMESH_CREDITS
        if spec.kind in (JobKind.IMAGE, JobKind.MULTIVIEW):
            textured = spec.mode is Mode.PRODUCTION
            if fast:
                return IMAGE_CREDITS["old_textured" if textured else "old_plain"]
            if textured and params.get("texture_resolution") == "8k":
                return IMAGE_CREDITS["8k"]
            return IMAGE_CREDITS["textured" if textured else "plain"]
        return PREVIEW_CREDITS["fast" if fast else "standard"] + (ULTRA_CREDITS if params.get("ultra_mode") else 0)

    def submit(self, spec: JobSpec, client_ref: str) -> str:
        return self._create(spec, *self.request_fields(spec))

    def submit_step(self, spec: JobSpec, step: int, previous_task_id: str, client_ref: str) -> str:
        if step != 1 or len(self.steps(spec)) < 2:
            raise BackendError("unsupported_input", f"Meshy has no step {step} for this job")
        with self._lock:
            self._tasks.pop(previous_task_id, None)  # the preview is refined, never downloaded: forget its links
        return self._create(spec, *self.request_fields(spec, step, previous_task_id))

    def _create(self, spec: JobSpec, family: str, fields: dict[str, Any]) -> str:
        try:
            data = self._call("POST", FAMILIES[family], json_body=fields)
        except BackendError as exc:
            if exc.code == "402":
                raise self.not_enough_credits(exc.code, spec) from None
            raise
        task_id = data.get("result") if isinstance(data, dict) else None
        if not task_id:
            raise BackendError("bad_response", "Meshy accepted the create but sent no task id")
        return f"{family}:{task_id}"

    def verify(self) -> None:
        self.balance()

    def balance(self) -> float | None:
        data = self._call("GET", "/openapi/v1/balance")
        return _number(data.get("balance") if isinstance(data, dict) else None)

    def task_update(self, task_id: str, task: Any) -> TaskUpdate:
        """One task object (polled or pushed), read defensively: what cannot be read is UNKNOWN."""
        if not isinstance(task, dict):
            return TaskUpdate(task_id, TaskStatus.UNKNOWN, error_message="an unreadable task object")
        raw = task.get("status")
        status = STATUSES.get(str(raw).upper(), TaskStatus.UNKNOWN) if isinstance(raw, str) else TaskStatus.UNKNOWN
        progress = max(0.0, min(1.0, _number(task.get("progress")) / 100.0))
        if status is TaskStatus.UNKNOWN:
            return TaskUpdate(task_id, status, error_message=f"it reports status {raw!r}")
        if status is TaskStatus.SUCCESS:
            with self._lock:
                self._tasks[task_id] = task
            started, finished = _number(task.get("created_at")), _number(task.get("finished_at"))
            duration = (finished - started) / 1000.0 if started > 0 and finished >= started else None
            return TaskUpdate(task_id, status, 1.0, _number(task.get("consumed_credits")), duration_s=duration)
        if status is TaskStatus.FAILED:
            code, message = task_error_message(task)
            return TaskUpdate(task_id, status, progress, 0.0, code, message)  # a failed task costs nothing
        return TaskUpdate(task_id, status, progress)

    def watch(self, task_ids: Sequence[str], timeout_s: float) -> list[TaskUpdate]:
        """The poll: one `GET /:id` per task (Meshy has no batched status), for tasks without a stream."""
        updates = []
        for task_id in task_ids:
            try:
                updates.append(self.task_update(task_id, self._call("GET", _family_route(task_id))))
            except BackendError as exc:
                if exc.code in ("404", "unknown_task"):
                    updates.append(TaskUpdate(task_id, TaskStatus.MISSING))
                elif exc.code in ONE_TASK_ERRORS:
                    # One odd task never makes the round raise (the Backend.watch contract): the others'
                    # finishes are still heard, and this one is unreadable for now.
                    updates.append(TaskUpdate(task_id, TaskStatus.UNKNOWN, error_message=exc.message))
                else:
                    raise  # the provider could not be asked at all (key, rate limit, outage)
        return updates

    def stream(self, task_id: str) -> Iterator[TaskUpdate]:
        """The task's `/stream`: `message` events carry the status (the terminal one the whole task
        object), an `error` event ends it (404: the task is missing). Stops at a terminal status."""
        try:
            path = f"{_family_route(task_id)}/stream"
        except BackendError:
            yield TaskUpdate(task_id, TaskStatus.MISSING)
            return
        for event in self.http.events(path, error_from, read_timeout_s=STREAM_READ_TIMEOUT_S):
            try:
                payload = json.loads(event.data)
            except ValueError:
                continue  # a keep-alive or a line Kiln cannot read; the next frame tells
            if event.event == "error":
                if isinstance(payload, dict) and _number(payload.get("status_code")) == 404:
                    yield TaskUpdate(task_id, TaskStatus.MISSING)
                    return
                message = payload.get("message", "") if isinstance(payload, dict) else ""
                raise BackendError("stream_error", f"Meshy's status stream failed: {message}", retryable=True)
            if event.event != "message":
                continue
            update = self.task_update(task_id, payload)
            yield update
            if update.status.is_terminal:
                return

    def _fresh(self, task_id: str) -> dict[str, Any]:
        try:
            task = self._call("GET", _family_route(task_id))
        except BackendError as exc:
            if exc.code == "404":
                raise BackendError("unknown_task", unknown_task_message(task_id)) from None
            raise
        if not isinstance(task, dict):
            raise BackendError("bad_response", "Meshy answered without the result's links", retryable=True)
        with self._lock:
            self._tasks[task_id] = task
        return task

    def download(self, task_id: str, dest_dir: Path) -> dict[str, str]:
        """The GLB and the thumbnail (the preview), straight from the links the finished task carried;
        links that expired are asked for again once. Never with the key (HttpClient.download)."""
        with self._lock:
            task = self._tasks.get(task_id)
        task = task or self._fresh(task_id)
        files: dict[str, str] = {}
        for role, suffix in (("model", ".glb"), ("preview", ".png")):
            for attempt in range(2):
                urls = task.get("model_urls")
                url = (urls.get("glb") if isinstance(urls, dict) else None) if role == "model" \
                    else task.get("thumbnail_url")
                if not url:
                    break
                target = dest_dir / f"{role}{suffix}"
                try:
                    self.http.download(str(url), target, max_bytes=MAX_DOWNLOAD_BYTES)
                    files[role] = str(target)
                    break
                except BackendError as exc:
                    if exc.code == "url_expired" and attempt == 0:
                        task = self._fresh(task_id)
                        continue
                    if role == "preview":
                        _log.warning("meshy: thumbnail of %s not downloaded (%s)", task_id, exc.message)
                        break
                    raise
        if "model" not in files:
            raise BackendError("no_model", "Meshy's task succeeded but returned no GLB link")
        with self._lock:
            self._tasks.pop(task_id, None)
        return files

    def describe(self, spec: JobSpec) -> dict[str, Any]:
        return {"model_version": str(spec.params_dict.get("ai_model", PRODUCTION_MODEL))}

    def close(self) -> None:
        self.http.close()
