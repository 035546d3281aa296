"""Compare shapes in Blender: an object's silhouette rendered with Workbench through an orthographic
camera; and, for camera captures, the front-view IoUs of a result against its source object (ray cast,
both aligned on their bounds' bottom centre), with the scenes the captures are taken of."""

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


# ------------------------------------------------------------------ camera captures
RAYS = 64
"""Front-view rays per side of the compared area."""

ANGLES = {
    # The default scene's camera: above, in front and to the right, looking down at about 27 degrees.
    "default": None,
    # In front and to the left, lower down (about 14 degrees), a longer lens.
    "front_left_low": ((-5.5, -7.5, 2.3), 60.0),
}


def add_subject(kind: str) -> object:
    """The default scene with its cube, or with a cylinder or Suzanne in the cube's place."""
    import bpy

    bpy.ops.wm.read_homefile()
    if kind == "cube":
        return bpy.data.objects["Cube"]
    bpy.data.objects.remove(bpy.data.objects["Cube"])
    if kind == "cylinder":
        bpy.ops.mesh.primitive_cylinder_add(vertices=32, radius=1.0, depth=2.0)
    else:
        bpy.ops.mesh.primitive_monkey_add(size=2.0)
    return bpy.context.active_object


def aim_camera(angle: str) -> None:
    import bpy
    from mathutils import Vector

    setting = ANGLES[angle]
    if setting is None:
        return
    location, lens = setting
    camera = bpy.context.scene.camera
    camera.location = location
    camera.rotation_mode = "QUATERNION"
    camera.rotation_quaternion = (Vector((0.0, 0.0, 0.0)) - Vector(location)).to_track_quat("-Z", "Y")
    camera.data.lens = lens


def world_tree(obj: object) -> tuple[object, tuple[float, float, float], tuple[float, float, float]]:
    """A BVH of the evaluated object in world space, moved so its bounds' bottom centre is the origin,
    and its size."""
    import bpy
    from mathutils import Vector
    from mathutils.bvhtree import BVHTree

    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)  # type: ignore[attr-defined]
    mesh = evaluated.to_mesh()
    matrix = obj.matrix_world  # type: ignore[attr-defined]
    points = [matrix @ v.co for v in mesh.vertices]
    low = Vector([min(p[i] for p in points) for i in range(3)])
    high = Vector([max(p[i] for p in points) for i in range(3)])
    base = Vector(((low.x + high.x) / 2, (low.y + high.y) / 2, low.z))
    polygons = [tuple(p.vertices) for p in mesh.polygons]
    tree = BVHTree.FromPolygons([p - base for p in points], polygons)
    evaluated.to_mesh_clear()
    size = high - low
    return tree, (size.x, size.y, size.z), (base.x, base.y, base.z)


def front_intervals(tree: object, half_width: float, height: float) -> np.ndarray:
    """(RAYS, RAYS, 2): where each front-view ray (along +Y) enters and finally leaves the solid; NaN
    where it misses. Rows run up from the floor, columns left to right."""
    from mathutils import Vector

    out = np.full((RAYS, RAYS, 2), np.nan)
    for row in range(RAYS):
        z = (row + 0.5) / RAYS * height
        for col in range(RAYS):
            x = -half_width + (col + 0.5) / RAYS * 2 * half_width
            enter = tree.ray_cast(Vector((x, -100.0, z)), Vector((0.0, 1.0, 0.0)))  # type: ignore[attr-defined]
            if enter[0] is None:
                continue
            leave = tree.ray_cast(Vector((x, 100.0, z)), Vector((0.0, -1.0, 0.0)))  # type: ignore[attr-defined]
            out[row, col] = (enter[0].y, leave[0].y if leave[0] is not None else enter[0].y)
    return out


def front_view_ious(source: object, result: object) -> dict[str, float]:
    """IoUs in the front view: the silhouette; the depth map (the relief in front of a common far plane,
    which is what a depth camera in front would measure); and the whole solid (the overlap of the
    stretch each ray spends inside either, which also judges the back the capture never saw)."""
    source_tree, source_size, _ = world_tree(source)
    result_tree, result_size, _ = world_tree(result)
    half_width = max(source_size[0], result_size[0]) / 2 * 1.05
    height = max(source_size[2], result_size[2]) * 1.05
    a = front_intervals(source_tree, half_width, height)
    b = front_intervals(result_tree, half_width, height)
    hit_a, hit_b = ~np.isnan(a[..., 0]), ~np.isnan(b[..., 0])
    silhouette = float((hit_a & hit_b).sum() / max(1, (hit_a | hit_b).sum()))
    far = float(np.nanmax([np.nanmax(a[..., 1]), np.nanmax(b[..., 1])]))
    relief_a = np.where(hit_a, far - a[..., 0], 0.0)
    relief_b = np.where(hit_b, far - b[..., 0], 0.0)
    depth = float(np.minimum(relief_a, relief_b).sum() / max(1e-9, np.maximum(relief_a, relief_b).sum()))
    length_a = np.where(hit_a, a[..., 1] - a[..., 0], 0.0)
    length_b = np.where(hit_b, b[..., 1] - b[..., 0], 0.0)
    overlap = np.where(hit_a & hit_b, np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0.0)
    overlap = np.clip(np.nan_to_num(overlap), 0.0, None)
    solid = float(overlap.sum() / max(1e-9, (length_a + length_b - overlap).sum()))
    return {"silhouette": silhouette, "depth": depth, "solid": solid}
