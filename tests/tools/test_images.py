"""Reference images the tests and benchmarks draw themselves, each with its true subject mask.

Edges are anti-aliased (4x supersampling), as in real renders and photos, so the tests measure the
silhouette extraction honestly rather than on perfect binary masks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]
Shape2D = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], Mask]
SUPERSAMPLE = 4


def _coverage(shape: Shape2D, size: int) -> npt.NDArray[np.float32]:
    """Fraction of each pixel inside `shape`, which takes coordinates in [0, 1] (y down)."""
    n = size * SUPERSAMPLE
    yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n
    inside = shape(xx, yy).astype(np.float32)
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


def _disc(cx: float, cy: float, r: float) -> Shape2D:
    return lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 < r**2


def _capsule(x0: float, y0: float, x1: float, y1: float, r: float) -> Shape2D:
    def inside(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> Mask:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0, 1)
        return (x - x0 - t * dx) ** 2 + (y - y0 - t * dy) ** 2 < r**2
    return inside


def _union(*shapes: Shape2D) -> Shape2D:
    return lambda x, y: np.logical_or.reduce([s(x, y) for s in shapes])


def _star(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> Mask:
    angle = np.arctan2(y - 0.52, x - 0.5)
    radius = np.hypot(x - 0.5, y - 0.52)
    outline = 0.22 + 0.16 * (0.5 + 0.5 * np.cos(5 * (angle + np.pi / 2)))
    return radius < outline


def _lshape(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> Mask:
    return ((x > 0.25) & (x < 0.45) & (y > 0.15) & (y < 0.85)) | ((x > 0.25) & (x < 0.75) & (y > 0.65) & (y < 0.85))


CHARACTER = _union(
    _disc(0.5, 0.17, 0.075),                          # head
    _capsule(0.5, 0.3, 0.5, 0.55, 0.1),               # torso
    _capsule(0.42, 0.3, 0.27, 0.52, 0.035),           # arms
    _capsule(0.58, 0.3, 0.73, 0.52, 0.035),
    _capsule(0.45, 0.6, 0.41, 0.9, 0.045),            # legs
    _capsule(0.55, 0.6, 0.59, 0.9, 0.045),
)

SHAPES: dict[str, Shape2D] = {
    "disc": _disc(0.5, 0.5, 0.3),
    "star": _star,
    "lshape": _lshape,
    "character": CHARACTER,
    "photo": _union(_disc(0.5, 0.58, 0.24), _capsule(0.5, 0.2, 0.5, 0.45, 0.09)),  # a vase
}


def draw(name: str, size: int = 512, *, alpha: bool = False, seed: int = 0) -> tuple[npt.NDArray[np.uint8], Mask]:
    """An RGBA image of a shape and its true mask (coverage >= 0.5).

    "photo" is a shaded, noisy vase-like subject on a plain, slightly noisy backdrop.
    """
    rng = np.random.default_rng(seed)
    shape = SHAPES[name]
    coverage = _coverage(shape, size)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    background = np.array([0.92, 0.91, 0.88])
    if name == "photo":
        light = np.clip(1.1 - 1.3 * np.hypot(xx - 0.38, yy - 0.45), 0.25, 1.0)
        subject = np.stack([0.75 * light, 0.42 * light, 0.22 * light + 0.05], axis=-1)
        noise = rng.normal(0, 0.015, (size, size, 3))
    else:
        subject = np.stack([0.2 + 0.5 * xx, 0.35 + 0 * xx, 0.75 - 0.4 * yy], axis=-1)
        noise = 0.0
    rgb = coverage[..., None] * subject + (1 - coverage[..., None]) * background + noise
    rgba = np.empty((size, size, 4), np.uint8)
    rgba[..., :3] = np.clip(rgb * 255 + 0.5, 0, 255)
    rgba[..., 3] = np.clip(coverage * 255 + 0.5, 0, 255) if alpha else 255
    return rgba, coverage >= 0.5


def multiview_pair(size: int = 384) -> dict[str, tuple[npt.NDArray[np.uint8], Mask]]:
    """A front view (a T) and a left view (an L) of one imaginary object: different silhouettes."""
    tee: Shape2D = lambda x, y: ((y > 0.1) & (y < 0.3) & (x > 0.15) & (x < 0.85)) | (  # noqa: E731
        (y >= 0.3) & (y < 0.9) & (x > 0.4) & (x < 0.6))
    ell: Shape2D = lambda x, y: ((y > 0.1) & (y < 0.9) & (x > 0.3) & (x < 0.5)) | (  # noqa: E731
        (y > 0.7) & (y < 0.9) & (x > 0.3) & (x < 0.75))
    views = {}
    for view, shape in (("front", tee), ("left", ell)):
        coverage = _coverage(shape, size)
        rgba = np.empty((size, size, 4), np.uint8)
        tint = np.array([0.3, 0.5, 0.8]) if view == "front" else np.array([0.8, 0.4, 0.3])
        rgb = coverage[..., None] * tint + (1 - coverage[..., None]) * 0.95
        rgba[..., :3] = np.clip(rgb * 255 + 0.5, 0, 255)
        rgba[..., 3] = 255
        views[view] = (rgba, coverage >= 0.5)
    return views


def save_npy(rgba: npt.NDArray[np.uint8], path: Path) -> Path:
    np.save(path, rgba)
    return path


def cropped(mask: Mask) -> Mask:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def iou(a: Mask, b: Mask) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def resize_mask(mask: Mask, height: int, width: int) -> Mask:
    """Resample a boolean mask (up or down) by 4x4 point sampling per target pixel, at half coverage."""
    h, w = mask.shape
    ys = np.minimum(((np.arange(height * 4) + 0.5) * h / (height * 4)).astype(int), h - 1)
    xs = np.minimum(((np.arange(width * 4) + 0.5) * w / (width * 4)).astype(int), w - 1)
    samples = mask[ys][:, xs].astype(np.float32)
    return np.asarray(samples.reshape(height, 4, width, 4).mean(axis=(1, 3)) >= 0.5)
