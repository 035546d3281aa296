"""Camera capture with depth: the scene's own depth, seen from the camera, becomes a closed solid.

Blender measures what the camera sees (`addon/blender/capture.py` ray casts the evaluated scene on a
grid: exact, headless, the same on every Blender version, into an `imaging.depth_map.DepthCapture`);
this module, plain numpy, turns that into a mesh in world units and world orientation, so the result
has the subject's real size and faces where the subject faces.

- **Front**: the depth map itself, unprojected through the camera. What the camera saw is exact.
- **Back** (one view cannot see it): Kiln assumes what most modelled subjects are, upright and mirror
  symmetric. Virtual cameras look at the same depth map from mirrored places, and the solid is what
  they all agree may be there: each ray from the real camera runs on from the surface it hit while every
  mirror image of the point is hidden from the camera or on what it saw, and stays above the lowest
  point the camera saw (the subject stands on something).
  - Left-right: the vertical plane that best maps what was seen onto what was seen (`_bilateral`:
    searched, scored by how much lands on the seen surface and how little contradicts it).
  - Front-back: the vertical plane across it, through the middle of the subject (`_middle`: the rim's
    median, the middle of what was seen, and `DEPTH_PRIOR` for a subject seen square-on).
  - Then the mirror twin of that solid is added, so a part the camera could not see (the far ear of a
    head) is there when its twin was seen.
  - Without a left-right plane, the back is the front turned 180 degrees about a vertical axis.
  Boxes, cylinders and spheres come out exact to a cell; a head gets a back like its face.
- **Floor**: the lowest point the camera saw; a camera looking steeply down sees no height, so
  `DEPTH_PRIOR` is assumed there too.
- **Closed**: front and back share the outline vertices on a mesh twice as fine as the depth map
  (`inflate.shell_topology`), so the shell is closed and manifold by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ...imaging.depth_map import DepthCapture
from ...imaging.raster import BoolArray, FloatArray, keep_largest_component
from .inflate import corner_masks, remove_pinches, shell_topology, vertex_normals
from .shapes import Shape

DEPTH_PRIOR = 0.5
"""A subject is assumed at least this deep, as a share of the smaller of its typical width across the view
(the median over its height, so ears and handles do not count) and its height, unless the camera shows
it deeper or what it saw is flat. Seen steeply from above, it is assumed at least this tall."""
PRIOR_SLICES = 16
FLAT_RATIO = 0.03
"""Seen points whose least spread is below this share of their largest lie in one plane."""
SQUARE_ON = 0.9
"""A plane whose normal is within about 25 degrees of the view axis faces the camera squarely."""

STEEP = 0.85
"""A camera whose view axis points down more steeply than this (the cosine to straight down, about 58
degrees below the horizon) cannot see how tall a subject is; it is assumed `DEPTH_PRIOR` as tall as
its smaller side, at least."""

SYMMETRY_POINTS = 800
"""Seen points a candidate mirror plane is tried on."""
BILATERAL_STEP = 5.0
BILATERAL_SPREAD = 60.0
"""Degrees between candidate left-right planes, and how far their normal may turn from the camera's
right (a plane facing the camera would mirror front onto an unseen back, which nothing contradicts)."""
SYMMETRY_OFFSETS = 21
"""Candidate positions of each plane across what was seen."""
MIN_SYMMETRY_SCORE = 0.3
"""Below this the subject shows no left-right symmetry, and only the front-back mirror closes it."""

SLACK_CELLS = 1.5
"""Depth difference, in cells, within which a point counts as on the surface the camera saw."""

BISECTIONS = 6

OUTLINE_PASSES = 3
"""Relaxations of the outline's pixel staircase (each moves a corner at most half a fine cell)."""

GAP_SHARE = 0.15
"""Along a ray, a gap of up to this share of the reach between two inside stretches is filled."""
"""Halvings of the last step along a ray, to place the back precisely."""

MIN_THICKNESS_RATIO = 0.01
"""Front and back stay at least this share of the subject's size apart inside the outline."""


# ------------------------------------------------------------------------------------------ the solid
@dataclass
class DepthResult:
    shape: Shape
    """World-space positions; UVs over the capture's window (v down from the top, as glTF)."""
    cells: int
    """Depth samples on the subject."""
    views: tuple[tuple[Mirror, ...], ...]
    """The virtual cameras that closed the unseen side, each the real one mirrored about these planes in
    turn: left-right and front-back when a left-right plane fitted, else both together (a turn)."""
    symmetry: float
    """How well the left-right plane fitted (see `_bilateral`)."""
    floor: float
    """The lowest world Z the solid reaches (the lowest point the camera saw)."""


def downsample(capture: DepthCapture, step: int) -> DepthCapture:
    """Every `step`-th sample (the nearest surface of each block), for a coarser, faster solid."""
    if step <= 1:
        return capture
    height, width = capture.depth.shape
    rows, cols = height // step, width // step
    blocks = capture.depth[: rows * step, : cols * step].reshape(rows, step, cols, step)
    depth = blocks.min(axis=(1, 3))
    normals = None
    if capture.normals is not None:
        normals = capture.normals[step // 2 : rows * step : step, step // 2 : cols * step : step][:rows, :cols]
    x0, x1, y0, y1 = capture.frame
    u0, u1, v0, v1 = capture.window
    keep_x, keep_y = cols * step / width, rows * step / height  # a ragged edge is dropped
    frame = (x0, x0 + (x1 - x0) * keep_x, y1 - (y1 - y0) * keep_y, y1)
    window = (u0, u0 + (u1 - u0) * keep_x, v1 - (v1 - v0) * keep_y, v1)
    return DepthCapture(depth.astype(np.float32), capture.camera_to_world, frame, capture.plane_z,
                        capture.perspective, window, normals)


def _horizontal_axes(camera_to_world: npt.NDArray[np.float64]) -> tuple[FloatArray, FloatArray]:
    """The camera's forward and right directions flattened onto the ground (world XY), unit length."""
    forward = -camera_to_world[:3, 2]
    if np.hypot(forward[0], forward[1]) < 1e-3:  # looking straight down or up: its up is "forward"
        forward = camera_to_world[:3, 1] * (1.0 if forward[2] < 0 else -1.0)
    flat = np.array([forward[0], forward[1]], np.float64)
    flat /= np.linalg.norm(flat)
    return flat.astype(np.float32), np.array([flat[1], -flat[0]], np.float32)


def _rim(mask: BoolArray) -> BoolArray:
    """Samples on the subject with a 4-neighbour off it (or on the grid's edge)."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    rim: BoolArray = mask & ~inner
    return rim


def _fill_new_cells(depth: FloatArray, added: BoolArray) -> FloatArray:
    """Depth for samples added to the mask (pinch removal): the mean of their measured neighbours."""
    filled = depth.copy()
    for r, c in zip(*np.nonzero(added), strict=True):
        around = depth[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2]
        known = around[np.isfinite(around)]
        filled[r, c] = float(known.mean()) if known.size else float(np.nanmin(np.where(np.isfinite(depth),
                                                                                        depth, np.nan)))
    return filled


@dataclass(frozen=True)
class Mirror:
    """A vertical mirror plane: points p with p.xy . normal == offset."""

    normal: tuple[float, float]
    offset: float

    def apply(self, points: npt.NDArray[Any]) -> FloatArray:
        nx, ny = np.float32(self.normal[0]), np.float32(self.normal[1])
        twice = 2.0 * (points[..., 0] * nx + points[..., 1] * ny - np.float32(self.offset))
        out = np.array(points, np.float32, copy=True)
        out[..., 0] -= twice * nx
        out[..., 1] -= twice * ny
        return out


def _judge(capture: DepthCapture, depth: FloatArray, points: npt.NDArray[Any]
           ) -> tuple[BoolArray, BoolArray, BoolArray]:
    """Where the camera would put points: on the surface it saw, hidden behind it, or contradicting
    what it saw (in front of the surface, or in empty space it looked at), with `SLACK_CELLS` of slack:
    the nearest sample stands for a whole cell, which may slope steeply away from the camera."""
    m_rows, m_cols, m_depth = capture.project(points)
    height, width = depth.shape
    r_idx, c_idx = np.floor(m_rows), np.floor(m_cols)
    on_grid = (r_idx >= 0) & (r_idx < height) & (c_idx >= 0) & (c_idx < width) & (m_depth > 0)
    r_safe = np.clip(np.nan_to_num(r_idx, nan=-1), 0, height - 1).astype(np.int64)
    c_safe = np.clip(np.nan_to_num(c_idx, nan=-1), 0, width - 1).astype(np.int64)
    seen = np.where(on_grid, depth[r_safe, c_safe], np.inf)
    slack = SLACK_CELLS * capture.pixel_size(m_depth)
    hit = np.isfinite(seen)
    surface: BoolArray = hit & (np.abs(m_depth - seen) <= slack)
    hidden: BoolArray = hit & (m_depth > seen + slack)
    return surface, hidden, ~(surface | hidden)


def _bilateral(capture: DepthCapture, depth: FloatArray, visible: FloatArray, right: FloatArray,
               rng: np.random.Generator) -> tuple[Mirror, float]:
    """The vertical mirror plane that best maps what the camera saw onto what it saw (left onto right,
    so the normal stays within `BILATERAL_SPREAD` of the camera's right): most points landing on the
    seen surface, fewest contradicting it. Returns the plane and its score (share on the surface less
    twice the share contradicting). A coarse search, then a fine one around the best."""
    sample = visible[rng.choice(len(visible), min(len(visible), SYMMETRY_POINTS), replace=False)]
    base = float(np.degrees(np.arctan2(right[1], right[0])))
    angles = base + np.arange(-BILATERAL_SPREAD, BILATERAL_SPREAD + 1e-6, BILATERAL_STEP)
    extent = float(np.abs(sample[:, :2] - sample[:, :2].mean(axis=0)).max())
    centre = sample[:, :2].mean(axis=0)
    offsets = np.linspace(-extent, extent, SYMMETRY_OFFSETS)
    best, score = _best_mirror(capture, depth, sample, centre, angles, offsets)
    gap = offsets[1] - offsets[0]
    fine_angles = best[0] + np.linspace(-BILATERAL_STEP, BILATERAL_STEP, 11)
    fine_offsets = best[1] + np.linspace(-gap, gap, 11)
    (angle, offset), score = _best_mirror(capture, depth, sample, centre, fine_angles, fine_offsets)
    normal = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))], np.float32)
    return Mirror((float(normal[0]), float(normal[1])), float(centre @ normal + offset)), score


def _best_mirror(capture: DepthCapture, depth: FloatArray, sample: FloatArray, centre: FloatArray,
                 angles: npt.NDArray[Any], offsets: npt.NDArray[Any]) -> tuple[tuple[float, float], float]:
    """Score every (angle in degrees, offset from `centre`) plane on `sample`; the best and its score."""
    grid_a, grid_o = np.meshgrid(np.radians(angles), offsets, indexing="ij")
    normals = np.stack([np.cos(grid_a.ravel()), np.sin(grid_a.ravel())], axis=1).astype(np.float32)
    planes = (normals @ centre + grid_o.ravel()).astype(np.float32)
    distance = sample[None, :, :2] @ normals[:, :, None]
    mirrored = np.broadcast_to(sample, (len(normals), *sample.shape)).copy()
    mirrored[..., :2] -= 2.0 * (distance - planes[:, None, None]) * normals[:, None, :]
    surface, _hidden, contradiction = _judge(capture, depth, mirrored)
    scores = surface.mean(axis=1) - 2.0 * contradiction.mean(axis=1)
    best = int(np.argmax(scores))
    return (float(np.degrees(grid_a.ravel()[best])), float(grid_o.ravel()[best])), float(scores[best])


def _perpendicular(normal: tuple[float, float], forward: FloatArray) -> tuple[float, float]:
    """The horizontal direction across `normal`, pointing away from the camera."""
    across = np.array([-normal[1], normal[0]], np.float32)
    across *= 1.0 if float(across @ forward) >= 0 else -1.0
    return (float(across[0]), float(across[1]))


def _middle(visible: FloatArray, rim: BoolArray, side: Mirror, forward: FloatArray, view: FloatArray) -> float:
    """Where the front-back plane goes, along its normal (away from the camera). Each estimate can only
    fall short (the camera sees the front half at most), so the furthest wins: the rim's median (what a
    side view shows), the middle of what was seen (a top seen whole), and `DEPTH_PRIOR`."""
    normal = np.asarray(_perpendicular(side.normal, forward), np.float32)
    along = visible[:, :2] @ normal
    estimates = [float(np.median(along[rim])) if rim.any() else float(along.mean()),
                 float(along.min() + along.max()) / 2]
    if not _seen_flat(visible, view):
        size_up = float(np.ptp(visible[:, 2]))
        estimates.append(float(along.min()) + DEPTH_PRIOR * min(_typical_width(visible, side), size_up) / 2)
    return max(estimates)


def _typical_width(visible: FloatArray, side: Mirror) -> float:
    """The median, over `PRIOR_SLICES` slices of height, of the seen width across `side`'s normal."""
    across = visible[:, :2] @ np.asarray(side.normal, np.float32)
    heights = visible[:, 2]
    edges = np.linspace(float(heights.min()), float(heights.max()) + 1e-6, PRIOR_SLICES + 1)
    slot = np.clip(np.searchsorted(edges, heights, side="right") - 1, 0, PRIOR_SLICES - 1)
    widths = [float(across[slot == k].max() - across[slot == k].min()) for k in range(PRIOR_SLICES)
              if (slot == k).any()]
    return float(np.median(widths))


def _seen_flat(visible: FloatArray, view: FloatArray) -> bool:
    """Whether what was seen is a flat thing seen at a slant (a panel, a wall, a sign): its points lie in
    one plane that does not face the camera squarely. Seen squarely, a plane may just as well be the
    front of a box, so the depth prior applies there."""
    centred = visible - visible.mean(axis=0)
    _, spreads, axes = np.linalg.svd(centred[:: max(1, len(centred) // 2000)], full_matrices=False)
    facing = abs(float(axes[-1] @ view))
    return bool(spreads[-1] < FLAT_RATIO * spreads[0] and facing < SQUARE_ON)


def build(capture: DepthCapture, samples: int = 40) -> DepthResult:
    """The closed solid for a depth capture (see the module's docstring); `samples` steps along each ray
    decide where the back is. Raises ValueError when the camera saw nothing."""
    seen = capture.mask
    if not seen.any():
        raise ValueError("the camera sees nothing to build from")
    mask, _ = keep_largest_component(seen)
    mask = remove_pinches(mask)
    depth = np.where(mask, capture.depth, np.inf).astype(np.float32)
    depth = np.where(mask & ~seen, _fill_new_cells(depth, mask & ~seen), depth)
    rows, cols = np.nonzero(mask)
    front_z = depth[rows, cols]
    visible = capture.points(rows + 0.5, cols + 0.5, front_z)
    forward, right = _horizontal_axes(capture.camera_to_world)
    view = (-capture.camera_to_world[:3, 2]).astype(np.float32)
    rim = _rim(mask)[rows, cols]

    # Left and right: the best mirror plane through what was seen. Front and back: the plane across it.
    side, score = _bilateral(capture, depth, visible, right, np.random.default_rng(0))
    back = Mirror(_perpendicular(side.normal, forward), _middle(visible, rim, side, forward, view))
    across = visible[:, :2] @ np.asarray(side.normal, np.float32)
    along = visible[:, :2] @ np.asarray(back.normal, np.float32)
    size_across = float(across.max() - across.min())
    size_up = float(visible[:, 2].max() - visible[:, 2].min())
    size_along = float(along.max() - along.min())
    floor = float(visible[:, 2].min())
    if -capture.camera_to_world[2, 2] < -STEEP:  # looking steeply down: heights hide behind the top
        floor = min(floor, float(visible[:, 2].max()) - DEPTH_PRIOR * min(size_across, size_along))
    floor -= 0.5 * float(np.median(capture.pixel_size(front_z)))  # the lowest sample's cell reaches lower
    subject_size = max(size_across, size_up, 1e-6)
    if score >= MIN_SYMMETRY_SCORE:
        views: tuple[tuple[Mirror, ...], ...] = ((side,), (back,))
    else:  # no left-right symmetry: the back is the front turned about the vertical axis through the middle
        across_right = visible[:, :2] @ right
        middle = Mirror((float(right[0]), float(right[1])), float(across_right.min() + across_right.max()) / 2)
        behind = Mirror(_perpendicular(middle.normal, forward), _middle(visible, rim, middle, forward, view))
        views = ((middle, behind),)

    # March each ray on from the surface it hit; a point is inside while every mirror image of it is
    # hidden from the camera or on what it saw, and it is above the floor. The back is the last such
    # step (gaps between are filled), placed by bisection within a step.
    reach = 2.0 * max(size_across, size_up, size_along)
    ray_rows, ray_cols = (rows + 0.5)[:, None], (cols + 0.5)[:, None]

    def agreed(points: FloatArray) -> BoolArray:
        result: BoolArray = points[..., 2] >= floor
        for view in views:
            moved = points
            for mirror in view:
                moved = mirror.apply(moved)
            result &= ~_judge(capture, depth, moved)[2]
        return result

    back_z = _march(capture, ray_rows, ray_cols, front_z, reach, samples, agreed)
    if len(views) == 2:
        # The mirror images of the back-closed solid count too: a part the camera could not see (an ear
        # behind the head) is there when its mirror twin was seen, whatever the front-back guess says.
        far = np.full(mask.shape, -np.inf, np.float32)
        far[rows, cols] = back_z

        def in_solid(points: FloatArray) -> BoolArray:
            m_rows, m_cols, m_depth = capture.project(points)
            r_idx, c_idx = np.floor(m_rows), np.floor(m_cols)
            height, width = mask.shape
            on_grid = (r_idx >= 0) & (r_idx < height) & (c_idx >= 0) & (c_idx < width)
            r_safe = np.clip(np.nan_to_num(r_idx, nan=-1), 0, height - 1).astype(np.int64)
            c_safe = np.clip(np.nan_to_num(c_idx, nan=-1), 0, width - 1).astype(np.int64)
            slack = 0.5 * capture.pixel_size(m_depth)
            inside: BoolArray = on_grid & (m_depth >= depth[r_safe, c_safe] - slack) \
                & (m_depth <= far[r_safe, c_safe] + slack)
            return inside

        side = views[0][0]
        back_z = np.maximum(back_z, _march(capture, ray_rows, ray_cols, front_z, reach, samples,
                                           lambda points: in_solid(side.apply(points)) & (points[..., 2] >= floor)))
    back_z = np.maximum(back_z, front_z + MIN_THICKNESS_RATIO * subject_size).astype(np.float32)

    shape = _shell(capture, mask, depth, rows, cols, back_z)
    return DepthResult(shape, int(mask.sum()), views, score, floor)


def _march(capture: DepthCapture, rows: npt.NDArray[Any], cols: npt.NDArray[Any], front_z: FloatArray,
           reach: float, samples: int, inside: Callable[[FloatArray], BoolArray]) -> FloatArray:
    """How far each ray (through grid positions `rows`, `cols`, hitting the surface at `front_z`) runs
    inside the solid: to the end of the run of `samples` steps over `reach` that are `inside` from the
    surface on (short gaps closed), refined by bisection within the step after it."""
    step = reach / samples
    steps = np.arange(1, samples + 1, dtype=np.float32) * step
    flags = inside(capture.points(rows, cols, front_z[:, None] + steps[None, :]))
    # Close gaps of up to GAP_SHARE of the reach (a hidden ear joins its head; the surface itself counts
    # as inside), then the run from the surface ends the ray.
    index = np.arange(samples)
    before = np.maximum.accumulate(np.where(flags, index, -1), axis=1)
    after = np.minimum.accumulate(np.where(flags, index, samples)[:, ::-1], axis=1)[:, ::-1]
    closed = flags | ((after < samples) & (after - before - 1 <= GAP_SHARE * samples))
    last_in = np.where(closed.all(axis=1), samples - 1, np.argmin(closed, axis=1) - 1)
    low = front_z + (last_in + 1) * step  # inside (or the front itself)
    high = low + step  # outside, or past the reach
    for _ in range(BISECTIONS):
        middle = (low + high) / 2
        ok = inside(capture.points(rows, cols, middle[:, None]))[:, 0]
        low, high = np.where(ok, middle, low), np.where(ok, high, middle)
    result: FloatArray = low.astype(np.float32)
    return result


def _corner_values(values: FloatArray, mask: BoolArray) -> FloatArray:
    """Per-sample values → the corners of the 2x finer mesh grid: each corner averages the samples whose
    (fine) cells touch it. Fine corner (2r+1, 2c+1) is sample (r, c)'s centre, so the surface passes
    through every measured depth exactly."""
    fine = np.repeat(np.repeat(np.where(mask, values, 0.0), 2, axis=0), 2, axis=1)
    weight = np.repeat(np.repeat(mask.astype(np.float32), 2, axis=0), 2, axis=1)
    pv, pw = np.pad(fine, 1), np.pad(weight, 1)
    total = pv[:-1, :-1] + pv[:-1, 1:] + pv[1:, :-1] + pv[1:, 1:]
    count = pw[:-1, :-1] + pw[:-1, 1:] + pw[1:, :-1] + pw[1:, 1:]
    result: FloatArray = (total / np.maximum(count, 1.0)).astype(np.float32)
    return result


def _smoothed_outline(outline: BoolArray, passes: int = OUTLINE_PASSES) -> tuple[FloatArray, FloatArray]:
    """Grid coordinates (row, col) of every corner, with the outline's staircase relaxed: each outline
    corner moves halfway to the mean of its outline neighbours, a few times over. The cells follow the
    pixels, but the subject's edge does not: a cube's slanted edge is a line, not a saw."""
    rows, cols = np.indices(outline.shape).astype(np.float32)
    weight = outline.astype(np.float32)
    for _ in range(passes):
        sums = []
        for grid in (rows, cols, None):
            values = weight if grid is None else np.where(outline, grid, 0.0)
            padded = np.pad(values, 1)
            sums.append(padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:])
        count = np.maximum(sums[2], 1.0)
        has = outline & (sums[2] > 0)
        rows = np.where(has, 0.5 * rows + 0.5 * sums[0] / count, rows).astype(np.float32)
        cols = np.where(has, 0.5 * cols + 0.5 * sums[1] / count, cols).astype(np.float32)
    return rows, cols


def _shell(capture: DepthCapture, mask: BoolArray, depth: FloatArray, rows: npt.NDArray[np.int64],
           cols: npt.NDArray[np.int64], back_z: FloatArray) -> Shape:
    back = np.zeros(mask.shape, np.float32)
    back[rows, cols] = back_z
    cells = np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)
    used, interior = corner_masks(cells)
    front_corner = _corner_values(np.where(mask, depth, 0.0).astype(np.float32), mask)
    back_corner = np.where(interior, _corner_values(back, mask), front_corner)
    shell = shell_topology(cells, used, interior)
    all_i = np.concatenate([shell.front_i, shell.back_i])
    all_j = np.concatenate([shell.front_j, shell.back_j])
    z = np.concatenate([front_corner[shell.front_i, shell.front_j], back_corner[shell.back_i, shell.back_j]])
    smooth_i, smooth_j = _smoothed_outline(used & ~interior)
    positions = capture.points(smooth_i[all_i, all_j] / 2.0, smooth_j[all_i, all_j] / 2.0, z)
    # shell_topology winds the front counter-clockwise as seen with rows down and columns right, which is
    # how the camera sees the grid: the triangles face the camera, as a front should.
    triangles = shell.triangles
    normals = vertex_normals(positions, triangles)
    if capture.normals is not None:
        # The front's shading from the measured normals (crisp where the surface really bends).
        measured = np.stack([_corner_values(np.where(mask, capture.normals[..., k], 0.0).astype(np.float32), mask)
                             for k in range(3)], axis=-1)[shell.front_i, shell.front_j]
        length = np.linalg.norm(measured, axis=1, keepdims=True)
        good = length[:, 0] > 0.5
        count = len(shell.front_i)
        normals[:count][good] = (measured[good] / length[good]).astype(np.float32)
    height, width = mask.shape
    uvs = np.stack([all_j / (2.0 * width), all_i / (2.0 * height)], axis=1).astype(np.float32)
    return Shape(positions.astype(np.float32), normals.astype(np.float32), uvs, triangles)
