"""Render the active camera's view to an image a backend can take as input.

The capture holds the UI (a render is main-thread work), so it is made as cheap as an image-to-3D input
allows: 768 px on the long side, and the engine's sampling turned down for the one render (Workbench
without anti-aliasing, Eevee 8 samples, Cycles 16). The backends see the subject's silhouette and
shading, not the smoothness of its edges; `bench/capture_bench.py` measures what that saves. Captures
go in Kiln's cache folder (`captures/`), so they are kept for a retry, which uploads them again, and go
wherever the cache goes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import bpy

from ..naming import slug
from ..validation import InputError
from .quiet import quiet_stdout

CAPTURE_SIZE = 768
"""Longest side of the capture. Open image-to-3D models condition on about 512 px (TRELLIS 518, Hunyuan3D
512); 768 leaves room for a subject that fills only part of the frame, at under 60 % of the pixels of
1024."""

CAPTURE_SAMPLES: dict[str, tuple[str, str, object]] = {
    "BLENDER_WORKBENCH": ("display", "render_aa", "OFF"),
    "BLENDER_EEVEE": ("eevee", "taa_render_samples", 8),
    "BLENDER_EEVEE_NEXT": ("eevee", "taa_render_samples", 8),
    "CYCLES": ("cycles", "samples", 16),
}
"""Per engine: the scene settings owner, the sampling setting and its value for a capture."""


def _engine_id(choice: str) -> str:
    """Eevee's identifier changed between 4.2 (BLENDER_EEVEE_NEXT) and 5.0 (BLENDER_EEVEE)."""
    if choice != "EEVEE":
        return choice
    engine_property: Any = bpy.types.RenderSettings.bl_rna.properties["engine"]
    engines = {item.identifier for item in engine_property.enum_items}
    return "BLENDER_EEVEE_NEXT" if "BLENDER_EEVEE_NEXT" in engines else "BLENDER_EEVEE"


def capture_camera(scene: bpy.types.Scene, folder: Path, engine: str = "BLENDER_WORKBENCH",
                   size: int | None = None) -> tuple[Path, float]:
    """Render the scene's camera framing to a PNG in `folder`; returns the path and the seconds taken.
    Render settings are restored afterwards, so the artist's own render setup is untouched."""
    if scene.camera is None:
        raise InputError("The scene has no active camera: add one, or set one with Ctrl+Numpad 0")
    render: Any = scene.render
    saved = {key: getattr(render, key) for key in ("engine", "resolution_x", "resolution_y",
                                                     "resolution_percentage", "filepath", "film_transparent")}
    saved_format = (render.image_settings.file_format, render.image_settings.color_mode)
    engine_id = _engine_id(engine)
    owner_name, setting, value = CAPTURE_SAMPLES.get(engine_id, ("", "", None))
    owner = getattr(scene, owner_name, None) if owner_name else None  # `cycles` only while Cycles is enabled
    saved_samples = getattr(owner, setting) if owner is not None else None
    aspect = saved["resolution_x"] / max(1, saved["resolution_y"])
    size = size or CAPTURE_SIZE
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"camera_{slug(scene.camera.name, 40)}_{int(time.time() * 1000)}.png"
    started = time.perf_counter()
    try:
        render.engine = engine_id
        if owner is not None:
            setattr(owner, setting, value)
        render.resolution_x = size if aspect >= 1 else round(size * aspect)
        render.resolution_y = round(size / aspect) if aspect >= 1 else size
        render.resolution_percentage = 100
        render.film_transparent = True  # the subject's mask comes from alpha: no background guessing
        render.image_settings.file_format = "PNG"
        render.image_settings.color_mode = "RGBA"
        render.filepath = str(path)
        with quiet_stdout():
            bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        for key, kept in saved.items():
            setattr(render, key, kept)
        render.image_settings.file_format, render.image_settings.color_mode = saved_format
        if owner is not None:
            setattr(owner, setting, saved_samples)
    return path, time.perf_counter() - started


def capture_folder() -> Path:
    """`captures/` in Kiln's cache folder (the artist's choice in the preferences, or the extension's
    user folder): never the system temp folder, which the OS may empty while a job still needs the file."""
    from . import runtime

    cache = runtime.scheduler().cache_dir or runtime.user_folder(runtime.current_package(), "results")
    return cache / "captures"
