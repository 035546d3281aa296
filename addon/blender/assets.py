"""Mark imported results as assets: preview, tags, description and a catalog per batch."""

from __future__ import annotations

import logging
import re
import zlib
from pathlib import Path

import bpy
import numpy as np
import numpy.typing as npt

from ..catalogs import catalog_id, write_catalogs
from ..imaging.png import decode_own_png
from .results import JOB_ID

_log = logging.getLogger(__name__)
_TAG_STOP = {"a", "an", "the", "with", "of", "and", "in", "on", "for", "made", "from", "to", "by"}


def prompt_tags(prompt: str, mode: str, backend: str) -> list[str]:
    words = [w for w in re.findall(r"[a-z][a-z\-]+", prompt.lower()) if w not in _TAG_STOP]
    tags = ["kiln", mode, backend, *dict.fromkeys(words)]
    return tags[:12]


def mark_asset(obj: bpy.types.Object, *, batch: str, prompt: str, mode: str, backend: str,
               preview: str | None) -> None:
    """Mark `obj` as an asset in its batch's catalog, with the provider's preview when there is one."""
    obj.asset_mark()
    data = obj.asset_data
    if data is None:
        return
    data.description = prompt
    data.catalog_id = catalog_id(batch)
    for tag in prompt_tags(prompt, mode, backend):
        if tag not in data.tags:
            data.tags.new(tag)
    if preview and Path(preview).is_file() and set_preview_from_file(obj, Path(preview)):
        return
    if not bpy.app.background:
        obj.asset_generate_preview()  # needs a GPU context, so only in the UI


def set_preview_from_file(obj: bpy.types.Object, path: Path) -> bool:
    """Use an image file as the ID's preview by writing its pixels, rather than through
    `ed.lib_id_load_custom_preview`, which crashed Blender 5.0 intermittently in background mode."""
    pixels, width, height = _read_rgba_bottom_up(path)
    if not width or not height:
        return False
    preview = obj.preview_ensure()
    if preview is None:
        return False
    preview.image_size = (width, height)  # type: ignore[assignment]  # stubs type it as the array it becomes
    preview.image_pixels_float.foreach_set(pixels)  # type: ignore[arg-type]  # numpy buffers are accepted
    return True


def _read_rgba_bottom_up(path: Path) -> tuple[npt.NDArray[np.float32], int, int]:
    """Float RGBA pixels, bottom row first (Blender's order). The local engine's own PNGs decode in
    numpy (a third of the time); anything else goes through Blender's image loader."""
    try:
        rgb = decode_own_png(path.read_bytes())
    except (ValueError, KeyError, OSError, zlib.error):
        image = bpy.data.images.load(str(path), check_existing=False)
        try:
            width, height = (int(v) for v in image.size)  # type: ignore[attr-defined]
            pixels = np.empty(width * height * 4, np.float32)
            if width and height:
                image.pixels.foreach_get(pixels)
            return pixels, width, height
        finally:
            bpy.data.images.remove(image)
    height, width = rgb.shape[:2]
    rgba = np.ones((height, width, 4), np.float32)
    rgba[:, :, : min(3, rgb.shape[2])] = rgb[::-1, :, :3] / 255.0
    return rgba.ravel(), width, height


def write_catalogs_beside_blend(batches: list[str]) -> Path | None:
    """Write the batch catalogs next to the saved .blend; None while the file has never been saved
    (Blender has no folder for them yet; the save handler writes them then)."""
    if not bpy.data.filepath:
        return None
    return write_catalogs(Path(bpy.data.filepath).parent, batches)


def batches_in_file() -> list[str]:
    """The batches that have a Kiln asset in this file ("" for drafts, only when a draft is there): a
    catalog is written for each, and for nothing else (no empty "Drafts" before any draft exists)."""
    return sorted({str(o.get("kiln_batch") or "") for o in bpy.data.objects
                   if o.get(JOB_ID) and o.asset_data is not None})


UNSAVED_HINT = "Save the .blend to file results in the Asset Browser catalogs"


def catalog_hint() -> str | None:
    """One line for the Result panel while Kiln's assets have no catalogs yet, or None.

    Blender keeps asset catalogs in `blender_assets.cats.txt` beside the .blend, so a file that was never
    saved has nowhere to keep them: its results show in the Asset Browser under "Unassigned" until the
    first save writes the catalogs (`runtime`'s save handler)."""
    if bpy.data.filepath:
        return None
    return UNSAVED_HINT if batches_in_file() else None
