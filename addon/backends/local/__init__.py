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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...imaging import depth_map
from ...imaging.glb import Material, MeshPart, write_glb
from ...imaging.png import encode_png
from ...imaging.preview import render_preview
from ...imaging.raster import resample_area, work_shape
from ...imaging.silhouette import NoSubject, Silhouette, extract
from ...jobs import JobKind, JobSpec, Mode
from ...modes import PREPARED_IMAGES
from ...modes import VIEWS as VIEWS_PARAM
from ...requests import depth_capture
from ..base import Backend, BackendError, Capabilities, InputLimits, TaskStatus, TaskUpdate
from . import depth, text
from .hull import VIEWS, carve, surface
from .inflate import inflate

ENGINE_VERSION = "kiln-local-1"

_log = logging.getLogger(__name__)

SUPPORTED_KINDS = (JobKind.TEXT, JobKind.IMAGE, JobKind.MULTIVIEW)
# The engine reads only the RGBA arrays Kiln prepared on the main thread (Blender reads every image
# format there), never the artist's original files.

# Draft favours latency, Production detail: grid cells across the subject, voxels up its height,
# texture and preview sizes.
GRID = {Mode.DRAFT: 40, Mode.PRODUCTION: 112}
HULL_RESOLUTION = {Mode.DRAFT: 48, Mode.PRODUCTION: 112}
TEXTURE_SIZE = {Mode.DRAFT: 512, Mode.PRODUCTION: 1024}
PREVIEW_SIZE = {Mode.DRAFT: 128, Mode.PRODUCTION: 256}


@dataclass
class LocalResult:
    files: dict[str, str]
    metadata: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def generate(spec: JobSpec, out_dir: Path) -> LocalResult:
    """Run the engine for one spec and write `model.glb` and `preview.png` into `out_dir`."""
    if spec.kind is JobKind.TEXT:
        return generate_text(spec, out_dir)
    try:
        images = [np.load(path) for path in spec.params_dict.get(PREPARED_IMAGES, ())]
    except OSError as exc:
        raise BackendError("input_missing", f"a prepared input image is gone from the cache: {exc}") from exc
    if not images:
        raise BackendError("unsupported_input", "no prepared image: load images through Kiln so they can be read")
    if spec.kind is JobKind.IMAGE and depth_capture(spec.params_dict):
        return generate_camera(spec, images[0], depth_capture(spec.params_dict), out_dir)
    if spec.kind is JobKind.IMAGE:
        return generate_image(spec, images[0], out_dir)
    views = list(spec.params_dict.get(VIEWS_PARAM, VIEWS[: len(images)]))
    if len(views) != len(images):
        raise BackendError("bad_views", "each multiview image needs a view name (front, left, back, right)")
    return generate_multiview(spec, dict(zip(views, images, strict=True)), out_dir)


def _write(out_dir: Path, name: str, parts: list[MeshPart], materials: list[Material], metadata: dict[str, Any],
           mode: Mode, textures: dict[int, npt.NDArray[np.uint8]] | None = None, seed: int = 0) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    model = out_dir / "model.glb"
    metadata["triangles"] = int(sum(p.indices.size // 3 for p in parts))
    metadata["bytes"] = write_glb(model, name, parts, materials, extras=dict(metadata))
    preview = out_dir / "preview.png"
    pixels = render_preview(parts, materials, textures, size=PREVIEW_SIZE[mode], seed=seed)
    tmp = preview.with_suffix(".png.part")
    tmp.write_bytes(encode_png(pixels))
    tmp.replace(preview)
    return {"model": str(model), "preview": str(preview)}


def generate_text(spec: JobSpec, out_dir: Path) -> LocalResult:
    """Build the blockout for a text spec (within the target's face budget in Production)."""
    production = spec.mode is Mode.PRODUCTION
    text_plan = text.plan(spec.prompt, production)
    budget = spec.params_dict.get("face_limit")
    parts, materials = text.build(text_plan, spec.seed, production,
                                  face_budget=int(budget) if isinstance(budget, (int, float)) and budget else None)
    matched = text_plan.archetype.name if text_plan.archetype else None
    warnings = []
    if matched is None:
        noun = text_plan.noun or spec.prompt.strip()
        warnings.append(f"local engine does not know '{noun}'; generic blockout used")
    metadata: dict[str, Any] = {"matched": matched, "engine": ENGINE_VERSION, "seed": spec.seed,
                                "modifiers": text_plan.modifiers}
    if matched and text_plan.ignored:
        metadata["ignored_words"] = text_plan.ignored  # read as neither noun nor modifier: said, not hidden
    files = _write(out_dir, "blockout", parts, materials, metadata, spec.mode, seed=spec.seed)
    return LocalResult(files, metadata, warnings)


def _texture(rgba: npt.NDArray[np.uint8], limit: int) -> npt.NDArray[np.uint8]:
    """RGB texture no larger than `limit` on its longest side."""
    height, width = rgba.shape[:2]
    if max(height, width) <= limit:
        return np.ascontiguousarray(rgba[:, :, :3])
    new_h, new_w = work_shape(height, width, limit)
    return np.clip(resample_area(rgba[:, :, :3].astype(np.float32), new_h, new_w) + 0.5, 0, 255).astype(np.uint8)


def _silhouette(rgba: npt.NDArray[np.uint8], view: str = "") -> Silhouette:
    try:
        return extract(rgba)
    except NoSubject as exc:
        where = f"{view} view: " if view else ""
        raise BackendError(exc.code, where + str(exc)) from exc


def generate_image(spec: JobSpec, rgba: npt.NDArray[np.uint8], out_dir: Path) -> LocalResult:
    """Inflate the subject's silhouette into a rounded solid with the image projected on it."""
    silhouette = _silhouette(rgba)
    result = inflate(silhouette.mask, GRID[spec.mode])
    texture = _texture(rgba, TEXTURE_SIZE[spec.mode])
    material = Material("reference", (1.0, 1.0, 1.0, 1.0), 0.0, 0.8, texture_png=encode_png(texture))
    shape = result.shape
    parts = [MeshPart(shape.positions, shape.normals, shape.uvs, shape.indices, 0)]
    metadata: dict[str, Any] = {"matched": None, "engine": ENGINE_VERSION, "mask_source": silhouette.source,
                                "grid": list(result.grid_shape), "cells": result.cells_inside}
    files = _write(out_dir, "inflated", parts, [material], metadata, spec.mode, {0: texture}, spec.seed)
    return LocalResult(files, metadata, list(silhouette.notes))


def generate_multiview(spec: JobSpec, images: dict[str, npt.NDArray[np.uint8]], out_dir: Path) -> LocalResult:
    """Carve the visual hull of two or more orthographic views."""
    unknown = set(images) - set(VIEWS)
    if unknown:
        raise BackendError("bad_view", f"unknown view name(s): {', '.join(sorted(unknown))}")
    silhouettes = {view: _silhouette(rgba, view) for view, rgba in images.items()}
    masks = {view: s.mask for view, s in silhouettes.items()}
    try:
        occupancy = carve(masks, HULL_RESOLUTION[spec.mode])
    except ValueError as exc:
        raise BackendError("bad_views", str(exc)) from exc
    side_view = "left" if "left" in images else "right"
    hull = surface(occupancy, side_view=side_view)
    materials: list[Material] = []
    parts: list[MeshPart] = []
    textures: dict[int, npt.NDArray[np.uint8]] = {}
    for piece, view in (("front", "front"), ("side", side_view)):
        shape = hull.shapes.get(piece)
        if shape is None:
            continue
        crop = _subject_crop(images[view], silhouettes[view])
        texture = _texture(crop, TEXTURE_SIZE[spec.mode] // 2)
        textures[len(materials)] = texture
        materials.append(Material(f"{view}_view", (1.0, 1.0, 1.0, 1.0), 0.0, 0.8, texture_png=encode_png(texture)))
        parts.append(MeshPart(shape.positions, shape.normals, shape.uvs, shape.indices, len(materials) - 1))
    metadata: dict[str, Any] = {"matched": None, "engine": ENGINE_VERSION, "views": sorted(images),
                                "voxels": hull.voxels, "grid": list(hull.grid)}
    files = _write(out_dir, "visual_hull", parts, materials, metadata, spec.mode, textures, spec.seed)
    notes = [note for s in silhouettes.values() for note in s.notes]
    return LocalResult(files, metadata, notes)


# ------------------------------------------------------------------ camera capture with depth (depth.py)
DEPTH_STEP = {Mode.DRAFT: 2, Mode.PRODUCTION: 1}
"""Draft builds from every second depth sample (a quarter of the work), Production from all of them."""
DEPTH_SAMPLES = {Mode.DRAFT: 24, Mode.PRODUCTION: 40}
"""Steps along each ray that place the unseen back."""


def generate_camera(spec: JobSpec, rgba: npt.NDArray[np.uint8], depth_path: str, out_dir: Path) -> LocalResult:
    """The captured subject's solid from the depth the camera measured (`depth.build`), in world units and
    world orientation, with the camera's image projected on it."""
    try:
        capture = depth_map.load(depth_path)
    except OSError as exc:
        raise BackendError("input_missing", f"the camera's depth capture is gone from the cache: {exc}") from exc
    except (ValueError, KeyError) as exc:
        raise BackendError("bad_input", f"the camera's depth capture cannot be read: {exc}") from exc
    capture = depth.downsample(capture, DEPTH_STEP[spec.mode])
    try:
        result = depth.build(capture, DEPTH_SAMPLES[spec.mode])
    except ValueError as exc:
        raise BackendError("no_subject", "the camera sees nothing to generate from (empty view)") from exc
    texture = _texture(_window_crop(rgba, capture.window), TEXTURE_SIZE[spec.mode])
    material = Material("camera", (1.0, 1.0, 1.0, 1.0), 0.0, 0.8, texture_png=encode_png(texture))
    shape = result.shape
    parts = [MeshPart(shape.positions, shape.normals, shape.uvs, shape.indices, 0)]
    metadata: dict[str, Any] = {"matched": None, "engine": ENGINE_VERSION, "mask_source": "depth",
                                "depth_samples": result.cells, "grid": list(capture.depth.shape)}
    files = _write(out_dir, "camera_depth", parts, [material], metadata, spec.mode, {0: texture}, spec.seed)
    return LocalResult(files, metadata)


def _window_crop(rgba: npt.NDArray[np.uint8], window: tuple[float, float, float, float]) -> npt.NDArray[np.uint8]:
    """The captured image cut to the depth grid's window (u, v as shares of the frame, v up)."""
    height, width = rgba.shape[:2]
    u0, u1, v0, v1 = window
    top, bottom = round((1.0 - v1) * height), round((1.0 - v0) * height)
    left, right = round(u0 * width), round(u1 * width)
    return rgba[top : max(bottom, top + 1), left : max(right, left + 1)]
# ------------------------------------------------------------------ end of camera capture with depth


def _subject_crop(rgba: npt.NDArray[np.uint8], silhouette: Silhouette) -> npt.NDArray[np.uint8]:
    """The image cropped to the subject's bounding box (the hull's UVs span exactly that box)."""
    r0, r1, c0, c1 = silhouette.bbox
    scale_r = rgba.shape[0] / silhouette.mask.shape[0]
    scale_c = rgba.shape[1] / silhouette.mask.shape[1]
    return rgba[int(r0 * scale_r) : max(int(r1 * scale_r), int(r0 * scale_r) + 1),
                int(c0 * scale_c) : max(int(c1 * scale_c), int(c0 * scale_c) + 1)]


class LocalBackend(Backend):
    name = "local"
    capabilities = Capabilities(
        cancel=True,
        durable_tasks=False,
        concurrency={"cpu": max(1, min(2, os.cpu_count() or 1))},
        typical_latency_s={"draft": 0.05, "production": 0.3},
        # The engine inflates the subject's silhouette: it needs a subject it can separate. Text has no
        # provider-side limit; Kiln keeps Tripo's so a prompt that works here works there.
        limits=InputLimits(needs_separable_subject=True, negative_prompt_max_chars=0, image_min_px=64),
    )

    def __init__(self, scratch_dir: Path | None = None, workers: int | None = None) -> None:
        if workers:
            self.capabilities = replace(self.capabilities, concurrency={"cpu": workers})
        limit = self.capabilities.concurrency["cpu"]
        self._scratch = Path(scratch_dir or tempfile.mkdtemp(prefix="kiln-local-"))
        self._pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="kiln-local")
        self._futures: dict[str, Future[LocalResult]] = {}
        self._lock = threading.Lock()

    def estimate_credits(self, spec: JobSpec) -> float:
        return 0.0

    def submit(self, spec: JobSpec, client_ref: str) -> str:
        if spec.kind not in SUPPORTED_KINDS:
            raise BackendError("unsupported_input", f"the local engine cannot do {spec.kind.value} jobs yet")
        if spec.kind is JobKind.TEXT and not spec.prompt.strip():
            raise BackendError("empty_prompt", "the prompt is empty")
        task_id = f"local-{uuid.uuid4().hex[:12]}"
        future = self._pool.submit(generate, spec, self._scratch / task_id)
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
