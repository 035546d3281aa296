"""How a sandbox makes its "provider's" results: Kiln's local engine, built through the backend registry
and driven through the Backend interface as any caller would, plus the GLB edits post-processing tasks
(texture, remesh, refine) return, so a test can tell their output from the geometry it was made on."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from addon.backends import registry
from addon.backends.base import BackendError, TaskStatus
from addon.imaging.png import decode_own_png
from addon.jobs import JobKind, JobSpec, Mode
from addon.modes import PREPARED_IMAGES


def run_local_engine(spec: JobSpec, folder: Path, scratch: Path) -> dict[str, str]:
    """Run `spec` on Kiln's local engine, the (simulated) provider's GPUs; returns role → file in `folder`
    ("model", "preview"). One engine per task: a provider's GPUs do not queue behind each other the way
    the add-on's own two local workers do."""
    engine = registry.build("local", scratch_dir=scratch)
    try:
        task_id = engine.submit(spec, folder.name)
        while True:
            update = next((u for u in engine.watch([task_id], 60.0) if u.task_id == task_id), None)
            if update is not None and update.status is TaskStatus.SUCCESS:
                return engine.download(task_id, folder)
            if update is not None and update.status.is_terminal:
                raise BackendError(update.error_code, update.error_message)
    finally:
        engine.close()


def read_png(data: bytes | None) -> npt.NDArray[np.uint8] | None:
    """The pixels of a PNG Kiln encoded (what Kiln uploads), or None for anything else: the sandbox has
    no general image decoder, and needs none to stand in for a provider."""
    try:
        return decode_own_png(data or b"")
    except (ValueError, KeyError, struct.error, zlib.error):
        return None


def image_spec(image: bytes | None, prepared: Path, mode: Mode) -> JobSpec:
    """An image job for the local engine from an uploaded image: Kiln's own PNGs are read, anything else
    becomes a black square (the engine reads the RGBA arrays Kiln prepares, as in the add-on, so the
    array is saved to `prepared`)."""
    rgb = read_png(image)
    if rgb is None:
        rgb = np.zeros((64, 64, 3), np.uint8)
    rgba = np.concatenate([rgb[:, :, :3], np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=2) \
        if rgb.shape[2] == 3 else rgb
    np.save(prepared, rgba)
    return JobSpec(kind=JobKind.IMAGE, backend="local", mode=mode,
                   params=JobSpec.make_params({PREPARED_IMAGES: (str(prepared),)}))


class ResultCache(dict[Any, tuple[bytes, bytes]]):
    """(model, preview) made once per key (kind, prompt, texture…) instead of once per task: the sandbox
    shares two cores with Kiln, and a real provider's GPUs would not slow Kiln down. Tasks with the same
    key wait for the first one's result rather than all making it at once. A dict, so a test can fill it
    with results made beforehand."""

    def __init__(self) -> None:
        super().__init__()
        self._locks: dict[Any, threading.Lock] = {}
        self._guard = threading.Lock()

    def made(self, key: Any, make: Callable[[], tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self:
                self[key] = make()
            return self[key]


def edit_glb_json(glb: bytes, edit: Callable[[dict[str, Any]], None], extra_bin: bytes = b"") -> bytes:
    """The GLB with its JSON chunk changed by `edit` and `extra_bin` appended to its binary chunk (at a
    4-byte aligned offset, returned to `edit` as document["_extra_offset"]); the geometry is untouched."""
    json_length = int.from_bytes(glb[12:16], "little")
    document = json.loads(glb[20 : 20 + json_length])
    rest = glb[20 + json_length :]
    binary = b""
    if len(rest) >= 8 and rest[4:8] == b"BIN\0":
        binary = rest[8 : 8 + int.from_bytes(rest[:4], "little")]
    if extra_bin:
        binary += b"\0" * (-len(binary) % 4)
        document["_extra_offset"] = len(binary)
        binary += extra_bin
    edit(document)
    document.pop("_extra_offset", None)
    if binary and document.get("buffers"):
        document["buffers"][0]["byteLength"] = len(binary)
    chunk = json.dumps(document, separators=(",", ":")).encode()
    chunk += b" " * (-len(chunk) % 4)
    binary += b"\0" * (-len(binary) % 4)
    parts = [struct.pack("<I4s", len(chunk), b"JSON"), chunk]
    if binary:
        parts += [struct.pack("<I4s", len(binary), b"BIN\0"), binary]
    body = b"".join(parts)
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def retextured(glb: bytes, prompt: str) -> bytes:
    """The model with its materials renamed after the texture prompt: what a texture task returns here,
    so a test can tell the textured model from the geometry it was made on."""
    def rename(document: dict[str, Any]) -> None:
        for material in document.get("materials", []):
            material["name"] = f"{material.get('name', 'material')} textured: {prompt}"[:120]

    return edit_glb_json(glb, rename)


def with_texture(glb: bytes, png: bytes, label: str) -> bytes:
    """The same geometry with `png` embedded as every material's base colour texture (and the materials
    renamed after `label`): a refine's or retexture's textured version of a preview's mesh."""
    def texture(document: dict[str, Any]) -> None:
        views = document.setdefault("bufferViews", [])
        views.append({"buffer": 0, "byteOffset": document["_extra_offset"], "byteLength": len(png)})
        images = document.setdefault("images", [])
        images.append({"bufferView": len(views) - 1, "mimeType": "image/png"})
        samplers = document.setdefault("samplers", [{"magFilter": 9729, "minFilter": 9987}])
        textures = document.setdefault("textures", [])
        textures.append({"source": len(images) - 1, "sampler": len(samplers) - 1})
        for material in document.get("materials", []):
            material["name"] = f"{material.get('name', 'material')} textured: {label}"[:120]
            pbr = material.setdefault("pbrMetallicRoughness", {})
            pbr["baseColorTexture"] = {"index": len(textures) - 1}
            pbr["baseColorFactor"] = [1.0, 1.0, 1.0, 1.0]

    return edit_glb_json(glb, texture, png)


def with_extras(glb: bytes, extras: dict[str, Any]) -> bytes:
    """The model with `extras` merged into its first node's extras (what a remesh was asked for)."""
    def merge(document: dict[str, Any]) -> None:
        nodes = document.setdefault("nodes", [{}])
        nodes[0].setdefault("extras", {}).update(extras)

    return edit_glb_json(glb, merge)
