"""A contact sheet: one Workbench render per asset, its name burnt in, laid out in a grid PNG."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import bpy
import numpy as np
import numpy.typing as npt
from mathutils import Vector

from ..backends.local.png import encode_png

TILE = 256


def grid_shape(count: int) -> tuple[int, int]:
    """(columns, rows) for `count` tiles: as square as possible."""
    columns = max(1, math.ceil(math.sqrt(count)))
    return columns, max(1, math.ceil(count / columns))


def _tile(scene: bpy.types.Scene, objects: list[bpy.types.Object], name: str,
          folder: Path) -> npt.NDArray[np.uint8]:
    for obj in objects:
        scene.collection.objects.link(obj)
    camera_data = bpy.data.cameras.new("kiln_sheet_camera")
    camera = bpy.data.objects.new("kiln_sheet_camera", camera_data)
    scene.collection.objects.link(camera)
    try:
        corners = [obj.matrix_world @ Vector(c) for obj in objects for c in obj.bound_box]
        centre = sum(corners, Vector()) / len(corners)
        radius = max((c - centre).length for c in corners) or 1.0
        direction = Vector((0.55, -1.0, 0.5)).normalized()
        camera_data.type = "ORTHO"
        camera_data.ortho_scale = radius * 2.3
        camera_data.clip_end = radius * 40
        camera.location = centre + direction * radius * 10
        camera.rotation_euler = (-direction).to_track_quat("-Z", "Y").to_euler()
        scene.camera = camera
        scene.render.stamp_note_text = name
        path = folder / f"tile_{len(list(folder.iterdir()))}.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True, scene=scene.name)
        image = bpy.data.images.load(str(path))
        try:
            width, height = (int(v) for v in image.size)  # type: ignore[attr-defined]
            pixels = np.empty(width * height * 4, np.float32)
            image.pixels.foreach_get(pixels)
        finally:
            bpy.data.images.remove(image)
        return (np.clip(pixels.reshape(height, width, 4)[::-1, :, :3], 0, 1) * 255 + 0.5).astype(np.uint8)
    finally:
        for obj in objects:
            scene.collection.objects.unlink(obj)
        bpy.data.objects.remove(camera)
        bpy.data.cameras.remove(camera_data)


def render_contact_sheet(items: list[tuple[str, list[bpy.types.Object]]], path: Path,
                         tile: int = TILE) -> dict[str, int]:
    """Render `items` (name, the mesh objects that show it) into a grid PNG at `path`; returns its layout."""
    columns, rows = grid_shape(len(items))
    sheet = np.full((rows * tile, columns * tile, 3), 40, np.uint8)
    scene = bpy.data.scenes.new("kiln_contact_sheet")
    try:
        render: Any = scene.render  # the stubs list only one engine name
        render.engine = "BLENDER_WORKBENCH"
        display: Any = scene.display
        display.shading.light = "STUDIO"
        display.shading.color_type = "TEXTURE"  # image textures where there are some, colours elsewhere
        scene.render.resolution_x = scene.render.resolution_y = tile
        scene.render.resolution_percentage = 100
        scene.render.image_settings.file_format = "PNG"
        scene.render.use_stamp = True
        for flag in ("date", "time", "render_time", "frame", "frame_range", "memory", "hostname", "camera",
                     "lens", "scene", "marker", "filename", "sequencer_strip", "marker"):
            setattr(scene.render, f"use_stamp_{flag}", False)
        scene.render.use_stamp_note = True
        scene.render.stamp_font_size = 14
        with tempfile.TemporaryDirectory() as folder:
            for number, (name, objects) in enumerate(items):
                pixels = _tile(scene, objects, name, Path(folder))
                row, column = divmod(number, columns)
                sheet[row * tile:(row + 1) * tile, column * tile:(column + 1) * tile] = pixels[:tile, :tile]
    finally:
        bpy.data.scenes.remove(scene)
    tmp = path.with_suffix(".png.part")
    tmp.write_bytes(encode_png(sheet))
    tmp.replace(path)
    return {"columns": columns, "rows": rows, "tile": tile, "width": columns * tile, "height": rows * tile}
