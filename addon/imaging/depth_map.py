"""What a camera measured of the scene: a depth map on a grid over part of its frame, with the camera's
placement and lens, so any layer can turn samples into world points and world points into samples.

Blender writes it (`addon/blender/capture.py`, by ray casting the scene) and the local engine reads it
(`addon/backends/local/depth.py`, which builds the subject's solid). Plain numpy, stored as `.npz`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .raster import BoolArray, FloatArray

FORMAT = 1
"""Version of the `.npz` a capture writes; a capture of another version is refused, not misread."""

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
        0 at the window's top or left edge, `rows`/`cols` of the grid at the bottom or right edge.
        float32 throughout: millions of points per solid, and a tenth of a millimetre is plenty."""
        height, width = self.depth.shape
        x0, x1, y0, y1 = self.frame
        x = np.float32(x0) + np.asarray(cols, np.float32) * np.float32((x1 - x0) / width)
        y = np.float32(y1) - np.asarray(rows, np.float32) * np.float32((y1 - y0) / height)
        z = np.asarray(depth, np.float32)
        if self.perspective:
            scale = z * np.float32(1.0 / -self.plane_z)
            x, y = x * scale, y * scale
        x, y = np.broadcast_arrays(x, y)
        x, y, z = np.broadcast_arrays(x, y, z)
        m = self.camera_to_world.astype(np.float32)
        world = np.empty((*x.shape, 3), np.float32)
        for axis in range(3):
            world[..., axis] = m[axis, 0] * x + m[axis, 1] * y - m[axis, 2] * z + m[axis, 3]
        return world

    def project(self, world: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray, FloatArray]:
        """World points → (row, col, depth) on the grid: continuous, pixel centres at .5."""
        m = self.camera_to_world.astype(np.float32)
        dx, dy, dz = (world[..., axis] - m[axis, 3] for axis in range(3))
        # The camera's axes are the matrix columns: local = R^T (world - origin).
        x = m[0, 0] * dx + m[1, 0] * dy + m[2, 0] * dz
        y = m[0, 1] * dx + m[1, 1] * dy + m[2, 1] * dz
        depth = -(m[0, 2] * dx + m[1, 2] * dy + m[2, 2] * dz)
        if self.perspective:
            with np.errstate(divide="ignore", invalid="ignore"):
                inverse = np.where(depth > 1e-9, np.float32(-self.plane_z) / depth, np.nan).astype(np.float32)
            x, y = x * inverse, y * inverse
        height, width = self.depth.shape
        x0, x1, y0, y1 = self.frame
        cols = (x - np.float32(x0)) * np.float32(width / (x1 - x0))
        rows = (np.float32(y1) - y) * np.float32(height / (y1 - y0))
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
