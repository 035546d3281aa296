"""Geometry checks on the engine's MeshParts, bpy-free: closed shells and a silhouette shape distance."""

from __future__ import annotations

import numpy as np

from addon.imaging.glb import MeshPart


def merged(parts: list[MeshPart]) -> tuple[np.ndarray, np.ndarray]:
    """All positions and (M, 3) triangles of the parts as one mesh."""
    positions = np.concatenate([p.positions for p in parts])
    offsets = np.cumsum([0] + [len(p.positions) for p in parts[:-1]])
    triangles = np.concatenate([p.indices.reshape(-1, 3) + o for p, o in zip(parts, offsets, strict=True)])
    return positions, triangles


def shell_problems(parts: list[MeshPart]) -> list[str]:
    """Why the mesh is not a set of closed, consistently wound, non-degenerate shells once vertices
    at the same position are merged (as Kiln's importer welds them); [] when it is."""
    positions, triangles = merged(parts)
    rows = np.ascontiguousarray(positions, np.float32).view(np.dtype((np.void, 12))).ravel()
    _, welded = np.unique(rows, return_inverse=True)  # exact positions, as one 12-byte key each
    corners = welded.ravel()[triangles]
    problems = []
    a, b, c = (positions[triangles[:, i]].astype(np.float64) for i in range(3))
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1) / 2
    if (area <= 1e-12).any():
        problems.append(f"{int((area <= 1e-12).sum())} degenerate triangles")
    directed = np.concatenate([corners[:, [0, 1]], corners[:, [1, 2]], corners[:, [2, 0]]])
    keys = directed[:, 0].astype(np.int64) * (len(positions) + 1) + directed[:, 1]
    reverse = directed[:, 1].astype(np.int64) * (len(positions) + 1) + directed[:, 0]
    unique, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        problems.append(f"{int((counts > 1).sum())} edges used twice in one direction (flipped or non-manifold)")
    missing = ~np.isin(reverse, unique)
    if missing.any():
        problems.append(f"{int(missing.sum())} open edges")
    volume = float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)
    if volume <= 0:
        problems.append(f"inside out (volume {volume:.4f})")
    return problems


def silhouettes(parts: list[MeshPart], low: np.ndarray, high: np.ndarray, cells: int = 32) -> np.ndarray:
    """Front, side and top occupancy grids of the surface, in the frame [low, high]."""
    positions, triangles = merged(parts)
    span = np.maximum(high - low, 1e-6)
    unit = (positions - low) / span * cells
    a, b, c = (unit[triangles[:, i]] for i in range(3))
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1) / 2
    samples = np.clip((area * 6).astype(int), 3, 400)
    which = np.repeat(np.arange(len(triangles)), samples)
    rng = np.random.default_rng(0)
    u, v = rng.random(len(which)), rng.random(len(which))
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    points = a[which] + (b[which] - a[which]) * u[:, None] + (c[which] - a[which]) * v[:, None]
    points = np.vstack([points, unit])
    grid = np.clip(points.astype(int), 0, cells - 1)
    views = np.zeros((3, cells, cells), bool)
    for view, (i, j) in enumerate(((0, 2), (1, 2), (0, 1))):
        views[view, grid[:, i], grid[:, j]] = True
    return views


def shape_distances(meshes: list[list[MeshPart]]) -> np.ndarray:
    """Pairwise shape distance: 1 - IoU of the front, side and top silhouettes in one shared frame,
    worst view. 0 for the same shape, growing as outline, proportions or parts differ."""
    points = np.concatenate([merged(m)[0] for m in meshes])
    low, high = points.min(axis=0), points.max(axis=0)
    views = [silhouettes(m, low, high) for m in meshes]
    distances = np.zeros((len(meshes), len(meshes)))
    for i in range(len(meshes)):
        for j in range(i + 1, len(meshes)):
            union = (views[i] | views[j]).sum(axis=(1, 2))
            iou = (views[i] & views[j]).sum(axis=(1, 2)) / np.maximum(union, 1)
            distances[i, j] = distances[j, i] = 1 - iou.min()
    return distances
