"""Separate a reference image's subject from its background, robustly and with numpy only.

The alpha channel is the mask when the image has real transparency. Otherwise the background colour
is estimated from the border, pixels that stand out from it form the subject, and the result is
cleaned: only the largest connected component is kept (specks dropped) and its holes are filled.
An image with no separable subject (blank, noise, a busy background) raises `NoSubject` with a
message the artist can act on, before anything is spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .raster import BoolArray, FloatArray, fill_holes, keep_largest_component, resample_area, work_shape

WORK_SIZE = 512
"""Longest side of the working mask: enough for a 0.90 IoU at Production, cheap for a 1024² input."""


class NoSubject(ValueError):
    """The image has no subject Kiln can separate from its background."""

    code = "no_subject"


@dataclass
class Silhouette:
    mask: BoolArray
    """Subject mask at working resolution, row 0 at the top."""
    source: str
    """"alpha" or "background"."""
    notes: list[str] = field(default_factory=list)

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1), half-open."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def extract(rgba: npt.NDArray[np.uint8], work_size: int = WORK_SIZE) -> Silhouette:
    """The subject of an (H, W, 4) uint8 RGBA image (top row first)."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError("expected an RGBA image")
    height, width = rgba.shape[:2]
    if min(height, width) < 8:
        raise NoSubject(f"the image is only {width}x{height} pixels; it needs a visible subject")
    notes: list[str] = []
    alpha = rgba[:, :, 3].astype(np.float32) / 255.0
    transparent = float((alpha < 0.5).mean())
    if 0.01 < transparent < 0.99:
        full_mask = alpha >= 0.5
        source = "alpha"
    else:
        full_mask = _mask_from_background(rgba[:, :, :3].astype(np.float32) / 255.0)
        source = "background"
    work_h, work_w = work_shape(height, width, work_size)
    coverage = resample_area(full_mask.astype(np.float32), work_h, work_w)
    mask = coverage >= 0.5
    mask, dropped = keep_largest_component(mask)
    if dropped:
        notes.append(f"dropped {dropped} small speck(s) apart from the subject")
    mask, filled = fill_holes(mask)
    if filled:
        notes.append(f"filled {filled} hole(s) inside the subject")
    share = float(mask.mean())
    if share < 0.005:
        raise NoSubject("no subject stands out from the background (the image looks blank or is mostly noise)")
    if share > 0.97:
        raise NoSubject("the subject fills the whole frame: leave some plain background around it")
    return Silhouette(mask, source, notes)


def _mask_from_background(rgb: FloatArray) -> BoolArray:
    height, width = rgb.shape[:2]
    ring = max(2, round(0.02 * min(height, width)))
    border = np.concatenate([
        rgb[:ring].reshape(-1, 3), rgb[-ring:].reshape(-1, 3),
        rgb[:, :ring].reshape(-1, 3), rgb[:, -ring:].reshape(-1, 3),
    ])
    background = np.median(border, axis=0)
    border_spread = float(np.percentile(np.linalg.norm(border - background, axis=1), 90))
    if border_spread > 0.15:
        raise NoSubject(
            "the background is not plain (its edges vary too much, or the image is noise); "
            "use a subject on a plain background, or an image with transparency"
        )
    distance = np.linalg.norm(rgb - background, axis=2)
    floor = max(0.06, 3.0 * border_spread)
    standing_out = distance > floor
    if standing_out.mean() < 0.002:
        raise NoSubject("no subject stands out from the background (the image looks blank)")
    # Half the subject's typical contrast puts the cut through anti-aliased edges at about half
    # coverage, which is where the true outline is.
    contrast = float(np.median(distance[standing_out]))
    return np.asarray(distance > max(floor, 0.5 * contrast))
