"""Hyper3D Rodin (API v2) backend: multipart create, status by subscription key, download by task uuid.

The protocol is Rodin's public API as its documentation, DeemosTech's client and ComfyUI's nodes send it
(reference/backends.md §3). A create returns a top-level task `uuid` and a `subscription_key` for its
jobs; the status of those jobs is asked with the key, and the files with the uuid. Kiln's task id holds
both (`uuid:subscription_key`), so the journal keeps everything a resume needs. Rodin asks clients not
to poll often and gives no progress, so `watch` paces itself: each task is asked about every
`poll_interval_s` (5 s by default). Result links last 10 minutes: an expired one is asked for again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..http import HttpClient, image_part, retry_after
from ..jobs import JobKind, JobSpec, Mode
from .base import Backend, BackendError, Capabilities, InputLimits, TaskStatus, TaskUpdate, unknown_task_message

_log = logging.getLogger(__name__)

API_ROUTES = ("/rodin", "/status", "/download", "/check_balance")
"""Where the key goes, below the base URL. Result links are file downloads, sent without it."""
MAX_IMAGES = 5
UPLOAD_LIMIT_BYTES = 20 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 300 * 1024 * 1024
SEED_MODULO = 65536
"""Rodin takes seeds 0..65535: Kiln's seed (0..2^31-1) is sent as `seed % 65536`."""
CREDITS_PER_GENERATION = 0.5
HIGHPACK_CREDITS = 1.0
DEFAULT_POLL_INTERVAL_S = 5.0
"""Rodin's documentation asks clients not to poll often, without a figure: 5-10 s is the usual pace."""

TIERS: dict[str, str] = {"draft": "Sketch", "game": "Regular", "film": "Detail"}
"""Draft is Sketch (fastest, GLB only); Production is Regular for a game asset and Detail for film. A
`tier` parameter in the spec, or the backend's `tiers`, overrides it."""

# What Draft and Production ask of Rodin beyond the tier (also see modes.MODE_PARAMS).
MODE_FIELDS: dict[str, dict[str, str]] = {
    "draft": {"quality": "low", "mesh_mode": "Raw", "material": "Shaded"},
    "game": {"quality": "medium", "mesh_mode": "Raw", "material": "PBR"},
    "film": {"quality": "high", "mesh_mode": "Quad", "material": "PBR"},
}
FIELDS = ("tier", "quality", "mesh_mode", "material", "geometry_file_format", "condition_mode", "addons",
          "quality_override")
"""Spec parameters sent as they are (a manifest or panel may set them); anything else is Kiln's own."""

# Rodin's error strings → (message for the artist, retryable).
ERRORS: dict[str, tuple[str, bool]] = {
    "INSUFFICIENT_FUND": ("not enough Rodin credits", False),
    "Not authenticated": ("API key rejected: check your Rodin key in Kiln's preferences", False),
}
STATUSES: dict[str, TaskStatus] = {"waiting": TaskStatus.QUEUED, "generating": TaskStatus.RUNNING,
                                   "done": TaskStatus.SUCCESS, "failed": TaskStatus.FAILED}


def error_message(error: str) -> str:
    known = ERRORS.get(error.strip())
    return known[0] if known else f"Rodin error: {error.strip() or 'unknown'}"


def split_task_id(task_id: str) -> tuple[str, str]:
    """(top-level uuid, subscription key) of Kiln's task id for Rodin."""
    uuid, _, key = task_id.partition(":")
    return uuid, key


def job_statuses(jobs: Any) -> TaskStatus:
    """The task's status from its jobs: done when every job is Done, failed when any Failed, UNKNOWN
    when no job's status can be read (never raises)."""
    entries = [j for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []
    statuses = {STATUSES.get(str(j.get("status", "")).strip().lower(), TaskStatus.UNKNOWN) for j in entries}
    if TaskStatus.FAILED in statuses:
        return TaskStatus.FAILED
    if statuses == {TaskStatus.SUCCESS}:
        return TaskStatus.SUCCESS
    if statuses & {TaskStatus.RUNNING, TaskStatus.SUCCESS}:
        return TaskStatus.RUNNING
    return TaskStatus.QUEUED if statuses == {TaskStatus.QUEUED} else TaskStatus.UNKNOWN


class RodinBackend(Backend):
    """Built through `registry.build`, which resolves the key and endpoint (environment, preferences)."""

    name = "rodin"
    capabilities = Capabilities(
        cancel=False, reconcile=False, durable_tasks=True,
        # Unpublished; Tencent Cloud's Rodin host defaults to 3. The plan concurrency preference (or
        # [backends.rodin] concurrency) sets the account's real figure.
        concurrency={"generation": 3},
        # "Several minutes" (DeemosTech/rodin3d-skills); Sketch is the fastest tier. No official figure.
        typical_latency_s={"draft": 60.0, "production": 180.0},
        input_kinds=frozenset({"text", "image", "multiview"}),
        paced_polling=False,  # watch paces itself: one status request per task per poll interval
        # No negative prompt in Rodin's create; it separates the subject of a photo itself.
        limits=InputLimits(negative_prompt_max_chars=0),
    )

    def __init__(self, api_key: str, base_url: str, *, online: Callable[[], bool] = lambda: True,
                 timeout_s: float = 30.0, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
                 tiers: Mapping[str, str] | None = None) -> None:
        if not api_key:
            raise BackendError("no_key", "no Rodin API key")
        self.http = HttpClient(base_url, api_key, key_routes=API_ROUTES, timeout_s=timeout_s, online=online)
        self.poll_interval_s = poll_interval_s
        self.tiers = {**TIERS, **(tiers or {})}
        self.status_requests = 0
        self._lock = threading.Lock()
        self._next_poll: dict[str, float] = {}
        self._links: dict[str, list[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ helpers
    def _call(self, path: str, *, json: Any = None, files: Any = None, method: str = "POST",
              retry: bool | None = None) -> dict[str, Any]:
        """One API call; any 2xx with no `error` is success (the docs' example answers 201)."""
        response = self.http.request(method, path, json=json, files=files, retry=retry)
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        error = body.get("error")
        if 200 <= response.status_code < 300 and not error:
            return body
        text = str(error or body.get("message") or body.get("detail") or "")
        if response.status_code == 401 or text.strip() == "Not authenticated":
            raise BackendError("not_authenticated", error_message("Not authenticated"), nothing_created=True)
        if response.status_code == 429:
            raise BackendError("rate_limited", "Rodin's request-rate limit was hit; slowing down", retryable=True,
                               nothing_created=True, retry_after_s=retry_after(response))
        if text.strip() in ERRORS:
            raise BackendError(text.strip(), error_message(text), retryable=ERRORS[text.strip()][1],
                               nothing_created=True)
        # A 4xx, or a 2xx carrying an error, is Rodin refusing the request: a refused create made nothing.
        # A 5xx says nothing certain about a create, so it stays uncertain.
        server = response.status_code >= 500
        raise BackendError("rodin_error" if 200 <= response.status_code < 300 else str(response.status_code),
                           error_message(text or f"HTTP {response.status_code}"),
                           retryable=server, nothing_created=not server)

    def _tier_and_fields(self, spec: JobSpec) -> dict[str, str]:
        params = spec.params_dict
        look = "draft" if spec.mode is Mode.DRAFT else str(params.get("target", "game"))
        look = look if look in MODE_FIELDS else "game"
        fields = {"tier": self.tiers.get(look, TIERS[look]), **MODE_FIELDS[look], "geometry_file_format": "glb"}
        if look == "game" and params.get("face_limit"):
            fields["quality_override"] = str(int(params["face_limit"]))  # the target's face budget
        fields.update({k: str(params[k]) for k in FIELDS if k in params})
        return fields

    def request_fields(self, spec: JobSpec) -> tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]:
        """The create's form fields and image parts for `spec` (nothing is sent)."""
        problem = self.input_problem(spec)
        if problem:
            raise BackendError("unsupported_input", problem, nothing_created=True)
        fields = self._tier_and_fields(spec)
        fields["seed"] = str(spec.seed % SEED_MODULO)
        if spec.prompt:
            fields["prompt"] = spec.prompt
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        if spec.kind in (JobKind.IMAGE, JobKind.MULTIVIEW):
            prepared = tuple(spec.params_dict.get("prepared_images", ()))
            paths = [str(prepared[n]) if n < len(prepared) else spec.image_paths[n]
                     for n in range(len(spec.image_paths))]
            for path in paths[:MAX_IMAGES]:
                data, name, mime = image_part(path, limit_bytes=UPLOAD_LIMIT_BYTES, provider="Rodin")
                files.append(("images", (name, data, mime)))  # order kept: the first drives the material
            if len(files) > 1:
                fields.setdefault("condition_mode", "concat")
        return fields, files

    def input_problem(self, spec: JobSpec) -> str | None:
        if spec.kind is JobKind.TEXT and not spec.prompt.strip():
            return "Rodin needs a prompt for a text job"
        if spec.kind in (JobKind.IMAGE, JobKind.MULTIVIEW):
            if not spec.image_paths:
                return "Rodin needs at least one image for an image job"
            if len(spec.image_paths) > MAX_IMAGES:
                return f"Rodin takes at most {MAX_IMAGES} images per task, not {len(spec.image_paths)}"
        if spec.kind.value not in (self.capabilities.input_kinds or ()):
            return f"Kiln's Rodin backend cannot do {spec.kind.value} jobs"
        return None

    # ------------------------------------------------------------------ Backend interface
    def estimate_credits(self, spec: JobSpec) -> float:
        extra = HIGHPACK_CREDITS if "HighPack" in str(spec.params_dict.get("addons", "")) else 0.0
        return CREDITS_PER_GENERATION + extra

    def verify(self) -> None:
        """Check the key (and reachability) before a batch spends anything."""
        self.balance()

    def submit(self, spec: JobSpec, client_ref: str) -> str:
        fields, files = self.request_fields(spec)
        try:
            # Every field as a multipart part ((None, value): no file name), so a text-only task is
            # multipart too, as Rodin requires.
            body = self._call("/rodin", files=[(k, (None, v)) for k, v in fields.items()] + files, retry=False)
        except BackendError as exc:
            if exc.code == "INSUFFICIENT_FUND":
                raise self.not_enough_credits(exc.code, spec) from None
            raise
        uuid = str(body.get("uuid") or "")
        jobs = body.get("jobs") if isinstance(body.get("jobs"), dict) else {}
        key = str(jobs.get("subscription_key") or "") if isinstance(jobs, dict) else ""
        if not uuid or not key or ":" in uuid:
            # Something was created (or not): without its ids nobody can tell. The engine marks it uncertain.
            raise BackendError("bad_response", "Rodin accepted the create but sent no task uuid or subscription key")
        task_id = f"{uuid}:{key}"
        with self._lock:
            self._next_poll[task_id] = time.monotonic() + self.poll_interval_s
        return task_id

    def watch(self, task_ids: Sequence[str], timeout_s: float) -> list[TaskUpdate]:
        """Ask about each task whose poll interval has passed (one request per task: Rodin has no batched
        status); with none due, wait up to `timeout_s` and report nothing."""
        now = time.monotonic()
        with self._lock:
            for task_id in task_ids:
                self._next_poll.setdefault(task_id, now)  # a task reattached after a restart: ask now
            for gone in [t for t in self._next_poll if t not in task_ids]:
                del self._next_poll[gone]
            due = [t for t in task_ids if self._next_poll[t] <= now]
            wait = min((self._next_poll[t] for t in task_ids), default=now + timeout_s) - now
        if not due:
            time.sleep(max(0.0, min(timeout_s, wait)))
            return []
        updates = [self._status(task_id) for task_id in due]
        with self._lock:
            for task_id in due:
                if task_id in self._next_poll:
                    self._next_poll[task_id] = time.monotonic() + self.poll_interval_s
        return updates

    def _status(self, task_id: str) -> TaskUpdate:
        _, key = split_task_id(task_id)
        with self._lock:
            self.status_requests += 1
        if not key:
            return TaskUpdate(task_id, TaskStatus.MISSING)
        try:
            body = self._call("/status", json={"subscription_key": key}, retry=True)
        except BackendError as exc:
            if exc.code in ("404", "rodin_error"):
                return TaskUpdate(task_id, TaskStatus.MISSING, error_message=exc.message)
            raise
        jobs = body.get("jobs")
        status = job_statuses(jobs)
        entries = [j for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []
        done = sum(1 for j in entries if str(j.get("status", "")).strip().lower() == "done")
        progress = done / len(entries) if entries else 0.0  # no numeric progress: done jobs ÷ jobs
        if status is TaskStatus.FAILED:
            failed = sum(1 for j in entries if str(j.get("status", "")).strip().lower() == "failed")
            return TaskUpdate(task_id, status, progress, error_code="job_failed",
                              error_message=f"Rodin failed {failed} of the task's {len(entries)} jobs")
        if status is TaskStatus.UNKNOWN:
            return TaskUpdate(task_id, status, error_message="its status answer lists no readable job")
        return TaskUpdate(task_id, status, 1.0 if status is TaskStatus.SUCCESS else progress,
                          CREDITS_PER_GENERATION if status is TaskStatus.SUCCESS else 0.0)

    def _fresh_links(self, task_id: str) -> list[dict[str, Any]]:
        uuid, _ = split_task_id(task_id)
        try:
            body = self._call("/download", json={"task_uuid": uuid}, retry=True)
        except BackendError as exc:
            if exc.code in ("404", "rodin_error"):
                raise BackendError("unknown_task", unknown_task_message(uuid)) from None
            raise
        listed = body.get("list")
        links = [e for e in listed if isinstance(e, dict) and e.get("url")] if isinstance(listed, list) else []
        with self._lock:
            self._links[task_id] = links
        return links

    def download(self, task_id: str, dest_dir: Path) -> dict[str, str]:
        files: dict[str, str] = {}
        links = self._links.get(task_id) or self._fresh_links(task_id)
        for role in ("model", "preview"):
            for attempt in range(2):
                entry = _pick(links, role)
                if entry is None:
                    break
                suffix = Path(str(entry.get("name") or "")).suffix.lower() or (".glb" if role == "model" else ".webp")
                target = dest_dir / f"{role}{suffix}"
                try:
                    self.http.download(str(entry["url"]), target, max_bytes=MAX_DOWNLOAD_BYTES)
                    files[role] = str(target)
                    break
                except BackendError as exc:
                    if exc.code == "url_expired" and attempt == 0:
                        links = self._fresh_links(task_id)  # links live 10 minutes: ask for new ones
                        continue
                    if role == "preview":
                        break  # a preview is a nicety; the model is what was paid for
                    raise
        if "model" not in files:
            raise BackendError("no_model", "Rodin's task is done but listed no model file")
        with self._lock:
            self._links.pop(task_id, None)
        return files

    def balance(self) -> float | None:
        body = self._call("/check_balance", method="GET")
        try:
            return float(body.get("balance", 0))
        except (TypeError, ValueError):
            raise BackendError("bad_response", "Rodin answered the balance without a number") from None

    def describe(self, spec: JobSpec) -> dict[str, Any]:
        return {"tier": self._tier_and_fields(spec)["tier"]}


MODEL_SUFFIXES = (".glb", ".gltf", ".fbx", ".obj", ".usdz", ".stl")


def _pick(links: Sequence[dict[str, Any]], role: str) -> dict[str, Any] | None:
    """The model file (by its suffix) or the preview image among a download list."""
    for entry in links:
        name = str(entry.get("name") or entry.get("url", "")).split("?")[0].lower()
        if role == "model" and name.endswith(MODEL_SUFFIXES):
            return entry
        if role == "preview" and name.endswith((".webp", ".png", ".jpg", ".jpeg")):
            return entry
    return None
