"""Stability AI Stable Fast 3D backend: one synchronous multipart POST that answers with the GLB itself.

The protocol is `POST /v2beta/3d/stable-fast-3d` (reference/backends.md §4): an `image` part and the
options `texture_resolution`, `foreground_ratio`, `remesh` and `vertex_count`; 200 carries the GLB bytes,
errors are JSON `{"id", "name", "errors"}` (403 `content_moderation` among them).

It fits the engine's submit → watch → download model without a thread of its own: `submit` runs in the
engine's worker, makes the call and keeps the GLB in the scratch folder under a task id of Kiln's
making; `watch` reports that task done at once and `download` moves the file into place. The id is
journaled like any provider's, so a crash between the answer and the download still finds the result.
Image input only: a text prompt is refused before anything is queued (`Capabilities.input_kinds`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..http import HttpClient, image_part, retry_after
from ..jobs import JobKind, JobSpec, Mode
from .base import Backend, BackendError, Capabilities, InputLimits, TaskStatus, TaskUpdate

_log = logging.getLogger(__name__)

ROUTE = "/v2beta/3d/stable-fast-3d"
BALANCE_ROUTE = "/v1/user/balance"
API_ROUTES = ("/v2beta/", "/v1/user/")
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024
MAX_RESULT_BYTES = 200 * 1024 * 1024
CREDITS = 10.0
"""Credits per call (about $0.10, from third-party notes; Stability publishes no per-call figure here)."""
TASK_PREFIX = "sf3d-"
MAX_VERTEX_COUNT = 20000

# Draft is the fastest answer; Production follows the target (a game asset's face budget; film keeps all).
MODE_FIELDS: dict[str, dict[str, Any]] = {
    "draft": {"texture_resolution": 512, "foreground_ratio": 0.85, "remesh": "none", "vertex_count": -1},
    "game": {"texture_resolution": 1024, "foreground_ratio": 0.85, "remesh": "triangle", "vertex_count": -1},
    "film": {"texture_resolution": 2048, "foreground_ratio": 0.85, "remesh": "none", "vertex_count": -1},
}
CHOICES: dict[str, tuple[Any, ...]] = {"texture_resolution": (512, 1024, 2048), "remesh": ("none", "triangle", "quad")}

# HTTP status → (message for the artist, retryable, nothing created). A refused request made nothing;
# a 500 says nothing certain, so it is not sent again without asking.
ERRORS: dict[int, tuple[str, bool, bool]] = {
    400: ("Stability rejected the request", False, True),
    401: ("API key rejected: check your Stability key (sk-…) in Kiln's preferences", False, True),
    402: ("not enough Stability credits", False, True),
    403: ("Stability refused the request", False, True),
    413: ("the image is too large for Stability (over 10 MB)", False, True),
    422: ("Stability could not use the request's image or options", False, True),
    429: ("Stability's request-rate limit was hit; slowing down", True, True),
    500: ("Stability had a server error", True, False),
}
MODERATION_MESSAGE = ("refused by Stability's content moderation: the image was flagged (not retried; try "
                      "another image)")


def image_only_message(kind: str) -> str:
    what = "a text prompt" if kind == "text" else f"{kind} input"
    return (f"Stable Fast 3D makes models from image input only, not from {what}: choose another backend for "
            "it, or generate from an image")


def mode_fields(spec: JobSpec) -> dict[str, Any]:
    """The call's options for `spec`: its mode and target, then any of the options the spec sets itself."""
    params = spec.params_dict
    look = "draft" if spec.mode is Mode.DRAFT else str(params.get("target", "game"))
    fields = dict(MODE_FIELDS.get(look, MODE_FIELDS["game"]))
    if look == "game" and params.get("face_limit"):
        # A closed triangle mesh has about twice as many faces as vertices.
        fields["vertex_count"] = max(100, min(MAX_VERTEX_COUNT, int(params["face_limit"]) // 2))
    fields.update({k: params[k] for k in MODE_FIELDS["draft"] if k in params})
    for key, allowed in CHOICES.items():
        if fields[key] not in allowed:
            raise BackendError("unsupported_input", f"Stability's {key} must be one of "
                               f"{', '.join(map(str, allowed))}, not {fields[key]!r}", nothing_created=True)
    if not 0.1 <= float(fields["foreground_ratio"]) <= 1.0:
        raise BackendError("unsupported_input", "Stability's foreground_ratio must be within 0.1-1",
                           nothing_created=True)
    return fields


def error_from(status: int, body: Any, retry_after_s: float | None = None) -> BackendError:
    """A non-200 answer as a BackendError, read from `{"id", "name", "errors"}` without trusting it."""
    body = body if isinstance(body, dict) else {}
    name = str(body.get("name") or "")
    errors = body.get("errors")
    details = "; ".join(str(e) for e in errors[:3]) if isinstance(errors, list) else ""
    if name == "content_moderation":
        return BackendError("content_moderation", MODERATION_MESSAGE, nothing_created=True)
    message, retryable, nothing = ERRORS.get(status, (f"Stability error (HTTP {status})", status >= 500,
                                                      400 <= status < 500))
    if details and status not in (401,):
        message = f"{message}: {details}"
    return BackendError(name or str(status), message, retryable=retryable, nothing_created=nothing,
                        retry_after_s=retry_after_s if status == 429 else None)


class StabilityBackend(Backend):
    """Built through `registry.build`, which resolves the key and endpoint (environment, preferences)."""

    name = "stability"
    capabilities = Capabilities(
        cancel=False, reconcile=False, durable_tasks=True,
        # 150 requests per 10 s (older v1 docs): the engine's workers are the real limit.
        concurrency={"default": 8},
        typical_latency_s={"draft": 2.0, "production": 3.0},  # SF3D: 0.5 s model time, plus upload and network
        input_kinds=frozenset({"image"}),
        # foreground_ratio crops to the subject it finds; the request has no prompt of any kind.
        limits=InputLimits(negative_prompt_max_chars=0),
    )

    def __init__(self, api_key: str, base_url: str, *, scratch_dir: Path | None = None,
                 online: Callable[[], bool] = lambda: True, timeout_s: float = 30.0) -> None:
        if not api_key:
            raise BackendError("no_key", "no Stability API key")
        self.http = HttpClient(base_url, api_key, key_routes=API_ROUTES, timeout_s=timeout_s, online=online)
        self.scratch = Path(scratch_dir) if scratch_dir else Path(tempfile.mkdtemp(prefix="kiln-stability-"))
        self._lock = threading.Lock()
        self.calls = 0

    def _result(self, task_id: str) -> Path:
        if not task_id.startswith(TASK_PREFIX) or not task_id[len(TASK_PREFIX):].isalnum():
            raise BackendError("unknown_task", f"'{task_id}' is not a Stability result of Kiln's")
        return self.scratch / f"{task_id}.glb"

    # ------------------------------------------------------------------ requests
    def request_fields(self, spec: JobSpec) -> tuple[dict[str, str], tuple[str, bytes, str]]:
        """The call's form fields and its image part (nothing is sent). A text prompt is refused here,
        before any request, saying which backends can take it."""
        if spec.kind is not JobKind.IMAGE:
            raise BackendError("unsupported_input", image_only_message(spec.kind.value), nothing_created=True)
        if not spec.image_paths:
            raise BackendError("unsupported_input", "Stable Fast 3D needs an image", nothing_created=True)
        prepared = tuple(spec.params_dict.get("prepared_images", ()))
        path = str(prepared[0]) if prepared else spec.image_paths[0]
        fields = {k: str(v) for k, v in mode_fields(spec).items()}
        data, name, mime = image_part(path, limit_bytes=UPLOAD_LIMIT_BYTES, provider="Stability")
        return fields, (name, data, mime)

    # ------------------------------------------------------------------ Backend interface
    def estimate_credits(self, spec: JobSpec) -> float:
        return CREDITS

    def verify(self) -> None:
        self.balance()

    def submit(self, spec: JobSpec, client_ref: str) -> str:
        """The whole generation, in the engine's worker: the GLB arrives in the answer."""
        fields, image = self.request_fields(spec)
        files = [("image", image)] + [(k, (None, v)) for k, v in fields.items()]
        with self._lock:
            self.calls += 1
        response = self.http.request("POST", ROUTE, files=files, retry=False)
        if response.status_code != 200:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise error_from(response.status_code, body, retry_after(response))
        data = response.content
        if not data.startswith(b"glTF"):
            # Charged, most likely, but nothing usable came back: not sent again without asking.
            raise BackendError("bad_response", "Stability answered 200 without a GLB model")
        if len(data) > MAX_RESULT_BYTES:
            raise BackendError("download_too_large", "Stability's model is over the size cap")
        task_id = f"{TASK_PREFIX}{uuid.uuid4().hex}"
        target = self._result(task_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        part.write_bytes(data)
        os.replace(part, target)
        return task_id

    def watch(self, task_ids: Sequence[str], timeout_s: float) -> list[TaskUpdate]:
        """Done at once: the result came with the create. Gone from the scratch folder means unknown."""
        updates = []
        for task_id in task_ids:
            try:
                present = self._result(task_id).is_file()
            except BackendError:
                present = False
            updates.append(TaskUpdate(task_id, TaskStatus.SUCCESS, 1.0, CREDITS) if present
                           else TaskUpdate(task_id, TaskStatus.MISSING))
        return updates

    def download(self, task_id: str, dest_dir: Path) -> dict[str, str]:
        source = self._result(task_id)
        target = dest_dir / "model.glb"
        if not source.is_file():
            if target.is_file():  # moved by an earlier download that did not get to report it
                return {"model": str(target)}
            raise BackendError("unknown_task", "the Stability result is no longer in Kiln's scratch folder")
        dest_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)  # the scratch and cache folders may be on different disks
        return {"model": str(target)}

    def balance(self) -> float | None:
        response = self.http.request("GET", BALANCE_ROUTE)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200:
            raise error_from(response.status_code, body)
        try:
            return float(body.get("credits", 0)) if isinstance(body, dict) else 0.0
        except (TypeError, ValueError):
            raise BackendError("bad_response", "Stability answered the balance without a number") from None

    def describe(self, spec: JobSpec) -> dict[str, Any]:
        return {"model": "stable-fast-3d"}
