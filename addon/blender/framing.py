"""The camera capture's pre-flight: what the active camera frames, checked before anything is rendered.

Each visible mesh's bounding box is projected into the camera's frame (`world_to_camera_view`), clipped
to it, and the boxes' union is measured on a coarse grid: nothing in view is an error (a render of an
empty view is useless to any backend), a subject that fills only a sliver of the frame is a warning.
"""

from __future__ import annotations

import logging

import bpy
import numpy as np
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from ..preflight import SMALL_SUBJECT, Finding, Severity

_log = logging.getLogger(__name__)

GRID = 64
"""Cells across the frame for the union of the projected boxes (overlaps are counted once)."""


def framed_share(scene: bpy.types.Scene) -> tuple[int, float]:
    """How many visible meshes the active camera sees, and the share of its frame their boxes cover."""
    camera = scene.camera
    if camera is None:
        return 0, 0.0
    covered = np.zeros((GRID, GRID), bool)
    seen = 0
    for obj in scene.objects:
        if obj.type != "MESH" or not obj.visible_get() or obj.get("kiln_job_id"):
            continue
        points = [world_to_camera_view(scene, camera, obj.matrix_world @ Vector(corner)) for corner in obj.bound_box]
        ahead = [p for p in points if p.z > 0.0]
        if not ahead:
            continue  # behind the camera
        xs = [p.x for p in ahead]
        ys = [p.y for p in ahead]
        x0, x1 = max(0.0, min(xs)), min(1.0, max(xs))
        y0, y1 = max(0.0, min(ys)), min(1.0, max(ys))
        if x0 >= x1 or y0 >= y1:
            continue  # outside the frame
        seen += 1
        covered[int(y0 * GRID): max(int(y0 * GRID) + 1, int(np.ceil(y1 * GRID))),
                int(x0 * GRID): max(int(x0 * GRID) + 1, int(np.ceil(x1 * GRID)))] = True
    return seen, float(covered.mean())


def framing_findings(scene: bpy.types.Scene) -> list[Finding]:
    """The capture's findings: an empty view (error), a subject too small in the frame (warning)."""
    seen, share = framed_share(scene)
    name = scene.camera.name if scene.camera is not None else "the camera"
    if seen == 0:
        return [Finding(Severity.ERROR, "camera_empty",
                        f"The camera sees nothing to generate from (empty view): '{name}' frames no visible mesh",
                        "frame an object first (select it, then View ▸ Align View ▸ Align Active Camera to "
                        "Selected)")]
    if share < SMALL_SUBJECT:
        return [Finding(Severity.WARNING, "camera_subject_small",
                        f"the subject fills only {share:.1%} of '{name}'s frame",
                        "move the camera closer, or frame the subject (Align Active Camera to Selected)")]
    return []
