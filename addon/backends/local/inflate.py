"""Silhouette inflation: a subject mask becomes a closed, rounded solid.

The mask is resampled onto a grid (coarse in Draft, fine in Production). Each grid corner gets a
height from its distance to the outline: a round profile in the middle, a bounded slope near the
edge so thin parts stay thin. The front surface sits at -Y (facing the viewer), the back at +Y, and
both share the outline's vertices, so the shell is closed and manifold by construction. UVs are the
image's own coordinates, so the picture projects onto the front and, mirrored, onto the back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ...imaging.raster import BoolArray, fill_holes, keep_largest_component, resample_area
from .shapes import Shape

DEPTH_RATIO = 0.55
"""Half-thickness at the thickest point, as a share of the subject's inner radius."""
EDGE_SLOPE = 1.1
"""Height gained per cell of distance from the outline; bounds how fat thin parts get."""


@dataclass
class InflateResult:
    shape: Shape
    cells_inside: int
    grid_shape: tuple[int, int]


def remove_pinches(inside: BoolArray) -> BoolArray:
    """Cells that touch only at a corner would share a single vertex between two surfaces; fill one
    of the two empty cells of every such 2x2 pattern until none is left."""
    cells = inside.copy()
    for _ in range(64):
        a, b = cells[:-1, :-1], cells[:-1, 1:]
        c, d = cells[1:, :-1], cells[1:, 1:]
        diagonal = a & d & ~b & ~c
        anti = b & c & ~a & ~d
        if not (diagonal.any() or anti.any()):
            break
        rows, cols = np.nonzero(diagonal)
        cells[rows, cols + 1] = True
        rows, cols = np.nonzero(anti)
        cells[rows, cols] = True
    return cells


def distance_to_outline(inside: BoolArray) -> npt.NDArray[np.float32]:
    """Per-cell distance (in cells) to the outside, by alternating 4- and 8-neighbour erosions, which
    approximates Euclidean distance with an octagon; every step is one vectorised numpy pass."""
    distance = np.zeros(inside.shape, np.float32)
    current = inside.copy()
    step = 0
    while current.any():
        step += 1
        distance[current] = step
        padded = np.pad(current, 1)
        eroded = (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
                  & padded[1:-1, :-2] & padded[1:-1, 2:])
        if step % 2 == 0:
            eroded &= padded[:-2, :-2] & padded[:-2, 2:] & padded[2:, :-2] & padded[2:, 2:]
        current = eroded
    return distance


def inflate(mask: BoolArray, grid: int, height_m: float = 1.0) -> InflateResult:
    """Build the solid for `mask` (row 0 at the top) with `grid` cells across its longest side."""
    mask_h, mask_w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    extent = max(rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0])
    pixels_per_cell = extent / grid
    grid_h = max(2, round(mask_h / pixels_per_cell))
    grid_w = max(2, round(mask_w / pixels_per_cell))
    inside = resample_area(mask.astype(np.float32), grid_h, grid_w) >= 0.5
    inside, _ = keep_largest_component(inside)
    inside, _ = fill_holes(inside)
    inside = remove_pinches(inside)

    # Crop to the subject with one empty cell all round, so every outline corner is well defined.
    r = np.flatnonzero(inside.any(axis=1))
    c = np.flatnonzero(inside.any(axis=0))
    r0, c0 = int(r[0]) - 1, int(c[0]) - 1
    cells = np.pad(inside, 1)[r0 + 1 : int(r[-1]) + 3, c0 + 1 : int(c[-1]) + 3]
    # Mesh on a 2x finer grid with the same outline. Then every cell has a corner strictly inside the
    # subject (its parent's centre), so no edge runs across the subject at zero thickness, even where
    # the subject is one grid cell thin: the shell stays manifold everywhere.
    cells = np.repeat(np.repeat(cells, 2, axis=0), 2, axis=1)
    cells_h, cells_w = cells.shape

    distance = distance_to_outline(cells)
    used, interior = corner_masks(cells)
    padded_distance = np.pad(distance, 1)
    around = np.stack([padded_distance[:-1, :-1], padded_distance[:-1, 1:],
                       padded_distance[1:, :-1], padded_distance[1:, 1:]])
    corner_distance = np.where(interior, around.mean(axis=0) - 0.5, 0.0)
    radius = max(float(corner_distance.max()), 1.0)
    t = np.clip(corner_distance / radius, 0.0, 1.0)
    round_profile = DEPTH_RATIO * radius * np.sqrt(t * (2.0 - t))
    # Enough relaxation passes to melt the octagon's ridges at any grid size.
    height_cells = smooth_heights(np.minimum(round_profile, EDGE_SLOPE * corner_distance), interior,
                                  passes=max(4, grid // 3))

    subject_rows = 2 * (int(r[-1]) - int(r[0]) + 1)
    cell_size = height_m / subject_rows

    shell = shell_topology(cells, used, interior)
    ci, cj, bi, bj = shell.front_i, shell.front_j, shell.back_i, shell.back_j
    all_i = np.concatenate([ci, bi]).astype(np.float32)
    all_j = np.concatenate([cj, bj]).astype(np.float32)
    depth = np.concatenate([-height_cells[ci, cj], height_cells[bi, bj]]).astype(np.float32)
    x = (all_j - cells_w / 2.0) * cell_size
    z = (cells_h - all_i) * cell_size
    positions = np.stack([x, depth * cell_size, z], axis=1).astype(np.float32)
    positions[:, 2] -= positions[:, 2].min()
    # The image's own coordinates (glTF's v runs down from the top), in the full grid.
    uvs = np.stack([(all_j / 2 + c0) / grid_w, (all_i / 2 + r0) / grid_h], axis=1).astype(np.float32)
    triangles = shell.triangles
    normals = vertex_normals(positions, triangles)
    return InflateResult(Shape(positions, normals, uvs, triangles), int(cells.sum()) // 4, (cells_h, cells_w))


@dataclass
class ShellTopology:
    """A closed shell over a cell mask: front vertices at every used corner, back vertices at the interior
    corners only (the outline is shared), and the triangles of both sides. Vertex k < len(front_i) is the
    front vertex at corner (front_i[k], front_j[k]); the rest are back vertices at (back_i, back_j)."""

    front_i: npt.NDArray[np.int64]
    front_j: npt.NDArray[np.int64]
    back_i: npt.NDArray[np.int64]
    back_j: npt.NDArray[np.int64]
    triangles: npt.NDArray[np.uint32]


def corner_masks(cells: BoolArray) -> tuple[BoolArray, BoolArray]:
    """Corners (one more row and column than `cells`) touching any cell (`used`) and only cells (`interior`).
    Corner (i, j) touches cells (i-1, j-1), (i-1, j), (i, j-1), (i, j)."""
    padded = np.pad(cells, 1)
    touching = np.stack([padded[:-1, :-1], padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]])
    return touching.any(axis=0), touching.all(axis=0)


def shell_topology(cells: BoolArray, used: BoolArray, interior: BoolArray) -> ShellTopology:
    """The triangles of a closed shell over `cells`, a mask meshed on a 2x finer grid than its subject
    (see `inflate`), so every triangle touches an interior corner: the shell is closed and manifold, with
    front and back apart wherever they are given different depths.
    Seen from the front (-Y, or the camera), column right and row down, the front winds counter-clockwise."""
    # Vertices: every used corner on the front; interior corners again on the back (the outline is shared).
    front_index = np.full(used.shape, -1, np.int64)
    front_index[used] = np.arange(int(used.sum()))
    back_index = front_index.copy()
    back_count = int(interior.sum())
    back_index[interior] = int(used.sum()) + np.arange(back_count)

    ci, cj = np.nonzero(used)
    bi, bj = np.nonzero(interior)

    cell_i, cell_j = np.nonzero(cells)
    a, b = (cell_i, cell_j), (cell_i, cell_j + 1)
    c_, d = (cell_i + 1, cell_j + 1), (cell_i + 1, cell_j)
    fa, fb, fc, fd = front_index[a], front_index[b], front_index[c_], front_index[d]
    ba, bb, bc, bd = back_index[a], back_index[b], back_index[c_], back_index[d]
    # Split each cell along the diagonal through its parent's centre (a-c or b-d by quadrant), so every
    # triangle touches an interior corner. Seen from the front (-Y), x right and z up, a b / d c: a-d-c-b
    # winds counter-clockwise.
    through_ac = (cell_i % 2) == (cell_j % 2)
    front = np.where(through_ac[:, None, None],
                     np.stack([np.stack([fa, fd, fc], 1), np.stack([fa, fc, fb], 1)], 1),
                     np.stack([np.stack([fa, fd, fb], 1), np.stack([fb, fd, fc], 1)], 1)).reshape(-1, 3)
    back = np.where(through_ac[:, None, None],
                    np.stack([np.stack([ba, bc, bd], 1), np.stack([ba, bb, bc], 1)], 1),
                    np.stack([np.stack([ba, bb, bd], 1), np.stack([bb, bc, bd], 1)], 1)).reshape(-1, 3)
    triangles = np.concatenate([front, back]).astype(np.uint32)
    return ShellTopology(ci, cj, bi, bj, triangles)


def smooth_heights(heights: npt.NDArray[Any], interior: BoolArray, passes: int = 4) -> npt.NDArray[np.float32]:
    """Relax the height field (outline pinned at zero) to soften the ridges the octagonal distance leaves."""
    current = heights.astype(np.float32)
    for _ in range(passes):
        padded = np.pad(current, 1, mode="edge")
        average = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]) / 4.0
        current = np.where(interior, 0.5 * current + 0.5 * average, 0.0).astype(np.float32)
    return current


def vertex_normals(positions: npt.NDArray[np.float32], triangles: npt.NDArray[np.uint32]) -> npt.NDArray[np.float32]:
    """Area-weighted smooth normals."""
    p0, p1, p2 = (positions[triangles[:, k]] for k in range(3))
    face = np.cross(p1 - p0, p2 - p0)
    normals = np.zeros_like(positions)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = (normals / np.maximum(length, 1e-12)).astype(np.float32)
    return result
