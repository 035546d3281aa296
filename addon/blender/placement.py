"""Where results land in the scene: the bpy half of addon/placement.py.

This module only gathers boxes (every visible object's world bounds, the result's own) and applies
the location the pure rules choose:
- drafts and batch options line up in rows in free space near the 3D cursor; each row remembers the
  cursor it started from (`kiln_row_anchor`), so a moved cursor starts a new row there;
- a camera result stands beside the objects its capture recorded (`capture`), turned to face that
  camera; a result from reference images stands beside them (`beside`);
- anything that was put somewhere else first (a promoted draft's place, a growing parts group, a
  finished asset) stays where it is when that is free, and otherwise slides right until it is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import bpy
from mathutils import Matrix, Vector

from ..jobs import Job
from ..placement import (
    GAP,
    Box,
    Row,
    any_heading,
    facing_angle,
    place_beside,
    place_in_row,
    settled,
    translate,
    union,
)
from ..requests import BESIDE, CAPTURE, depth_capture

_log = logging.getLogger(__name__)

ROW_ANCHOR = "kiln_row_anchor"
"""The 3D cursor location a result's row started from."""


GEOMETRY_TYPES = frozenset({"MESH", "CURVE", "CURVES", "SURFACE", "META", "FONT", "VOLUME", "POINTCLOUD",
                            "GREASEPENCIL", "GPENCIL"})  # Grease Pencil is GPENCIL before 4.3
"""Object types with a surface of their own. Cameras, lights and plain empties have none, so nothing
keeps clear of them; image empties (reference images) are measured separately."""

_SAME_ANCHOR_M = 1e-4


def world_box(obj: bpy.types.Object) -> Box | None:
    """`obj`'s axis-aligned bounds in world space, or None when it has no geometry to bump into.
    Uses the evaluated bounds (`bound_box`, so modifiers count) as of the last depsgraph update."""
    if obj.type in GEOMETRY_TYPES:
        bounds = obj.bound_box  # corner 0 is the local minimum, corner 6 the maximum
        low, high = tuple(bounds[0]), tuple(bounds[6])
    elif obj.type == "EMPTY" and obj.empty_display_type == "IMAGE" and obj.data is not None:
        low, high = _image_quad(obj)
    else:
        return None
    return _transformed(obj.matrix_world, low, high)


def _transformed(matrix: Matrix, low: tuple[float, ...], high: tuple[float, ...]) -> Box:
    """The world box around a local box: centre moved, half-size through the absolute rotation-scale.
    Plain floats and mathutils: numpy's per-call overhead would dominate on eight numbers."""
    centre = matrix @ Vector(((low[0] + high[0]) / 2, (low[1] + high[1]) / 2, (low[2] + high[2]) / 2))
    half = ((high[0] - low[0]) / 2, (high[1] - low[1]) / 2, (high[2] - low[2]) / 2)
    reach = [abs(matrix[i][0]) * half[0] + abs(matrix[i][1]) * half[1] + abs(matrix[i][2]) * half[2]
             for i in range(3)]
    return ((centre.x - reach[0], centre.y - reach[1], centre.z - reach[2]),
            (centre.x + reach[0], centre.y + reach[1], centre.z + reach[2]))


def _box_from_vertices(obj: bpy.types.Object) -> Box | None:
    """World bounds of a top-level mesh object from its vertices and its own transform (no depsgraph)."""
    from .importer import mesh_bounds  # the importer places through this module

    mesh = obj.data
    if not isinstance(mesh, bpy.types.Mesh) or not mesh.vertices:
        return None
    low, high = mesh_bounds(mesh)
    return _transformed(obj.matrix_basis, tuple(float(v) for v in low), tuple(float(v) for v in high))


def _image_quad(obj: bpy.types.Object) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A reference image's local box as Blender draws it: the longer side `empty_display_size` long,
    shifted by `empty_image_offset` (-0.5, -0.5 centres it), flat in the empty's XY plane."""
    width, height = (max(1, int(v)) for v in getattr(obj.data, "size", (1, 1)))  # as Blender clamps it
    offset_x, offset_y = (float(v) for v in obj.empty_image_offset)  # type: ignore[attr-defined]  # stubs miss __iter__
    aspect_x, aspect_y = (1.0, height / width) if width >= height else (width / height, 1.0)
    size = obj.empty_display_size
    return ((offset_x * aspect_x * size, offset_y * aspect_y * size, 0.0),
            ((offset_x + 1) * aspect_x * size, (offset_y + 1) * aspect_y * size, 0.0))


def _top(obj: bpy.types.Object) -> bpy.types.Object:
    while obj.parent is not None:
        obj = obj.parent
    return obj


class SceneBoxes:
    """What shows in the view layer, measured once: every visible object's world box, filed under the
    asset (top-level object) it belongs to. One pass, one depsgraph update: placing the 300th result
    of a batch must not walk the scene once per earlier result (`Object.children` does)."""

    def __init__(self, just_imported: bpy.types.Object | None = None) -> None:
        """`just_imported`: a top-level result the importer has reshaped since the depsgraph update it
        ran moments ago. Everything else is current then, so that result is measured from its own
        vertices instead of paying for a second update (which would evaluate a 50k-triangle mesh)."""
        self.boxes: dict[bpy.types.Object, list[Box]] = {}
        self.members: dict[bpy.types.Object, list[bpy.types.Object]] = {}
        view_layer = bpy.context.view_layer
        if view_layer is None:
            return
        if just_imported is None:
            view_layer.update()  # moves made since the last update reach matrix_world and bound_box
        for obj in view_layer.objects:
            root = _top(obj)
            self.members.setdefault(root, []).append(obj)
            if obj is just_imported:
                box = _box_from_vertices(obj)
            elif obj.visible_get():
                box = world_box(obj)
            else:
                continue
            if box is not None:
                self.boxes.setdefault(root, []).append(box)

    def obstacles(self, *left_out: bpy.types.Object) -> list[Box]:
        """Every box but those of the assets `left_out`."""
        return [box for root, boxes in self.boxes.items() if root not in left_out for box in boxes]

    def asset(self, root: bpy.types.Object) -> Box | None:
        """World bounds of what shows of an asset: the root and its visible descendants (LOD1… are hidden)."""
        return union(self.boxes.get(root, ()))

    def local(self, root: bpy.types.Object) -> Box | None:
        """The asset's bounds relative to its origin (a top-level object: its location)."""
        box = self.asset(root)
        if box is None:
            return None
        location = root.location
        return translate(box, (-location.x, -location.y, -location.z))

    def carried(self, root: bpy.types.Object, key: str) -> Any:
        """A property of the asset: on its root, or on the member carrying it (an LOD group's LOD0)."""
        for obj in (root, *self.members.get(root, ())):
            value = obj.get(key)
            if value is not None:
                return value
        return None


def _anchor_of(scene: SceneBoxes, root: bpy.types.Object) -> tuple[float, float, float] | None:
    value = scene.carried(root, ROW_ANCHOR)
    if value is None or len(value) != 3:
        return None
    return (float(value[0]), float(value[1]), float(value[2]))


def _cursor() -> tuple[float, float, float]:
    scene = bpy.context.scene
    if scene is None:
        return (0.0, 0.0, 0.0)
    location = scene.cursor.location
    return (location.x, location.y, location.z)


def place_in_row_of(root: bpy.types.Object, collection: bpy.types.Collection, option: int | None, *,
                    just_imported: bool = False) -> None:
    """Put a new asset in its row near the 3D cursor: drafts share one row (`option` None), a batch has
    one per option. The row is the one started from the cursor's current place, or a new one there."""
    anchor = _cursor()
    scene = SceneBoxes(root if just_imported else None)
    local = scene.local(root)
    if local is None:
        root.location = anchor
        return
    members = []
    for obj in collection.objects:
        if obj == root or obj.parent is not None or obj not in scene.boxes:
            continue  # only assets that show take part in a row
        row_anchor = _anchor_of(scene, obj)
        if row_anchor is None or math.dist(row_anchor, anchor) > _SAME_ANCHOR_M:
            continue
        if option is None or int(scene.carried(obj, "kiln_option") or 0) == option:
            members.append(obj)
    root.location = place_in_row(scene.obstacles(root), local, anchor, _row(scene, members))
    root[ROW_ANCHOR] = anchor


def _row(scene: SceneBoxes, members: list[bpy.types.Object]) -> Row | None:
    boxes = [box for obj in members if (box := scene.asset(obj)) is not None]
    if not boxes:
        return None
    first = min(members, key=lambda o: o.location.x)
    return Row(y=first.location.y, z=first.location.z, right=max(b[1][0] for b in boxes))


def settle(root: bpy.types.Object, *, just_imported: bool = False) -> None:
    """Leave an asset where it is when that is free; otherwise slide it right (+X) until it is."""
    scene = SceneBoxes(root if just_imported else None)
    local = scene.local(root)
    if local is None:
        return
    location = root.location
    start = (location.x, location.y, location.z)
    new = settled(scene.obstacles(root), local, start)
    if new != start:
        root.location = new


def capture_of(job: Job) -> tuple[bpy.types.Object, list[str]] | None:
    """The camera a camera job captured (the scene's when that one is gone) and the names of the objects
    it captured, both from the spec's `capture` parameter; None for any other job."""
    capture = job.spec.params_dict.get(CAPTURE)
    if capture is None:
        return None
    info = dict(capture)
    scene = bpy.context.scene
    camera = bpy.data.objects.get(str(info.get("camera", ""))) or (scene.camera if scene is not None else None)
    if camera is None or camera.type != "CAMERA":
        return None
    return camera, [str(name) for name in info.get("objects", ())]


def place_for_camera(root: bpy.types.Object, camera: bpy.types.Object, subject_names: list[str],
                     turn: bool = True) -> bool:
    """Stand a just imported result upright beside what the camera captured, turned to face the camera
    (its front, -Y, towards the lens), or with `turn` off as it came (a solid built from the scene's depth
    is already in world orientation, facing where its subject faces). Returns False when no captured
    object is left to stand beside."""
    boxes = SceneBoxes(root)
    subject = {_top(bpy.data.objects[name]) for name in subject_names if name in bpy.data.objects}
    subject_box = union(box for obj in subject if obj != root and (box := boxes.asset(obj)) is not None)
    local = boxes.local(root)
    if subject_box is None or local is None:
        return False
    axes = camera.matrix_world.to_3x3()
    right = axes @ Vector((1.0, 0.0, 0.0))
    if math.hypot(right.x, right.y) < 1e-6:  # a camera rolled on its side: its up is sideways
        right = axes @ Vector((0.0, 1.0, 0.0))
    footprint = any_heading(local) if turn else local
    location = place_beside(boxes.obstacles(root), footprint, subject_box, (right.x, right.y, 0.0))
    lens = camera.matrix_world.translation
    root.location = location
    if not turn:
        return True
    root.rotation_mode = "XYZ"  # glTF imports come in quaternion mode, which ignores rotation_euler
    root.rotation_euler = (0.0, 0.0, facing_angle(location, (lens.x, lens.y, lens.z)))
    return True


def place_beside_objects(root: bpy.types.Object, names: Sequence[str], option: int) -> bool:
    """Beside the objects a just imported result was made from (its reference images), on their base,
    towards +X; options further along. Returns False when none of them is in the scene any more."""
    scene = SceneBoxes(root)
    members = scene.members.get(root, [root])
    boxes = [box for name in names if name in bpy.data.objects and (obj := bpy.data.objects[name]) not in members
             and (box := world_box(obj)) is not None]
    subject_box = union(boxes)
    local = scene.local(root)
    if subject_box is None or local is None:
        return False
    root.location = place_beside(scene.obstacles(root), local, subject_box, (1.0, 0.0, 0.0), gap=GAP * (1 + option))
    return True


def place_new_result(root: bpy.types.Object, job: Job, collection: bpy.types.Collection) -> None:
    """Where a freshly imported result goes (promoted and part results are placed by their own rules)."""
    capture = capture_of(job)
    if capture is not None and place_for_camera(root, *capture, turn=not depth_capture(job.spec.params_dict)):
        return
    beside = job.spec.params_dict.get(BESIDE)
    if beside and place_beside_objects(root, [str(n) for n in beside], job.spec.option):
        return
    place_in_row_of(root, collection, job.spec.option if job.spec.batch else None, just_imported=True)
