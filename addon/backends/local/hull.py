"""Multiview: carve the visual hull of orthographic views (front, left, back, right) on a voxel grid.

Each view's silhouette is cropped to the subject and scaled to a common height, so views taken at
different distances still line up. A voxel survives when every view sees it; its exposed faces form
the surface, so the result agrees with each silhouette by construction. Views follow the cameras'
conventions: front looks along +Y, left along +X, back along -Y, right along -X, all upright.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ...imaging.raster import BoolArray, resample_area
from .shapes import Shape

VIEWS = ("front", "left", "back", "right")


@dataclass
class HullResult:
    shapes: dict[str, Shape]
    """Surface pieces per texture: "front" (faces seen from front, back, top, bottom) and "side"."""
    voxels: int
    grid: tuple[int, int, int]


def _crop(mask: BoolArray) -> BoolArray:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit(mask: BoolArray, rows: int, cols: int | None = None) -> BoolArray:
    """Crop to the subject and resample to `rows` rows (width by aspect unless given)."""
    cropped = _crop(mask)
    width = cols or max(1, round(cropped.shape[1] * rows / cropped.shape[0]))
    return resample_area(cropped.astype(np.float32), rows, width) >= 0.5


def carve(masks: dict[str, BoolArray], resolution: int) -> npt.NDArray[np.bool_]:
    """Occupancy indexed [row from top, x from left (-X), y from front (-Y)]."""
    if "front" not in masks:
        raise ValueError("multiview needs a front view")
    front = _fit(masks["front"], resolution)
    nx = front.shape[1]
    side_views = [v for v in ("left", "right") if v in masks]
    if not side_views:
        raise ValueError("multiview needs a left or right view to carve depth")
    first_side = _fit(masks[side_views[0]], resolution)
    ny = first_side.shape[1]
    occupancy = front[:, :, None] & np.ones((1, 1, ny), bool)
    for view in side_views:
        side = _fit(masks[view], resolution, ny)
        # The left camera's image runs from +Y (back) to -Y (front); the right camera's the other way.
        depth = side[:, ::-1] if view == "left" else side
        occupancy &= depth[:, None, :]
    if "back" in masks:
        back = _fit(masks["back"], resolution, nx)[:, ::-1]  # seen from behind, left and right swap
        occupancy &= back[:, :, None]
    return remove_edge_pinches(occupancy)


def remove_edge_pinches(occupancy: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Voxels that meet only along an edge would give that edge four faces; fill in between."""
    grid = occupancy.copy()
    for _ in range(32):
        changed = False
        for axis_a, axis_b in ((0, 1), (0, 2), (1, 2)):
            g = np.moveaxis(grid, (axis_a, axis_b), (0, 1))
            a, b = g[:-1, :-1], g[:-1, 1:]
            c, d = g[1:, :-1], g[1:, 1:]
            diagonal = a & d & ~b & ~c
            anti = b & c & ~a & ~d
            if diagonal.any() or anti.any():
                changed = True
                rows, cols, rest = np.nonzero(diagonal)
                g[rows, cols + 1, rest] = True
                rows, cols, rest = np.nonzero(anti)
                g[rows, cols, rest] = True
        if not changed:
            break
    return grid


def surface(occupancy: npt.NDArray[np.bool_], height_m: float = 1.0, side_view: str = "left") -> HullResult:
    """Exposed voxel faces as flat-shaded quads, split by which texture projects onto them.
    `side_view` names the image used as the side texture ("left" or "right")."""
    rows, nx, ny = occupancy.shape
    size = height_m / rows
    padded = np.pad(occupancy, 1)
    pieces: dict[str, list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]]] = {
        "front": [], "side": []
    }
    # index axis → (world axis, world sign of +index): rows grow downwards (-Z), x → +X, y → +Y.
    world_axis = {0: (2, -1.0), 1: (0, 1.0), 2: (1, 1.0)}
    for axis in range(3):
        for step in (-1, 1):
            shifted = np.roll(padded, -step, axis=axis)
            exposed = (padded & ~shifted)[1:-1, 1:-1, 1:-1]
            cells = np.argwhere(exposed).astype(np.float32)
            if not len(cells):
                continue
            others = [a for a in range(3) if a != axis]
            corners = []
            for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                corner = cells.copy()
                corner[:, axis] += 1.0 if step > 0 else 0.0
                corner[:, others[0]] += du
                corner[:, others[1]] += dv
                corners.append(corner)
            quad = np.stack(corners, axis=1)  # (faces, 4, 3) in index space
            world = np.empty_like(quad)
            world[..., 2] = (rows - quad[..., 0]) * size
            world[..., 0] = (quad[..., 1] - nx / 2) * size
            world[..., 1] = (quad[..., 2] - ny / 2) * size
            w_axis, w_sign = world_axis[axis]
            normal = np.zeros(3, np.float32)
            normal[w_axis] = w_sign * step
            edge_normal = np.cross(world[0, 1] - world[0, 0], world[0, 2] - world[0, 0])
            if float(edge_normal @ normal) < 0:
                world = world[:, ::-1]
                quad = quad[:, ::-1]
            piece = "side" if w_axis == 0 else "front"
            if piece == "front":  # project the front image along Y (top and bottom faces too)
                uv = np.stack([quad[..., 1] / nx, quad[..., 0] / rows], axis=-1)
            else:  # the side image as its camera saw it: left runs +Y → -Y across, right -Y → +Y
                across = quad[..., 2] / ny
                uv = np.stack([1.0 - across if side_view == "left" else across, quad[..., 0] / rows], axis=-1)
            pieces[piece].append((world.reshape(-1, 3), np.tile(normal, (world.shape[0] * 4, 1)), uv.reshape(-1, 2)))
    shapes = {}
    for name, parts in pieces.items():
        if not parts:
            continue
        positions = np.concatenate([p[0] for p in parts]).astype(np.float32)
        quads = len(positions) // 4
        base = np.arange(quads, dtype=np.uint32)[:, None] * 4
        triangles = np.concatenate([base + np.array([0, 1, 2], np.uint32), base + np.array([0, 2, 3], np.uint32)])
        shapes[name] = Shape(positions, np.concatenate([p[1] for p in parts]).astype(np.float32),
                             np.concatenate([p[2] for p in parts]).astype(np.float32), triangles)
    return HullResult(shapes, int(occupancy.sum()), (rows, nx, ny))
