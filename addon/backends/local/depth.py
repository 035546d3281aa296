"""Camera capture with depth: the scene's own depth, seen from the camera, becomes a closed solid.

Blender measures what the camera sees (`addon/blender/capture.py` ray casts the evaluated scene on a
grid: exact, headless, the same on every Blender version); this module, plain numpy, turns that into a
mesh in world units and world orientation, so the result has the subject's real size and faces where
the subject faces.

- **Front**: the depth map itself, unprojected through the camera. What the camera saw is exact.
- **Back**: one view cannot see it. Kiln assumes what most modelled subjects are: upright and roughly
  the same seen from behind. A second, virtual camera stands opposite the real one (the real camera
  turned 180 degrees about a vertical axis through the subject's centre) and sees the same depth map.
  The solid is what both cameras agree may be there: each ray from the real camera runs on from the
  surface it hit until the virtual camera would have seen it empty, and never below the lowest point
  the camera saw (the subject stands on something). For boxes, cylinders, spheres and anything with the
  same symmetry this is the exact shape; for a face it gives a second face on the back of the head.
- **Centre**: across the view, the middle of what was seen. Along the view, the silhouette's rim (where
  front and back meet) marks the middle; a subject seen square-on shows no rim depth, so its depth is
  assumed to be at least `MIN_DEPTH_RATIO` of its smaller visible side. Its floor is the lowest point
  the camera saw; a camera looking steeply down sees no height, so the same ratio is assumed there.
- **Closed**: front and back share the outline vertices on a mesh twice as fine as the depth map
  (`inflate.shell_topology`), so the shell is closed and manifold by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...imaging.raster import BoolArray, FloatArray, keep_largest_component
from .inflate import corner_masks, remove_pinches, shell_topology, vertex_normals
from .shapes import Shape

FORMAT = 1
"""Version of the `.npz` a capture writes; a capture of another version is refused, not misread."""

MIN_DEPTH_RATIO = 0.5
"""A subject is at least this deep (along the view) as a share of its smaller visible side."""

STEEP = 0.85
"""A camera whose view axis points down more steeply than this (the cosine to straight down, about 58
degrees below the horizon) cannot see how tall a subject is; it is assumed `MIN_DEPTH_RATIO` as tall as
its smaller side, at least."""

BISECTIONS = 6
"""Halvings of the last step along a ray, to place the back precisely."""

MIN_THICKNESS_RATIO = 0.01
"""Front and back stay at least this share of the subject's size apart inside the outline."""


@dataclass(frozen=True)
class DepthCapture:
    """What the camera saw, on a grid over part of its frame (the window around the subject).

    The frame is the camera's, in camera space (X right, Y up, looking down -Z): a perspective camera's
    rays run from its origin through the rectangle `frame` at z = `plane_z`; an orthographic camera's
    rays run along -Z from the rectangle itself."""

    depth: FloatArray
    """(rows, cols), row 0 at the top: distance along the viewing axis (-Z), metres; inf where nothing."""
    camera_to_world: npt.NDArray[np.float64]
    """4x4 rotation and translation of the camera (no scale)."""
    frame: tuple[float, float, float, float]
    """(x_min, x_max, y_min, y_max) of the window in camera space."""
    plane_z: float
    """Z (negative) of the plane the perspective frame lies in; unused for orthographic cameras."""
    perspective: bool
    window: tuple[float, float, float, float]
    """(u_min, u_max, v_min, v_max): the window as a share of the full frame, v from the bottom, so
    the captured image's pixels can be cropped to it."""
    normals: FloatArray | None = None
    """(rows, cols, 3) world-space surface normals where something was hit."""

    @property
    def mask(self) -> BoolArray:
        return np.isfinite(self.depth)

    # ------------------------------------------------------------------------------------ geometry
    def points(self, rows: npt.NDArray[Any], cols: npt.NDArray[Any], depth: npt.NDArray[Any]) -> FloatArray:
        """World points at `depth` along the rays through grid positions (row, col): fractional,
        0 at the window's top or left edge, `rows`/`cols` of the grid at the bottom or right edge."""
        height, width = self.depth.shape
        x0, x1, y0, y1 = self.frame
        x = x0 + (np.asarray(cols, np.float64) / width) * (x1 - x0)
        y = y1 - (np.asarray(rows, np.float64) / height) * (y1 - y0)
        z = np.asarray(depth, np.float64)
        if self.perspective:
            scale = z / -self.plane_z
            local = np.stack([x * scale, y * scale, -z], axis=-1)
        else:
            local = np.stack([x, y, -z], axis=-1)
        world: FloatArray = (local @ self.camera_to_world[:3, :3].T + self.camera_to_world[:3, 3]).astype(np.float32)
        return world

    def project(self, world: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray, FloatArray]:
        """World points → (row, col, depth) on the grid: continuous, pixel centres at .5."""
        rotation = self.camera_to_world[:3, :3]
        local = (np.asarray(world, np.float64) - self.camera_to_world[:3, 3]) @ rotation
        depth = -local[..., 2]
        if self.perspective:
            safe = np.where(depth > 1e-9, depth, np.nan)
            x = local[..., 0] * -self.plane_z / safe
            y = local[..., 1] * -self.plane_z / safe
        else:
            x, y = local[..., 0], local[..., 1]
        height, width = self.depth.shape
        x0, x1, y0, y1 = self.frame
        cols = (x - x0) / (x1 - x0) * width
        rows = (y1 - y) / (y1 - y0) * height
        return rows.astype(np.float32), cols.astype(np.float32), depth.astype(np.float32)

    def pixel_size(self, depth: npt.NDArray[Any]) -> FloatArray:
        """World size of one grid cell at `depth` (its larger side)."""
        height, width = self.depth.shape
        x0, x1, y0, y1 = self.frame
        cell = max((x1 - x0) / width, (y1 - y0) / height)
        if self.perspective:
            return (np.asarray(depth, np.float32) * cell / -self.plane_z).astype(np.float32)
        return np.full(np.shape(depth), cell, np.float32)


# ------------------------------------------------------------------------------------------ storage
def save(path: Path, capture: DepthCapture) -> None:
    """Write the capture as `.npz` (atomically: a job may read it from another thread at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    arrays: dict[str, Any] = {
        "format": np.int32(FORMAT), "depth": capture.depth.astype(np.float32),
        "camera_to_world": capture.camera_to_world.astype(np.float64),
        "frame": np.asarray(capture.frame, np.float64), "plane_z": np.float64(capture.plane_z),
        "perspective": np.bool_(capture.perspective), "window": np.asarray(capture.window, np.float64),
    }
    if capture.normals is not None:
        arrays["normals"] = capture.normals.astype(np.float16)  # shading only: half precision is plenty
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    tmp.replace(path)


def load(path: str | Path) -> DepthCapture:
    """Read a capture written by `save`; ValueError when it is not one this version can read."""
    with np.load(path, allow_pickle=False) as data:
        if int(data["format"]) != FORMAT:
            raise ValueError(f"depth capture format {int(data['format'])} (this Kiln reads {FORMAT})")
        normals = data["normals"].astype(np.float32) if "normals" in data.files else None
        frame = tuple(float(v) for v in data["frame"])
        window = tuple(float(v) for v in data["window"])
        return DepthCapture(data["depth"].astype(np.float32), data["camera_to_world"].astype(np.float64),
                            (frame[0], frame[1], frame[2], frame[3]), float(data["plane_z"]),
                            bool(data["perspective"]), (window[0], window[1], window[2], window[3]), normals)


# ------------------------------------------------------------------------------------------ the solid
@dataclass
class DepthResult:
    shape: Shape
    """World-space positions; UVs over the capture's window (v down from the top, as glTF)."""
    cells: int
    """Depth samples on the subject."""
    centre: tuple[float, float]
    """The vertical axis (world X, Y) the back was mirrored about."""
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


def build(capture: DepthCapture, samples: int = 96) -> DepthResult:
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

    # The vertical axis the virtual camera turns about, and the floor.
    forward, right = _horizontal_axes(capture.camera_to_world)
    along, across = visible[:, :2] @ forward, visible[:, :2] @ right
    rim = _rim(mask)[rows, cols]
    size_across = float(across.max() - across.min())
    size_up = float(visible[:, 2].max() - visible[:, 2].min())
    centre_across = float(across.min() + across.max()) / 2
    size_along = float(along.max() - along.min())
    # Each estimate of the middle along the view can only fall short (it sees the front half at most):
    # the rim's median (a side view), the middle of what was seen (a top seen whole), the depth prior.
    centre_along = max(float(np.median(along[rim])) if rim.any() else float(along.mean()),
                       float(along.min() + along.max()) / 2,
                       float(along.min()) + MIN_DEPTH_RATIO * min(size_across, size_up) / 2)
    centre = forward * centre_along + right * centre_across
    floor = float(visible[:, 2].min())
    if -capture.camera_to_world[2, 2] < -STEEP:  # looking steeply down: heights hide behind the top
        floor = min(floor, float(visible[:, 2].max()) - MIN_DEPTH_RATIO * min(size_across, size_along))
    subject_size = max(size_across, size_up, 1e-6)

    # March each ray on from the surface it hit while the virtual camera agrees it is inside, then find
    # where it leaves by bisection within the last step (the back lands within reach/samples/2^6).
    reach = 2.0 * max(size_across, size_up, size_along)
    step = reach / samples
    steps = np.arange(1, samples + 1, dtype=np.float32) * step
    ray_rows, ray_cols = (rows + 0.5)[:, None], (cols + 0.5)[:, None]
    # The lowest sample stands for a cell reaching half a cell lower.
    floor -= 0.5 * float(np.median(capture.pixel_size(front_z)))
    inside = _agreed(capture, depth, centre, floor, ray_rows, ray_cols, front_z[:, None] + steps[None, :])
    # The first step that leaves the solid ends the ray's run (a second run would be another part).
    first_out = np.where(inside.all(axis=1), samples, np.argmin(inside, axis=1))
    low = front_z + first_out * step - step  # inside (or the front itself)
    high = low + step  # outside, or the end of the reach
    open_end = first_out == samples
    for _ in range(BISECTIONS):
        middle = (low + high) / 2
        agreed = _agreed(capture, depth, centre, floor, ray_rows, ray_cols, middle[:, None])[:, 0]
        low, high = np.where(agreed, middle, low), np.where(agreed, high, middle)
    back_z = np.where(open_end, front_z + reach, low)
    back_z = np.maximum(back_z, front_z + MIN_THICKNESS_RATIO * subject_size).astype(np.float32)

    shape = _shell(capture, mask, depth, rows, cols, back_z)
    return DepthResult(shape, int(mask.sum()), (float(centre[0]), float(centre[1])), floor)


def _agreed(capture: DepthCapture, depth: FloatArray, centre: npt.NDArray[Any], floor: float,
            rows: npt.NDArray[Any], cols: npt.NDArray[Any], ray_z: npt.NDArray[Any]) -> BoolArray:
    """Whether points along the camera's rays (at `ray_z`) may be inside the subject as the virtual
    camera sees it (the real camera turned 180 degrees about the vertical axis through `centre`): the
    point turned the other way must fall on the subject in the depth map and not in front of its surface,
    and it must not be below `floor`."""
    points = capture.points(rows, cols, ray_z)
    turned = points.copy()
    turned[..., 0] = 2 * centre[0] - points[..., 0]
    turned[..., 1] = 2 * centre[1] - points[..., 1]
    m_rows, m_cols, m_depth = capture.project(turned)
    height, width = depth.shape
    r_idx, c_idx = np.floor(m_rows), np.floor(m_cols)
    on_grid = (r_idx >= 0) & (r_idx < height) & (c_idx >= 0) & (c_idx < width)
    r_safe = np.clip(np.nan_to_num(r_idx, nan=-1), 0, height - 1).astype(np.int64)
    c_safe = np.clip(np.nan_to_num(c_idx, nan=-1), 0, width - 1).astype(np.int64)
    seen = depth[r_safe, c_safe]
    # One cell of slack: the nearest sample stands for a whole cell, which may slope by 45 degrees.
    behind = m_depth >= seen - capture.pixel_size(m_depth)
    agreed: BoolArray = on_grid & np.isfinite(seen) & behind & (points[..., 2] >= floor)
    return agreed


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
    positions = capture.points(all_i / 2.0, all_j / 2.0, z)
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
