"""Reference images in: read with Blender's own image loader on the main thread, checked, and stored as
RGBA arrays the engine's worker threads can read without `bpy`.

Every check happens here, before a job is queued, so a bad image costs nothing on any backend: a
missing, empty, unreadable or corrupt file, or, after the pre-flight (`addon/preflight.py`) on the pixels
the backend will receive, whatever the chosen backend cannot use (a busy photo for the local engine).
What it could use but may regret comes back as findings, for the artist to decide. Large images are
downscaled, and the note says so; images too large to decode safely (a 48 KB PNG may declare 20000 x
20000 px) are refused from their header (`imaging.header`), before Blender allocates anything.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from .. import preflight
from ..backends.base import InputLimits
from ..imaging.header import HeaderError, ImageTooLarge, check_image
from ..validation import InputError

_log = logging.getLogger(__name__)

MAX_INPUT_PX = 2048
"""Longest side kept. Larger images are downscaled: no backend gains from more for a silhouette,
and a 4K RGBA float buffer costs 256 MB."""


# Leading bytes of the formats artists use, to tell "not an image" from "a damaged image".
_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"BM", b"II*\x00", b"MM\x00*", b"v/1\x01", b"#?RADIANCE",
               b"\x00\x00\x00\x0cjP", b"\x00\x00\x00")


def looks_like_image(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(16)
    return head.startswith(_SIGNATURES) or path.suffix.lower() == ".tga"


def check_dimensions(source: Path) -> None:
    """Refuse, from the file's header, an image too large to decode (Kiln's limits are in
    `imaging.header`); Blender has not touched the file yet."""
    name = source.name
    try:
        check_image(source)
    except ImageTooLarge as exc:
        raise InputError(f"'{name}' is {exc}") from None
    except HeaderError as exc:
        raise InputError(f"'{name}' could not be decoded: the file is corrupt or truncated ({exc})") from None
    except OSError as exc:
        raise InputError(f"'{name}' cannot be read: {exc.strerror or exc}") from None


@dataclass
class PreparedImage:
    source: str
    prepared: str
    width: int
    height: int
    notes: list[str] = field(default_factory=list)
    findings: list[preflight.Finding] = field(default_factory=list)
    """The pre-flight's warnings and tips for this image on the chosen backend (errors were raised)."""


SEPARABLE = InputLimits(needs_separable_subject=True)
"""The strictest limits (the local engine's): what an image is checked against when no backend is named."""


def prepare_image(path: str | Path, cache_dir: Path, max_px: int = MAX_INPUT_PX,
                  limits: InputLimits = SEPARABLE, backend_label: str = "Local") -> PreparedImage:
    """Read `path` with Blender, downscale past `max_px`, run the pre-flight for a backend with `limits`
    (a hard error raises InputError), save the pixels as `.npy`."""
    source = Path(path)
    name = source.name
    if not source.is_file():
        raise InputError(f"'{name}' does not exist")
    size = source.stat().st_size
    if size == 0:
        raise InputError(f"'{name}' is empty (0 bytes)")
    digest = hashlib.sha1(f"{source.resolve()}|{size}|{source.stat().st_mtime_ns}|{max_px}".encode()).hexdigest()
    check_dimensions(source)
    try:
        image = bpy.data.images.load(str(source), check_existing=False)
    except RuntimeError as exc:
        raise InputError(f"'{name}' is not an image Blender can read") from exc
    notes: list[str] = []
    try:
        width, height = (int(v) for v in image.size)  # type: ignore[attr-defined]  # stubs miss __iter__
        if width == 0 or height == 0 or not image.has_data:
            if looks_like_image(source):
                raise InputError(f"'{name}' could not be decoded: the file is corrupt or truncated")
            raise InputError(f"'{name}' is not an image file Blender can read")
        if max(width, height) > max_px:
            factor = max_px / max(width, height)
            new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
            image.scale(new_w, new_h)
            notes.append(f"'{name}' is {width}x{height}; downscaled to {new_w}x{new_h} (limit {max_px} px)")
            width, height = new_w, new_h
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    # Blender stores the bottom row first; the engine works top row first, as image files do.
    rgba = np.clip(pixels.reshape(height, width, 4)[::-1] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    findings, _ = preflight.check_image(rgba, limits, name=f"'{name}'", backend_label=backend_label)
    hard = preflight.errors(findings)
    if hard:
        raise InputError(f"'{name}': {hard[0].line}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{digest}.npy"
    np.save(target, rgba)
    return PreparedImage(str(source), str(target), width, height, notes, findings)
