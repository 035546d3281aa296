"""Render an object's silhouette with Blender's Workbench engine through an orthographic camera."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

RESOLUTION = 384


def render_silhouette(obj: object, view: str = "front", resolution: int = RESOLUTION) -> np.ndarray:
    """Boolean mask (top row first) of `obj` seen from the front (-Y) or the left (-X), cropped to it."""
    import bpy
    from mathutils import Vector

    scene = bpy.context.scene
    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]  # type: ignore[attr-defined]
    low = Vector([min(c[i] for c in corners) for i in range(3)])
    high = Vector([max(c[i] for c in corners) for i in range(3)])
    center = (low + high) / 2
    size = high - low
    across = size.x if view == "front" else size.y
    extent = max(across, size.z) * 1.05
    camera_data = bpy.data.cameras.new("kiln_test_camera")
    camera_data.type = "ORTHO"
    camera_data.ortho_scale = extent
    camera = bpy.data.objects.new("kiln_test_camera", camera_data)
    scene.collection.objects.link(camera)
    if view == "front":
        camera.location = (center.x, low.y - 10.0, center.z)
        camera.rotation_euler = (math.pi / 2, 0.0, 0.0)
    else:
        camera.location = (low.x - 10.0, center.y, center.z)
        camera.rotation_euler = (math.pi / 2, 0.0, -math.pi / 2)
    camera_data.clip_end = 1000.0
    scene.camera = camera
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.film_transparent = True
    scene.render.resolution_x = max(8, round(resolution * across * 1.05 / extent))
    scene.render.resolution_y = max(8, round(resolution * size.z * 1.05 / extent))
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    hidden = [o for o in scene.objects if o is not obj and o.type == "MESH" and not o.hide_render]
    for other in hidden:
        other.hide_render = True
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "silhouette.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        image = bpy.data.images.load(str(path))
        width, height = image.size
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
        bpy.data.images.remove(image)
    for other in hidden:
        other.hide_render = False
    bpy.data.objects.remove(camera)
    bpy.data.cameras.remove(camera_data)
    alpha = pixels.reshape(height, width, 4)[::-1, :, 3]
    mask = alpha > 0.5
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
