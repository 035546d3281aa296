"""Render the active camera's view to an image a backend can take as input.

The capture holds the UI (a render is main-thread work), so it is made as cheap as an image-to-3D input
allows: 768 px on the long side, and the engine's sampling turned down for the one render (Workbench
without anti-aliasing, Eevee 8 samples, Cycles 16). The backends see the subject's silhouette and
shading, not the smoothness of its edges; `bench/camera_local_bench.py` reports the capture's times. Captures
go in Kiln's cache folder (`captures/`), so they are kept for a retry, which uploads them again, and go
wherever the cache goes.

For the local engine the capture also measures depth (`capture_depth`): the camera's rays cast into the
evaluated scene on a grid over the subject. Ray casting rather than a render pass because it is exact,
needs no compositor (whose API changed between 4.2 and 5.0) and no GPU, runs the same headless, and
gives the surface normals and which object was hit for free. Cloud backends get the plain image.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..imaging.depth_map import DepthCapture, save
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


DEPTH_SIZE = 128
"""Depth samples on the long side of the window around the subject. Each is one ray cast (about 25 us):
128 is about 0.4 s for a subject filling its window, and enough for the local engine's finest solid."""

_WINDOW_MARGIN = 0.03
"""Share of the window added on each side, so the subject's outline never touches the grid's edge."""


def capture_depth(scene: bpy.types.Scene, folder: Path, size: int = DEPTH_SIZE) -> tuple[Path, float]:
    """Measure the depth the active camera sees on a grid over the subject, and write it (with the
    camera's frame and placement) as `.npz` beside the captures; returns the path and the seconds taken.
    Kiln's own results in view are looked through: a capture is of the artist's scene."""
    camera = scene.camera
    if camera is None:
        raise InputError("The scene has no active camera: add one, or set one with Ctrl+Numpad 0")
    started = time.perf_counter()
    view_layer: Any = bpy.context.view_layer
    view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    camera_data: Any = camera.data
    location, rotation, _scale = camera.matrix_world.decompose()
    # A scaled camera still casts unit rays.
    to_world = Matrix.Translation((location.x, location.y, location.z)) @ rotation.to_matrix().to_4x4()
    corners = [Vector(c) for c in camera_data.view_frame(scene=scene)]
    x_min, x_max = min(c.x for c in corners), max(c.x for c in corners)
    y_min, y_max = min(c.y for c in corners), max(c.y for c in corners)
    plane_z = corners[0].z
    perspective = camera_data.type != "ORTHO"  # panoramic cameras are cast as perspective ones
    u0, u1, v0, v1 = _subject_window(scene, to_world, (x_min, x_max, y_min, y_max), plane_z, perspective)
    window_w, window_h = (u1 - u0) * (x_max - x_min), (v1 - v0) * (y_max - y_min)
    cols = max(2, round(size * min(1.0, window_w / window_h)))
    rows = max(2, round(size * min(1.0, window_h / window_w)))
    frame = (x_min + u0 * (x_max - x_min), x_min + u1 * (x_max - x_min),
             y_min + v0 * (y_max - y_min), y_min + v1 * (y_max - y_min))
    matrix = np.array(to_world, np.float64)
    grid = DepthCapture(np.zeros((rows, cols), np.float32), matrix, frame, plane_z, perspective, (u0, u1, v0, v1))
    r, c = np.mgrid[0:rows, 0:cols] + 0.5
    near = grid.points(r, c, np.full(r.shape, 1.0))  # a point on each ray, one unit in front
    if perspective:
        origins = np.broadcast_to(matrix[:3, 3], near.shape)
        directions = near - matrix[:3, 3]
    else:
        origins = near + matrix[:3, 2].astype(np.float32)  # back onto the camera's plane
        directions = np.broadcast_to(-matrix[:3, 2], near.shape)
    directions = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    depth = np.full((rows, cols), np.inf, np.float32)
    normals = np.zeros((rows, cols, 3), np.float32)
    view_axis = -matrix[:3, 2]
    origin_list, direction_list = origins.reshape(-1, 3).tolist(), directions.reshape(-1, 3).tolist()
    clip = float(camera_data.clip_end)
    for index, (origin, direction) in enumerate(zip(origin_list, direction_list, strict=True)):
        hit = _first_hit(scene, depsgraph, origin, direction, clip)
        if hit is None:
            continue
        point, normal = hit
        row, col = divmod(index, cols)
        offset = np.subtract(point, matrix[:3, 3]) if perspective else np.subtract(point, origin)
        depth[row, col] = float(np.dot(offset, view_axis))
        normals[row, col] = normal
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"camera_{slug(camera.name, 40)}_{int(time.time() * 1000)}_depth.npz"
    save(path, DepthCapture(depth, matrix, frame, plane_z, perspective, (u0, u1, v0, v1), normals))
    return path, time.perf_counter() - started


def _first_hit(scene: bpy.types.Scene, depsgraph: bpy.types.Depsgraph, origin: list[float],
               direction: list[float], clip: float) -> tuple[tuple[float, float, float], tuple[float, ...]] | None:
    """The first surface along the ray that is not one of Kiln's results (those are looked through)."""
    start = Vector(origin)
    ray = Vector(direction)
    travelled = 0.0
    for _ in range(8):  # a few results in a row at most; past that the ray gives up
        hit, point, normal, _index, obj, _matrix = scene.ray_cast(depsgraph, start, ray, distance=clip - travelled)
        if not hit:
            return None
        if obj is None or not obj.original.get("kiln_job_id"):  # type: ignore[union-attr]
            return (point.x, point.y, point.z), (normal.x, normal.y, normal.z)
        travelled += (point - start).length + 1e-4
        start = point + ray * 1e-4
    return None


def _subject_window(scene: bpy.types.Scene, to_world: Matrix, frame: tuple[float, float, float, float],
                    plane_z: float, perspective: bool) -> tuple[float, float, float, float]:
    """The part of the frame (u0, u1, v0, v1 as shares, v up) that the bounds of the visible geometry
    cover, with a margin: the grid's samples go on the subject, not on empty sky. The whole frame when
    something reaches behind the camera (its projection would be meaningless)."""
    to_camera = to_world.inverted()
    x_min, x_max, y_min, y_max = frame
    us: list[float] = []
    vs: list[float] = []
    for obj in scene.objects:
        if obj.type not in {"MESH", "CURVE", "SURFACE", "META", "FONT"} or not obj.visible_get() \
                or obj.get("kiln_job_id"):
            continue
        for corner in obj.bound_box:
            local = to_camera @ (obj.matrix_world @ Vector(corner))
            if perspective:
                if local.z > -1e-6:
                    return (0.0, 1.0, 0.0, 1.0)
                local = local * (plane_z / local.z)
            us.append((local.x - x_min) / (x_max - x_min))
            vs.append((local.y - y_min) / (y_max - y_min))
    if not us:
        return (0.0, 1.0, 0.0, 1.0)
    u0, u1, v0, v1 = max(0.0, min(us)), min(1.0, max(us)), max(0.0, min(vs)), min(1.0, max(vs))
    if u1 <= u0 or v1 <= v0:
        return (0.0, 1.0, 0.0, 1.0)  # nothing in view: the empty grid says so
    pad_u, pad_v = (u1 - u0) * _WINDOW_MARGIN, (v1 - v0) * _WINDOW_MARGIN
    return (max(0.0, u0 - pad_u), min(1.0, u1 + pad_u), max(0.0, v0 - pad_v), min(1.0, v1 + pad_v))


def capture_folder() -> Path:
    """`captures/` in Kiln's cache folder (the artist's choice in the preferences, or the extension's
    user folder): never the system temp folder, which the OS may empty while a job still needs the file."""
    from . import runtime

    cache = runtime.scheduler().cache_dir
    return cache / "captures"
