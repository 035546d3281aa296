"""Where results land in the scene: the bpy half of addon/placement.py.

This module only gathers boxes (every visible object's world bounds, the result's own) and applies
the location the pure rules choose:
- drafts and batch options line up in rows in free space near the 3D cursor; each row remembers the
  cursor it started from (`kiln_row_anchor`), so a moved cursor starts a new row there;
- a camera result stands beside the subject its camera saw, turned to face that camera;
- anything that was put somewhere else first (a promoted draft's place, a growing parts group, a
  finished asset) stays where it is when that is free, and otherwise slides right until it is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import bpy
import numpy as np
import numpy.typing as npt
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from ..jobs import Job, JobKind
from ..placement import (
    GAP,
    ROW,
    Box,
    Row,
    any_heading,
    facing_angle,
    place_beside,
    place_in_row,
    slide_to_free,
    translate,
    union,
)
from ..requests import BESIDE, CAPTURE
from .capture import capture_folder
from .results import results_of

_log = logging.getLogger(__name__)

ROW_ANCHOR = "kiln_row_anchor"
"""The 3D cursor location a result's row started from."""


GEOMETRY_TYPES = frozenset({"MESH", "CURVE", "CURVES", "SURFACE", "META", "FONT", "VOLUME", "POINTCLOUD",
                            "GREASEPENCIL"})
"""Object types with a surface of their own. Cameras, lights and plain empties have none, so nothing
keeps clear of them; image empties (reference images) are measured separately."""

_SAME_ANCHOR_M = 1e-4


def world_box(obj: bpy.types.Object) -> Box | None:
    """`obj`'s axis-aligned bounds in world space, or None when it has no geometry to bump into.
    Uses the evaluated bounds (`bound_box`), so modifiers count; call `view_layer.update()` first."""
    if obj.type in GEOMETRY_TYPES:
        corners = np.array([tuple(c) for c in obj.bound_box], np.float64)
    elif obj.type == "EMPTY" and obj.empty_display_type == "IMAGE" and obj.data is not None:
        corners = _image_quad(obj)
    else:
        return None
    matrix = np.array(obj.matrix_world, np.float64)
    world = corners @ matrix[:3, :3].T + matrix[:3, 3]
    low, high = world.min(axis=0), world.max(axis=0)
    return (float(low[0]), float(low[1]), float(low[2])), (float(high[0]), float(high[1]), float(high[2]))


def _image_quad(obj: bpy.types.Object) -> npt.NDArray[np.float64]:
    """The corners of a reference image as Blender draws it: the longer side `empty_display_size`
    long, shifted by `empty_image_offset` (-0.5, -0.5 centres it), flat in the empty's XY plane."""
    width, height = (int(v) for v in getattr(obj.data, "size", (1, 1)))
    offset_x, offset_y = (float(v) for v in obj.empty_image_offset)  # type: ignore[attr-defined]  # stubs miss __iter__
    aspect_x, aspect_y = (1.0, height / width) if width >= height and width else (width / max(1, height), 1.0)
    size = obj.empty_display_size
    xs = (offset_x * aspect_x * size, (offset_x + 1) * aspect_x * size)
    ys = (offset_y * aspect_y * size, (offset_y + 1) * aspect_y * size)
    return np.array([(x, y, 0.0) for x in xs for y in ys], np.float64)


def scene_boxes(exclude: Iterable[bpy.types.Object] = ()) -> list[Box]:
    """World bounds of every visible object with geometry, `exclude` left out."""
    view_layer = bpy.context.view_layer
    if view_layer is None:
        return []
    view_layer.update()  # results imported earlier in this pump call have no bounds before this
    skip = set(exclude)
    boxes = []
    for obj in view_layer.objects:
        if obj in skip or not obj.visible_get():
            continue
        box = world_box(obj)
        if box is not None:
            boxes.append(box)
    return boxes


def _members(root: bpy.types.Object) -> list[bpy.types.Object]:
    return [root, *root.children_recursive]


def asset_box(root: bpy.types.Object) -> Box | None:
    """World bounds of what shows of an asset: the root and its visible descendants (LOD1… are hidden)."""
    return union(box for obj in _members(root) if obj.visible_get() and (box := world_box(obj)) is not None)


def _local_box(root: bpy.types.Object) -> Box | None:
    box = asset_box(root)
    if box is None:
        return None
    location = root.matrix_world.translation
    return translate(box, (-location.x, -location.y, -location.z))


def _anchor_of(obj: bpy.types.Object) -> tuple[float, float, float] | None:
    """The row anchor an asset root carries, or its (first) result carries once finished."""
    for source in (obj, *results_of(obj)[:1]):
        value = source.get(ROW_ANCHOR)
        if value is not None and len(value) == 3:
            return (float(value[0]), float(value[1]), float(value[2]))
    return None


def _option_of(obj: bpy.types.Object) -> int:
    source = obj if obj.get("kiln_option") is not None else next(iter(results_of(obj)), obj)
    return int(source.get("kiln_option", 0))


def _cursor() -> tuple[float, float, float]:
    scene = bpy.context.scene
    if scene is None:
        return (0.0, 0.0, 0.0)
    location = scene.cursor.location
    return (location.x, location.y, location.z)


def place_in_row_of(root: bpy.types.Object, collection: bpy.types.Collection, option: int | None) -> None:
    """Put a new asset in its row near the 3D cursor: drafts share one row (`option` None), a batch has
    one per option. The row is the one started from the cursor's current place, or a new one there."""
    anchor = _cursor()
    obstacles = scene_boxes(exclude=_members(root))
    local = _local_box(root)
    if local is None:
        root.location = anchor
        return
    members = []
    for obj in collection.objects:
        if obj is root or obj.parent is not None or not obj.visible_get():
            continue
        row_anchor = _anchor_of(obj)
        if row_anchor is None or math.dist(row_anchor, anchor) > _SAME_ANCHOR_M:
            continue
        if option is None or _option_of(obj) == option:
            members.append(obj)
    root.location = place_in_row(obstacles, local, anchor, _row(members))
    root[ROW_ANCHOR] = anchor


def _row(members: list[bpy.types.Object]) -> Row | None:
    boxes = [box for obj in members if (box := asset_box(obj)) is not None]
    if not boxes:
        return None
    first = min(members, key=lambda o: o.location.x)
    return Row(y=first.location.y, z=first.location.z, right=max(b[1][0] for b in boxes))


def settle(root: bpy.types.Object) -> None:
    """Leave an asset where it is when that is free; otherwise slide it right (+X) until it is."""
    obstacles = scene_boxes(exclude=_members(root))
    local = _local_box(root)
    if local is None:
        return
    location = root.location
    start = (location.x, location.y, location.z)
    new = slide_to_free(obstacles, local, start, ROW)
    if new != start:
        root.location = new


def capture_of(job: Job) -> tuple[bpy.types.Object, list[str] | None] | None:
    """The camera a camera job captured and the names of the objects it captured (None: not recorded),
    or None for any other job.

    The spec's `capture` parameter names both. Without it, a job whose image is a Kiln capture is still
    recognised: its camera is then the scene's, and its subject is what that camera sees now."""
    params = job.spec.params_dict
    capture = params.get(CAPTURE)
    if capture is None:
        images = job.spec.image_paths
        if job.spec.kind is not JobKind.IMAGE or not images or Path(images[0]).parent != capture_folder():
            return None
        info: dict[str, object] = {}
    else:
        info = dict(capture)
    scene = bpy.context.scene
    camera = bpy.data.objects.get(str(info.get("camera", ""))) or (scene.camera if scene is not None else None)
    if camera is None or camera.type != "CAMERA":
        return None
    names = info.get("objects")
    return camera, [str(n) for n in names] if isinstance(names, tuple | list) else None


def objects_in_view(scene: bpy.types.Scene, camera: bpy.types.Object,
                    exclude: Iterable[bpy.types.Object] = ()) -> list[bpy.types.Object]:
    """Visible objects with geometry whose bounds reach into the camera's frame, in front of it."""
    view_layer = bpy.context.view_layer
    if view_layer is None:
        return []
    skip = set(exclude)
    seen = []
    for obj in view_layer.objects:
        if obj in skip or not obj.visible_get():
            continue
        box = world_box(obj)
        if box is None:
            continue
        corners = [world_to_camera_view(scene, camera, Vector((x, y, z)))
                   for x in (box[0][0], box[1][0]) for y in (box[0][1], box[1][1]) for z in (box[0][2], box[1][2])]
        ahead = [c for c in corners if c.z > 0]
        if ahead and min(c.x for c in ahead) < 1 and max(c.x for c in ahead) > 0 \
                and min(c.y for c in ahead) < 1 and max(c.y for c in ahead) > 0:
            seen.append(obj)
    return seen


def place_for_camera(root: bpy.types.Object, camera: bpy.types.Object, subject_names: list[str] | None) -> bool:
    """Stand the result upright beside what the camera captured, turned to face the camera (its front,
    -Y, towards the lens). Returns False when there is no subject with bounds to stand beside."""
    scene = bpy.context.scene
    members = _members(root)
    obstacles = scene_boxes(exclude=members)  # first: brings every matrix and bound up to date
    subject: list[bpy.types.Object]
    if subject_names is not None:
        subject = [bpy.data.objects[name] for name in subject_names if name in bpy.data.objects]
    else:
        subject = objects_in_view(scene, camera, exclude=members) if scene is not None else []
    subject_box = union(box for obj in subject if obj not in members and (box := asset_box(obj)) is not None)
    local = _local_box(root)
    if subject_box is None or local is None:
        return False
    axes = camera.matrix_world.to_3x3()
    right = axes @ Vector((1.0, 0.0, 0.0))
    if math.hypot(right.x, right.y) < 1e-6:  # a camera rolled on its side: its up is sideways
        right = axes @ Vector((0.0, 1.0, 0.0))
    location = place_beside(obstacles, any_heading(local), subject_box, (right.x, right.y, 0.0))
    lens = camera.matrix_world.translation
    root.location = location
    root.rotation_mode = "XYZ"  # glTF imports come in quaternion mode, which ignores rotation_euler
    root.rotation_euler = (0.0, 0.0, facing_angle(location, (lens.x, lens.y, lens.z)))
    return True


def place_beside_objects(root: bpy.types.Object, names: Sequence[str], option: int) -> bool:
    """Beside the objects it was made from (its reference images), on their base, towards +X; options
    further along. Returns False when none of them is in the scene any more."""
    members = _members(root)
    obstacles = scene_boxes(exclude=members)
    boxes: list[Box] = []
    for name in names:
        if name not in bpy.data.objects:
            continue
        obj = bpy.data.objects[name]
        box = None if obj in members else world_box(obj)
        if box is not None:
            boxes.append(box)
    subject_box = union(boxes)
    local = _local_box(root)
    if subject_box is None or local is None:
        return False
    root.location = place_beside(obstacles, local, subject_box, (1.0, 0.0, 0.0), gap=GAP * (1 + option))
    return True


def place_new_result(root: bpy.types.Object, job: Job, collection: bpy.types.Collection) -> None:
    """Where a freshly imported result goes (promoted and part results are placed by their own rules)."""
    capture = capture_of(job)
    if capture is not None and place_for_camera(root, *capture):
        return
    beside = job.spec.params_dict.get(BESIDE)
    if beside and place_beside_objects(root, [str(n) for n in beside], job.spec.option):
        return
    place_in_row_of(root, collection, job.spec.option if job.spec.batch else None)
