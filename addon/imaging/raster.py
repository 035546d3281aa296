"""Raster helpers on numpy arrays, shared by every layer: exact area resampling and connected
components of masks (fast for clean masks because they work on runs, not pixels)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]


def resample_area(image: npt.NDArray[Any], height: int, width: int) -> FloatArray:
    """Area-average resampling to (height, width) on the first two axes (exact box filter)."""
    out = _resample_axis(np.asarray(image, np.float32), height, 0)
    return _resample_axis(out, width, 1)


def _resample_axis(array: FloatArray, size: int, axis: int) -> FloatArray:
    moved = np.moveaxis(array, axis, 0)
    length = moved.shape[0]
    if length == size:
        return array
    integral = np.concatenate([np.zeros_like(moved[:1]), np.cumsum(moved, axis=0, dtype=np.float64)], axis=0)
    positions = np.linspace(0.0, length, size + 1)
    index = np.minimum(np.floor(positions).astype(np.int64), length - 1)
    frac = (positions - index).reshape(-1, *([1] * (moved.ndim - 1)))
    sampled = integral[index] * (1.0 - frac) + integral[index + 1] * frac
    result = np.diff(sampled, axis=0) / (length / size)
    return np.moveaxis(result.astype(np.float32), 0, axis)


def work_shape(height: int, width: int, limit: int) -> tuple[int, int]:
    scale = min(1.0, limit / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _runs(mask: BoolArray) -> list[tuple[int, int, int]]:
    """Horizontal runs of True as (row, start, end) with `end` exclusive."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    changes = np.diff(padded, axis=1)
    rows, starts = np.nonzero(changes == 1)
    ends = np.nonzero(changes == -1)[1]  # row-major order: the n-th end closes the n-th start
    return list(zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True))


def label_components(mask: BoolArray) -> tuple[npt.NDArray[np.int32], list[int]]:
    """4-connected components, labelled 1..N, with their pixel counts (index 0 unused).

    Works on runs rather than pixels, so it stays fast in pure Python for clean masks.
    """
    runs = _runs(mask)
    parent = list(range(len(runs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_row: dict[int, list[int]] = {}
    for index, (row, _, _) in enumerate(runs):
        by_row.setdefault(row, []).append(index)
    for row, indices in by_row.items():
        above = by_row.get(row - 1, [])
        j = 0
        for i in indices:
            _, start, end = runs[i]
            while j < len(above) and runs[above[j]][2] <= start:
                j += 1
            k = j
            while k < len(above) and runs[above[k]][1] < end:
                a, b = find(i), find(above[k])
                if a != b:
                    parent[a] = b
                k += 1
    labels = np.zeros(mask.shape, np.int32)
    roots: dict[int, int] = {}
    sizes = [0]
    for index, (row, start, end) in enumerate(runs):
        root = find(index)
        if root not in roots:
            roots[root] = len(sizes)
            sizes.append(0)
        label = roots[root]
        labels[row, start:end] = label
        sizes[label] += end - start
    return labels, sizes


def keep_largest_component(mask: BoolArray) -> tuple[BoolArray, int]:
    labels, sizes = label_components(mask)
    if len(sizes) <= 1:
        return mask, 0
    largest = int(np.argmax(sizes[1:])) + 1
    return labels == largest, len(sizes) - 2


def fill_holes(mask: BoolArray) -> tuple[BoolArray, int]:
    """Fill background regions that do not touch the image border."""
    labels, sizes = label_components(~mask)
    border_labels = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    holes = [label for label in range(1, len(sizes)) if label not in border_labels]
    if not holes:
        return mask, 0
    return mask | np.isin(labels, holes), len(holes)
