"""Where a result lands: free space near an anchor, never inside another object's bounds.

Pure geometry on axis-aligned boxes (no bpy), so the rules are unit-tested without Blender; the
Blender side (addon/blender/importer.py) only gathers the scene's boxes and applies the location.

A box is `((min_x, min_y, min_z), (max_x, max_y, max_z))`. A result's own bounds are given relative
to its origin (`local`), and the functions return the origin's new location. Boxes that only touch
do not intersect: a result standing on a floor whose top is at its base is free. The `gap` keeps
results apart sideways (X and Y) only, for the same reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Vec3 = tuple[float, float, float]
Box = tuple[Vec3, Vec3]

GAP = 0.5
"""Metres kept free around a result, so rows read as separate assets."""

EPSILON = 1e-4
"""Overlaps thinner than this are touching, not intersecting. Blender keeps locations and vertices in
float32, whose step is ~5e-7 at 5 m and ~6e-5 at 1 km, so a tenth of a millimetre absorbs the noise of
a location written and read back, or of a box measured once from vertices and once from the depsgraph."""

SETTLE_SLACK = 0.05
"""How far into its `gap` a neighbour may come before a result that already has a place is moved.
Placing aims for the full gap; re-checking the same place later (after finishing, a resize) must not
move a result that is where it was put, or a rounding difference sends it sliding past a whole row."""

ROW = (1.0, 0.0, 0.0)
"""A row grows along +X, left to right in the front view."""

NEW_ROW = (0.0, 1.0, 0.0)
"""A new row starts at the anchor, or behind (+Y) whatever stands there, so rows never share a line."""


@dataclass(frozen=True)
class Row:
    """A row already started: the line it runs along (y, z) and the right edge of its last result."""

    y: float
    z: float
    right: float


def translate(box: Box, offset: Vec3) -> Box:
    low, high = box
    return ((low[0] + offset[0], low[1] + offset[1], low[2] + offset[2]),
            (high[0] + offset[0], high[1] + offset[1], high[2] + offset[2]))


def union(boxes: Iterable[Box]) -> Box | None:
    """The box around all of `boxes`, or None when there are none."""
    items = list(boxes)
    if not items:
        return None
    return (tuple(min(b[0][i] for b in items) for i in range(3)),  # type: ignore[return-value]
            tuple(max(b[1][i] for b in items) for i in range(3)))


def intersects(a: Box, b: Box, gap: float = 0.0) -> bool:
    """True when the boxes share volume, with `a` grown by `gap` in X and Y."""
    pad = (gap, gap, 0.0)
    return all(a[0][i] - pad[i] < b[1][i] - EPSILON and b[0][i] + EPSILON < a[1][i] + pad[i] for i in range(3))


def slide_to_free(obstacles: Sequence[Box], local: Box, start: Vec3, direction: Vec3 = ROW,
                  gap: float = GAP) -> Vec3:
    """The first location from `start` along `direction` (in the XY plane) where the result, `gap`
    apart sideways, intersects none of `obstacles`. `start` itself when it is already free.

    Each obstacle blocks one open interval of the distance travelled (a moving box against a fixed
    one); the answer is the smallest distance outside all of them, found in one sorted sweep.
    """
    dx, dy = direction[0], direction[1]
    length = math.hypot(dx, dy)
    if length == 0:
        raise ValueError("slide direction must have an X or Y component")
    step = (dx / length, dy / length, 0.0)
    low = (local[0][0] - gap, local[0][1] - gap, local[0][2])
    high = (local[1][0] + gap, local[1][1] + gap, local[1][2])
    blocked: list[tuple[float, float]] = []
    for obstacle in obstacles:
        enter, leave = -math.inf, math.inf
        for i in range(3):
            # The moving box overlaps on axis i while low_i + s_i + t*d_i < hi_i and lo_i < high_i + s_i + t*d_i.
            near = obstacle[0][i] - high[i] - start[i]
            far = obstacle[1][i] - low[i] - start[i]
            if step[i] == 0:
                if not (near + EPSILON < 0 < far - EPSILON):
                    break  # never overlaps on this axis (touching within EPSILON is not overlapping)
                continue
            t0, t1 = near / step[i], far / step[i]
            if t0 > t1:
                t0, t1 = t1, t0
            # Touching on the way in does not block; the way out is exact, so a slide lands a full gap clear.
            enter, leave = max(enter, t0 + EPSILON), min(leave, t1)
            if enter >= leave:
                break
        else:
            if leave > 0:
                blocked.append((enter, leave))
    distance = 0.0
    for enter, leave in sorted(blocked):
        if enter >= distance:
            break  # every later interval starts further on: this distance is free
        distance = max(distance, leave)
    return (start[0] + step[0] * distance, start[1] + step[1] * distance, start[2])


def place_in_row(obstacles: Sequence[Box], local: Box, anchor: Vec3, row: Row | None = None,
                 gap: float = GAP) -> Vec3:
    """Where the next result of a row goes: right of the row's last result (skipping anything in the
    way), or, for a new row, at the anchor or the first free spot behind it."""
    if row is None:
        return slide_to_free(obstacles, local, anchor, NEW_ROW, gap)
    start = (row.right + gap - local[0][0], row.y, row.z)
    return slide_to_free(obstacles, local, start, ROW, gap)


def settled(obstacles: Sequence[Box], local: Box, at: Vec3, gap: float = GAP) -> Vec3:
    """Where a result that already stands at `at` belongs now: `at` while nothing comes closer than
    `gap - SETTLE_SLACK`, else the first spot right (+X) of it that is `gap` clear."""
    if slide_to_free(obstacles, local, at, ROW, max(0.0, gap - SETTLE_SLACK)) == at:
        return at
    return slide_to_free(obstacles, local, at, ROW, gap)


def place_beside(obstacles: Sequence[Box], local: Box, subject: Box, side: Vec3, gap: float = GAP) -> Vec3:
    """Next to `subject` (standing on its base), towards `side` or, when that is further, the
    opposite side; `subject` should be among `obstacles`."""
    start = ((subject[0][0] + subject[1][0]) / 2, (subject[0][1] + subject[1][1]) / 2, subject[0][2])
    right = slide_to_free(obstacles, local, start, side, gap)
    left = slide_to_free(obstacles, local, start, (-side[0], -side[1], 0.0), gap)
    return left if _distance(start, left) < _distance(start, right) - EPSILON else right


def facing_angle(position: Vec3, target: Vec3) -> float:
    """Rotation about Z that turns a result's front (-Y, Kiln's convention) towards `target`."""
    dx, dy = target[0] - position[0], target[1] - position[1]
    if math.hypot(dx, dy) < EPSILON:
        return 0.0  # straight above or below: any heading faces it equally
    return math.atan2(dx, -dy)


def any_heading(local: Box) -> Box:
    """The box that holds `local` however it is turned about its origin's Z axis: a result that will
    be turned to face something is placed with this footprint, so the turn can never make it intersect."""
    radius = max(math.hypot(x, y) for x in (local[0][0], local[1][0]) for y in (local[0][1], local[1][1]))
    return ((-radius, -radius, local[0][2]), (radius, radius, local[1][2]))


def _distance(a: Vec3, b: Vec3) -> float:
    return math.dist(a, b)
