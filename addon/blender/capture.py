"""Render the active camera's view to an image a backend can take as input."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import bpy

from ..validation import InputError
from .quiet import quiet_stdout

CAPTURE_SIZE = 1024
"""Longest side of the capture: what image backends accept without downscaling."""


def _engine_id(choice: str) -> str:
    """Eevee's identifier changed between 4.2 (BLENDER_EEVEE_NEXT) and 5.0 (BLENDER_EEVEE)."""
    if choice != "EEVEE":
        return choice
    engine_property: Any = bpy.types.RenderSettings.bl_rna.properties["engine"]
    engines = {item.identifier for item in engine_property.enum_items}
    return "BLENDER_EEVEE_NEXT" if "BLENDER_EEVEE_NEXT" in engines else "BLENDER_EEVEE"


def capture_camera(scene: bpy.types.Scene, folder: Path, engine: str = "BLENDER_WORKBENCH",
                   size: int = CAPTURE_SIZE) -> tuple[Path, float]:
    """Render the scene's camera framing to a PNG in `folder`; returns the path and the seconds taken.
    Render settings are restored afterwards, so the artist's own render setup is untouched."""
    if scene.camera is None:
        raise InputError("The scene has no active camera: add one, or set one with Ctrl+Numpad 0")
    render: Any = scene.render
    saved = {key: getattr(render, key) for key in ("engine", "resolution_x", "resolution_y",
                                                     "resolution_percentage", "filepath", "film_transparent")}
    saved_format = (render.image_settings.file_format, render.image_settings.color_mode)
    aspect = saved["resolution_x"] / max(1, saved["resolution_y"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"camera_{int(time.time() * 1000)}.png"
    started = time.perf_counter()
    try:
        render.engine = _engine_id(engine)
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
        for key, value in saved.items():
            setattr(render, key, value)
        render.image_settings.file_format, render.image_settings.color_mode = saved_format
    return path, time.perf_counter() - started


def capture_folder() -> Path:
    return Path(tempfile.gettempdir()) / "kiln_captures"
