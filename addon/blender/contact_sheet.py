"""A contact sheet: one Workbench render per asset, its name burnt in, laid out in a grid PNG."""

from __future__ import annotations

import ctypes.util
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import bpy
import numpy as np
import numpy.typing as npt
from mathutils import Vector

from ..imaging.font import burn_text
from ..imaging.glb import Material, MeshPart
from ..imaging.png import encode_png
from ..imaging.preview import render_preview

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


def gpu_available() -> bool:
    """Whether Workbench can render here. In background mode on Linux Blender draws through EGL; a
    farm node without libEGL would abort the whole process on the first render, so look first."""
    forced = os.environ.get("KILN_CONTACT_SHEET", "")
    if forced in ("software", "workbench"):
        return forced == "workbench"
    if not bpy.app.background or sys.platform != "linux":
        return True
    return ctypes.util.find_library("EGL") is not None


def _software_tile(objects: list[bpy.types.Object], name: str, tile: int) -> npt.NDArray[np.uint8]:
    """The engine's numpy renderer, for machines with no GPU: same framing idea, flat material colours."""
    parts: list[MeshPart] = []
    materials: list[Material] = []
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for obj in objects:
        evaluated = obj.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        if mesh is None:
            continue
        try:
            mesh.calc_loop_triangles()
            count = len(mesh.vertices)
            coords = np.empty(count * 3, np.float32)
            mesh.vertices.foreach_get("co", coords)
            world = np.array(obj.matrix_world, np.float32)
            points = coords.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
            triangles = np.empty(len(mesh.loop_triangles) * 3, np.int32)
            mesh.loop_triangles.foreach_get("vertices", triangles)
            slots = np.empty(len(mesh.loop_triangles), np.int32)
            mesh.loop_triangles.foreach_get("material_index", slots)
            for slot_index in np.unique(slots):
                chosen = triangles.reshape(-1, 3)[slots == slot_index]
                material = obj.material_slots[slot_index].material if slot_index < len(obj.material_slots) else None
                materials.append(Material(material.name if material else "default", _base_colour(material)))
                parts.append(MeshPart(points, np.zeros_like(points), np.zeros((count, 2), np.float32),
                                      chosen.astype(np.uint32), len(materials) - 1))
        finally:
            evaluated.to_mesh_clear()
    pixels = render_preview(parts, materials, size=tile)
    burn_text(pixels, name, y=tile - 16)
    return pixels


def _base_colour(material: bpy.types.Material | None) -> tuple[float, float, float, float]:
    if material is None:
        return (0.8, 0.8, 0.8, 1.0)
    tree = material.node_tree
    for node in tree.nodes if tree else ():
        image = getattr(node, "image", None)
        if isinstance(image, bpy.types.Image) and image.has_data:
            width, height = (int(v) for v in image.size)  # type: ignore[attr-defined]
            pixels = np.empty(width * height * 4, np.float32)
            image.pixels.foreach_get(pixels)
            mean = pixels.reshape(-1, 4)[:, :3].mean(axis=0)
            return (float(mean[0]), float(mean[1]), float(mean[2]), 1.0)
    colour: Any = material.diffuse_color  # a 4-float array; the stubs do not say it is indexable
    return (float(colour[0]), float(colour[1]), float(colour[2]), 1.0)


def render_contact_sheet(items: list[tuple[str, list[bpy.types.Object]]], path: Path,
                         tile: int = TILE) -> dict[str, int | str]:
    """Render `items` (name, the mesh objects that show it) into a grid PNG at `path`; returns its layout."""
    columns, rows = grid_shape(len(items))
    sheet = np.full((rows * tile, columns * tile, 3), 40, np.uint8)
    if not gpu_available():
        for number, (name, objects) in enumerate(items):
            row, column = divmod(number, columns)
            sheet[row * tile:(row + 1) * tile, column * tile:(column + 1) * tile] = _software_tile(objects, name, tile)
        _write_png(sheet, path)
        return {"columns": columns, "rows": rows, "tile": tile, "width": columns * tile, "height": rows * tile,
                "renderer": "software"}
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
    _write_png(sheet, path)
    return {"columns": columns, "rows": rows, "tile": tile, "width": columns * tile, "height": rows * tile,
            "renderer": "workbench"}


def _write_png(pixels: npt.NDArray[np.uint8], path: Path) -> None:
    tmp = path.with_suffix(".png.part")
    tmp.write_bytes(encode_png(pixels))
    tmp.replace(path)
