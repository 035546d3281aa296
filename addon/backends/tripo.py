"""Tripo (API v3) backend: text, image and multiview to model, batched polling, fresh URLs on expiry.

The protocol is Tripo's public API v3 as its documentation and the official `tripo3d` SDK send it
(field names: FIELD_NAMES below). v2 was shut down on 2026-10-31, so only v3 routes are used. Status is
polled for all in-flight tasks with one `POST /v3/tasks/list`, sent when the earliest task's predicted
finish is due (scheduling/eta.py). Creates are re-sent only on code 2000 (concurrency) and
1007 (rate limit): the provider guarantees those created and charged nothing.
"""

from __future__ import annotations

import datetime
import logging
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..http import HttpClient, image_part, retry_after
from ..jobs import THEME_PROMPT, JobKind, JobSpec, Mode
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

DEFAULT_MODEL = "v3.0-20250812"
P1_MODEL = "P1-20260311"
LIST_BATCH = 100
MAX_DOWNLOAD_BYTES = 300 * 1024 * 1024
UPLOAD_LIMIT_BYTES = 20 * 1024 * 1024
API_ROUTES = ("/v3/",)
"""Where the key goes (JSON and upload routes). Result links are plain file downloads, sent without it
even when the API host serves them."""

# code → (message for the artist, retryable)
ERRORS: dict[int, tuple[str, bool]] = {
    1000: ("Tripo had a server error", True),
    1001: ("Tripo had a server error", True),
    1002: ("API key rejected: check your Tripo key (tsk_…) in Kiln's preferences", False),
    1003: ("Tripo could not read the request (malformed body)", False),
    1004: ("Tripo rejected a parameter of the request", False),
    1005: ("Tripo forbids this request for your account", False),
    1007: ("Tripo's request-rate limit was hit; slowing down", True),
    2000: ("Tripo's concurrency limit is reached; waiting for a free slot", True),
    2001: ("Tripo does not know this task (wrong key or expired)", False),
    2002: ("Tripo does not support this task type", False),
    2003: ("the uploaded file is empty", False),
    2004: ("the uploaded file type is not supported (use PNG, JPEG or WebP)", False),
    2006: ("the source task is not valid for this operation", False),
    2007: ("the source task has not succeeded", False),
    2008: ("prompt or image refused by content policy", False),
    2010: ("not enough credits", False),
    2014: ("Tripo's content audit service failed", True),
    2015: ("this model version is deprecated", False),
    2018: ("the model is too complex to process", False),
    2019: ("Tripo cannot find the uploaded file", False),
}

# Credits (no texture, textured) per task, and add-ons (backends.md §1d).
CREDITS = {"text": (10, 20), "image": (20, 30), "multiview": (20, 30), "p1_text": (30, 40), "p1_image": (40, 50)}
ADDON_CREDITS = {"detailed_texture": 10, "quad": 5, "smart_low_poly": 10}
POST_CREDITS: dict[str, Any] = {"texture": {"standard": 10, "detailed": 20, "extreme": 30}, "smart_low_poly": 30}

# What Draft and Production mean on Tripo (also in modes.MODE_PARAMS for the UI and batches).
MODE_DEFAULTS: dict[Mode, dict[str, Any]] = {
    Mode.DRAFT: {"texture": False, "pbr": False, "face_limit": 10000},
    Mode.PRODUCTION: {"texture": True, "pbr": True, "texture_quality": "standard"},
}


# Every status form Tripo has used (v3's five, the v2 SDK's banned/expired/unknown), lower-cased. banned
# and expired are failures with the codes the guide gives them; anything else is UNKNOWN, never an error.
STATUSES: dict[str, tuple[TaskStatus, int]] = {
    "queued": (TaskStatus.QUEUED, 0), "running": (TaskStatus.RUNNING, 0), "success": (TaskStatus.SUCCESS, 0),
    "failed": (TaskStatus.FAILED, 0), "cancelled": (TaskStatus.CANCELLED, 0), "canceled": (TaskStatus.CANCELLED, 0),
    "banned": (TaskStatus.FAILED, 2008), "expired": (TaskStatus.FAILED, 2018), "unknown": (TaskStatus.UNKNOWN, 0),
}
STATUS_MESSAGES = {
    "banned": "refused by moderation: Tripo banned this task's prompt or image (not retried)",
    "expired": "the task expired on Tripo before it finished",
}

VIEW_SLOTS = ("front", "left", "back", "right")

# Kiln's request fields against the current `tripo3d` SDK's (1.0.0, client.py), per route: Kiln's
# meaning → the field the SDK sends. `request_fields` builds every body with these names; a test
# compares them with the SDK's own bodies when the SDK is installed, and with this table always.
FIELD_NAMES: dict[str, dict[str, str]] = {
    "/v3/generation/text-to-model": {"prompt": "prompt", "model version": "model", "seed": "model_seed"},
    "/v3/generation/image-to-model": {"image (file token)": "input", "model version": "model",
                                      "seed": "model_seed"},
    "/v3/generation/multiview-to-model": {"views [front, left, back, right]": "inputs",
                                          "model version": "model", "seed": "model_seed"},
    "/v3/models/texture": {"model task": "input", "model version": "model", "texture prompt": "texture_prompt",
                           "seed": "texture_seed"},
    "/v3/mesh/decimate": {"model task": "input", "model version": "model", "face limit": "face_limit"},
}


def parse_status(value: Any) -> tuple[TaskStatus, int]:
    """A task's status in any form Tripo sends, and the error code it implies; never raises."""
    return STATUSES.get(str(value).strip().lower() if isinstance(value, str) else "", (TaskStatus.UNKNOWN, 0))


def _number(value: Any) -> float:
    """A numeric field that may be missing, null, a string or garbage: 0 unless it is a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number and abs(number) != float("inf") else 0.0


def _moment(value: Any) -> float | None:
    """A v3 timestamp (ISO 8601, as `created_at` / `completed_at`) or epoch seconds; None if unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and value > 0 else None
    if isinstance(value, str) and value.strip():
        try:
            moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    return None


def _duration(created: Any, completed: Any) -> float | None:
    start, end = _moment(created), _moment(completed)
    return end - start if start is not None and end is not None and end >= start else None


def error_message(code: int, message: str = "", extra: str = "") -> str:
    known = ERRORS.get(code)
    text = known[0] if known else f"Tripo error {code}: {message or 'unknown'}"
    return f"{text} ({extra})" if extra else text


class TripoBackend(Backend):
    """Built through `registry.build`, which resolves the key and endpoint (environment, preferences)."""

    name = "tripo"
    capabilities = Capabilities(
        cancel=False, reconcile=False, durable_tasks=True,
        concurrency={"generation": 10, "p1": 5},
        typical_latency_s={},  # Tripo's priors are in scheduling/eta.py, TASK_PRIORS_S, with their sources
        paced_polling=True,
        limits=InputLimits(prompt_max_chars=1024, negative_prompt_max_chars=255, image_min_px=256),
    )

    def __init__(self, api_key: str, base_url: str, *, online: Callable[[], bool] = lambda: True,
                 timeout_s: float = 30.0) -> None:
        if not api_key:
            raise BackendError("no_key", "no Tripo API key")
        self.http = HttpClient(base_url, api_key, key_routes=API_ROUTES, timeout_s=timeout_s, online=online)
        self.status_requests = 0
        self._lock = threading.Lock()
        self._outputs: dict[str, dict[str, Any]] = {}
        self._logged: set[str] = set()

    # ------------------------------------------------------------------ helpers
    def _call(self, method: str, path: str, *, json: Any = None, files: Any = None) -> Any:
        response = self.http.request(method, path, json=json, files=files)
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = body.get("code", 0) if isinstance(body, dict) else 0
        if response.status_code == 401:
            raise BackendError("1002", error_message(1002), nothing_created=True)
        if response.status_code >= 400 or code:
            code = int(code or 0)
            if code == 2000:
                raise ConcurrencyRefused(error_message(2000), retry_after_s=retry_after(response))
            if code == 1007 or (response.status_code == 429 and not code):
                raise BackendError("1007", error_message(1007), retryable=True, nothing_created=True,
                                   retry_after_s=retry_after(response))
            message = body.get("message", "") if isinstance(body, dict) else ""
            extra = ""
            if code == 2010:
                extra = body.get("suggestion", "") or message
            retryable = ERRORS.get(code, ("", response.status_code >= 500))[1]
            # A 4xx answer is the provider refusing the request: a create it refused made nothing. A 5xx
            # (or a 200 carrying an error) says nothing certain about a create, so it stays uncertain.
            refused = 400 <= response.status_code < 500
            raise BackendError(str(code or response.status_code), error_message(code, message, extra),
                               retryable=retryable, nothing_created=refused)
        return body.get("data") if isinstance(body, dict) else None

    def _model(self, spec: JobSpec) -> str:
        return str(spec.params_dict.get("model", DEFAULT_MODEL))

    def _generation_fields(self, spec: JobSpec) -> dict[str, Any]:
        params = {**MODE_DEFAULTS[spec.mode], **{k: v for k, v in spec.params_dict.items()
                                                 if k not in ("prepared_images", "views", "detail", "target")}}
        if spec.params_dict.get("target") == "film":
            # Film keeps detail: detailed texture and (v3.x) detailed geometry, no face limit.
            params["texture_quality"] = "detailed"
            params.setdefault("geometry_quality", "detailed")
            params.pop("face_limit", None)
        model = self._model(spec)
        fields: dict[str, Any] = {"model": model}
        for key in ("texture", "pbr", "texture_quality", "geometry_quality", "face_limit", "quad",
                    "smart_low_poly", "style", "auto_size"):
            if key in params:
                fields[key] = params[key]
        if model.startswith("P1"):
            # P1 rejects these fields entirely (even false), and bounds the face limit.
            for key in ("quad", "smart_low_poly", "generate_parts", "geometry_quality"):
                fields.pop(key, None)
            if "face_limit" in fields:
                fields["face_limit"] = max(48, min(20000, int(fields["face_limit"])))
        if spec.seed:
            fields["model_seed"] = spec.seed
            fields["texture_seed"] = spec.seed
        return fields

    @staticmethod
    def _image_source(spec: JobSpec, number: int) -> str:
        """Kiln's prepared array (already read, checked and downscaled) when there is one."""
        prepared = spec.params_dict.get("prepared_images", ())
        return str(prepared[number]) if number < len(prepared) else spec.image_paths[number]

    def _upload(self, path: str) -> str:
        """An input image to Tripo's file store. It happens before the create and costs nothing, so any
        failure here leaves nothing behind: the engine may try again without risking a double charge."""
        try:
            data, name, mime = _upload_bytes(path)
            token = self._call("POST", "/v3/files", files={"file": (name, data, mime)})
            return str(token["file_token"])
        except BackendError as exc:
            raise BackendError(exc.code, exc.message, retryable=exc.retryable, nothing_created=True,
                               retry_after_s=exc.retry_after_s) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackendError("upload_failed", f"could not upload '{Path(path).name}': {exc}",
                               nothing_created=True) from None

    # ------------------------------------------------------------------ Backend interface
    def concurrency_group(self, spec: JobSpec) -> str:
        return "p1" if self._model(spec).startswith("P1") else "generation"

    def estimate_credits(self, spec: JobSpec) -> float:
        if spec.kind is JobKind.TEXTURE:
            return float(POST_CREDITS["texture"][spec.params_dict.get("texture_quality", "standard")])
        if spec.kind is JobKind.REFINE:
            return float(POST_CREDITS["smart_low_poly"])
        return self._generation_credits(spec) + (
            float(POST_CREDITS["texture"][spec.params_dict.get("texture_quality", "standard")])
            if len(self.steps(spec)) > 1 else 0.0)

    def _generation_credits(self, spec: JobSpec) -> float:
        fields = {**MODE_DEFAULTS[spec.mode], **spec.params_dict}
        if fields.get("target") == "film":
            fields["texture_quality"] = "detailed"
        kind = "text" if spec.kind is JobKind.TEXT else "image"
        key = f"p1_{kind}" if self._model(spec).startswith("P1") else kind
        base = CREDITS[key][1 if fields.get("texture") or fields.get("pbr") else 0]
        extra = (ADDON_CREDITS["detailed_texture"] if fields.get("texture_quality") == "detailed" else 0) \
            + (ADDON_CREDITS["quad"] if fields.get("quad") else 0) \
            + (ADDON_CREDITS["smart_low_poly"] if fields.get("smart_low_poly") else 0)
        return float(base + extra)

    def verify(self) -> None:
        """Check the key (and reachability) before a batch spends anything."""
        self.balance()

    def request_fields(self, spec: JobSpec, upload: Callable[[str], str] | None = None,
                       previous_task_id: str = "") -> tuple[str, dict[str, Any]]:
        """The route and JSON body of the create for `spec`, in the current v3 field names (`FIELD_NAMES`).
        `upload` turns an image path into a file token (the real upload by default); `previous_task_id`
        is the geometry task a chained texture step works on."""
        upload = upload or self._upload
        if previous_task_id:
            return "/v3/models/texture", self._texture_fields(spec, previous_task_id, spec.params_dict[THEME_PROMPT])
        fields = self._generation_fields(spec)
        if spec.kind is JobKind.TEXT:
            fields["prompt"] = spec.prompt
            if spec.negative_prompt:
                fields["negative_prompt"] = spec.negative_prompt[:255]
            return "/v3/generation/text-to-model", fields
        if spec.kind is JobKind.IMAGE:
            fields["input"] = upload(self._image_source(spec, 0))
            return "/v3/generation/image-to-model", fields
        if spec.kind is JobKind.MULTIVIEW:
            views = list(spec.params_dict.get("views", ("front", "left", "back", "right")[: len(spec.image_paths)]))
            slots: dict[str, str | None] = dict.fromkeys(VIEW_SLOTS)
            for number, view in enumerate(views):
                slots[view] = upload(self._image_source(spec, number))
            fields["inputs"] = [slots[v] for v in VIEW_SLOTS]  # [front, left, back, right], None where missing
            return "/v3/generation/multiview-to-model", fields
        params = spec.params_dict
        if spec.kind is JobKind.TEXTURE:
            # Texture an existing model with one texture prompt.
            return "/v3/models/texture", self._texture_fields(
                spec, str(params["original_task_id"]), str(params.get("texture_prompt") or spec.prompt))
        if spec.kind is JobKind.REFINE and params.get("operation") == "decimate":
            # Smart low-poly: game-ready topology made by Tripo when the artist picks it.
            return "/v3/mesh/decimate", {"input": str(params["original_task_id"]), "model": "v3.0",
                                         "face_limit": int(params.get("face_limit", 5000)),
                                         "quad": bool(params.get("quad", False)), "bake": True}
        raise BackendError("unsupported_input", f"Kiln's Tripo backend cannot do {spec.kind.value} jobs yet")

    def _texture_fields(self, spec: JobSpec, source_task_id: str, prompt: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"input": source_task_id, "model": DEFAULT_MODEL,
                                  "texture_prompt": {"text": prompt}, "texture": True, "pbr": True,
                                  "texture_quality": spec.params_dict.get("texture_quality", "standard")}
        if spec.seed:
            fields["texture_seed"] = spec.seed
        return fields

    def steps(self, spec: JobSpec) -> tuple[str, ...]:
        """A themed Production batch gets Tripo's texture route after geometry, with the batch's prompt."""
        if spec.params_dict.get(THEME_PROMPT) and spec.kind in (JobKind.TEXT, JobKind.IMAGE, JobKind.MULTIVIEW):
            return (spec.mode.value, "texture")
        return (spec.mode.value,)

    def submit(self, spec: JobSpec, client_ref: str) -> str:
        return self._create(spec, *self.request_fields(spec))

    def submit_step(self, spec: JobSpec, step: int, previous_task_id: str, client_ref: str) -> str:
        if step != 1 or len(self.steps(spec)) < 2:
            raise BackendError("unsupported_input", f"Tripo has no step {step} for this job")
        return self._create(spec, *self.request_fields(spec, previous_task_id=previous_task_id))

    def _create(self, spec: JobSpec, route: str, fields: dict[str, Any]) -> str:
        try:
            data = self._call("POST", route, json=fields)
        except BackendError as exc:
            if exc.code == "2010":
                raise self.not_enough_credits(exc.code, spec) from None
            raise
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not task_id:
            # Something was created (or not): without an id, nobody can tell. The engine marks it uncertain.
            raise BackendError("bad_response", "Tripo accepted the create but sent no task id")
        return str(task_id)

    def watch(self, task_ids: Sequence[str], timeout_s: float) -> list[TaskUpdate]:
        """One batched status request per 100 tasks, sent now: the scheduler decides when, from each
        task's own predicted finish (`Capabilities.paced_polling`)."""
        updates = []
        for start in range(0, len(task_ids), LIST_BATCH):
            chunk = list(task_ids[start : start + LIST_BATCH])
            with self._lock:
                self.status_requests += 1
            try:
                data = self._call("POST", "/v3/tasks/list", json={"task_ids": chunk})
            except BackendError as exc:
                if exc.code != "2001":
                    raise
                updates += [TaskUpdate(t, TaskStatus.MISSING) for t in chunk]  # none of them is known
                continue
            updates += self._updates(chunk, data)
        return updates

    def _updates(self, asked: Sequence[str], data: Any) -> list[TaskUpdate]:
        """One list answer, read defensively: a task whose entry cannot be read is UNKNOWN (watched on),
        never an exception that would stall the poll of every other task. `tasks` is a map by id (the
        SDK's reading) or a list; `missed` lists the ids the provider does not know."""
        tasks = data.get("tasks", []) if isinstance(data, dict) else data
        entries = list(tasks.values()) if isinstance(tasks, dict) else tasks if isinstance(tasks, list) else []
        wanted = set(asked)
        updates: dict[str, TaskUpdate] = {}
        for entry in entries:
            task_id = str(entry.get("task_id", "")) if isinstance(entry, dict) else ""
            if task_id not in wanted:
                continue  # nothing to attribute it to (or a task nobody asked about)
            try:
                updates[task_id] = self._update(entry)
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                self._log_once(f"entry:{type(exc).__name__}", "tripo: unreadable status for task %s: %s",
                               task_id, exc)
                updates[task_id] = TaskUpdate(task_id, TaskStatus.UNKNOWN)
        missed = data.get("missed", []) if isinstance(data, dict) else []
        for task_id in missed if isinstance(missed, list) else []:
            if str(task_id) in wanted and str(task_id) not in updates:
                updates[str(task_id)] = TaskUpdate(str(task_id), TaskStatus.MISSING)
        return list(updates.values())

    def _log_once(self, key: str, message: str, *args: Any) -> None:
        """A surprise from the provider is worth one log line, not one per poll."""
        with self._lock:
            if key in self._logged:
                return
            self._logged.add(key)
        _log.warning(message, *args)

    def _update(self, task: dict[str, Any]) -> TaskUpdate:
        task_id = str(task["task_id"])
        raw = task.get("status")
        status, forced_code = parse_status(raw)
        progress = max(0.0, min(1.0, _number(task.get("progress")) / 100.0))
        if status is TaskStatus.UNKNOWN:
            if not (isinstance(raw, str) and raw.strip().lower() == "unknown"):
                self._log_once(f"status:{raw!r}", "tripo: status %r is new to Kiln; the task is watched as running",
                               raw)
            return TaskUpdate(task_id, status, error_message=f"it reports status {raw!r}")
        if status is TaskStatus.SUCCESS:
            output = task.get("output")
            with self._lock:
                self._outputs[task_id] = output if isinstance(output, dict) else {}
        if status is TaskStatus.FAILED:
            code = forced_code or int(_number(task.get("error_code")))
            detail = str(task.get("error_message", "") or "")
            message = STATUS_MESSAGES.get(str(raw).strip().lower()) or error_message(code, detail)
            return TaskUpdate(task_id, status, progress, 0.0, str(code), message)
        if status is TaskStatus.SUCCESS:
            return TaskUpdate(task_id, status, 1.0, _number(task.get("credits_consumed")),
                              duration_s=_duration(task.get("created_at"), task.get("completed_at")))
        credits = 0.0
        left = task.get("running_left_time")
        left_s = _number(left) if left is not None and _number(left) >= 0 and status is TaskStatus.RUNNING else None
        return TaskUpdate(task_id, status, progress, credits, left_s=left_s)

    def _fresh_output(self, task_id: str) -> dict[str, Any]:
        try:
            data = self._call("GET", f"/v3/tasks/{task_id}")
        except BackendError as exc:
            if exc.code in ("2001", "404"):
                raise BackendError("unknown_task", unknown_task_message(task_id)) from None
            raise
        output = data.get("output") if isinstance(data, dict) else None
        if not isinstance(output, dict):
            raise BackendError("bad_response", "Tripo answered without the result's links", retryable=True)
        self._outputs[task_id] = output
        return output

    def download(self, task_id: str, dest_dir: Path) -> dict[str, str]:
        output = self._outputs.get(task_id) or self._fresh_output(task_id)
        files: dict[str, str] = {}
        for role, key in (("model", "model_url"), ("preview", "rendered_image_url")):
            for attempt in range(2):
                url = output.get(key)
                if not url:
                    break
                suffix = ".fbx" if role == "model" and ".fbx" in url.split("?")[0].lower() else \
                    ".glb" if role == "model" else ".png"
                target = dest_dir / f"{role}{suffix}"
                try:
                    self.http.download(url, target, max_bytes=MAX_DOWNLOAD_BYTES)
                    files[role] = str(target)
                    break
                except BackendError as exc:
                    if exc.code == "url_expired" and attempt == 0:
                        output = self._fresh_output(task_id)  # links live minutes: ask for new ones
                        continue
                    raise
        if "model" not in files:
            raise BackendError("no_model", "Tripo's task succeeded but returned no model link")
        return files

    def balance(self) -> float | None:
        data = self._call("GET", "/v3/account/balance")
        return float(data.get("balance", 0))

    def describe(self, spec: JobSpec) -> dict[str, Any]:
        return {"model_version": self._model(spec)}


def _upload_bytes(path: str) -> tuple[bytes, str, str]:
    """The image within Tripo's upload limit (`http.image_part`), an unaccepted type as Tripo's code 2004."""
    try:
        return image_part(path, limit_bytes=UPLOAD_LIMIT_BYTES, provider="Tripo")
    except BackendError as exc:
        if exc.code == "unsupported_image":
            raise BackendError("2004", error_message(2004)) from None
        raise
