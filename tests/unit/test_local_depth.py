"""The camera-depth solid of the local engine without Blender: depth maps of boxes drawn by exact ray
casting in numpy become closed, manifold solids of the box's size, in world orientation, and valid GLBs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from gltf_validator import validate

from addon.backends.base import BackendError
from addon.backends.local import depth as depth_module
from addon.backends.local import generate
from addon.backends.local.depth import build, downsample
from addon.backends.local.shapes import Shape
from addon.imaging import depth_map
from addon.imaging.depth_map import DepthCapture, load, save
from addon.imaging.glb import read_glb_json
from addon.jobs import JobKind, JobSpec, Mode
from addon.modes import PREPARED_IMAGES
from addon.requests import CAPTURE, capture_param

DEFAULT_CAMERA = (7.36, -6.93, 4.96)
"""Where Blender's default scene has its camera: in front, to the right and above."""


def look_at(eye: tuple[float, float, float], target: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """A camera-to-world matrix looking from `eye` at `target`, upright (camera Y towards world Z)."""
    position = np.asarray(eye, float)
    forward = np.asarray(target, float) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2], matrix[:3, 3] = right, np.cross(right, forward), -forward, position
    return matrix


def box_capture(eye: tuple[float, float, float], size: tuple[float, float, float], yaw_deg: float = 0.0,
                grid: int = 96, perspective: bool = True) -> DepthCapture:
    """What a camera at `eye` measures of a box of `size` centred on the origin and turned `yaw_deg`
    about Z: exact ray-box (slab) intersections, the way Blender's ray cast reports them."""
    camera = look_at(eye, (0.0, 0.0, 0.0))
    # The window around the subject: on the plane one unit in front of the lens, or in metres (ortho).
    half_frame = 0.16 if perspective else 1.8
    frame = (-half_frame, half_frame, -half_frame, half_frame)
    window = (0.3, 0.7, 0.3, 0.7)
    empty = DepthCapture(np.zeros((grid, grid), np.float32), camera, frame, -1.0, perspective, window)
    rows, cols = np.mgrid[0:grid, 0:grid] + 0.5
    start = empty.points(rows, cols, np.zeros(rows.shape)).astype(float)
    one_ahead = empty.points(rows, cols, np.ones(rows.shape)).astype(float)
    turn = math.radians(yaw_deg)
    to_box = np.array([[math.cos(turn), math.sin(turn), 0], [-math.sin(turn), math.cos(turn), 0], [0, 0, 1]])
    origin = start @ to_box.T
    direction = (one_ahead - start) @ to_box.T  # per unit of depth along the view
    half = np.asarray(size) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (-half - origin) / direction, (half - origin) / direction
    near = np.nanmax(np.minimum(t0, t1), axis=-1)
    far = np.nanmin(np.maximum(t0, t1), axis=-1)
    depth = np.where((near <= far) & (far > 0), near, np.inf).astype(np.float32)
    return DepthCapture(depth, camera, frame, -1.0, perspective, window)


def volume(shape: Shape) -> float:
    """Signed volume: positive when the closed surface's triangles face outwards."""
    p = shape.positions.astype(float)
    t = shape.indices.reshape(-1, 3)
    return float(np.einsum("ij,ij->i", p[t[:, 0]], np.cross(p[t[:, 1]], p[t[:, 2]])).sum() / 6)


def closed_and_manifold(shape: Shape) -> bool:
    """Every edge is used once in each direction by exactly two triangles (no holes, no fins)."""
    t = shape.indices.reshape(-1, 3).astype(np.int64)
    edges = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    directed = edges[:, 0] * (1 << 32) + edges[:, 1]
    reverse = edges[:, 1] * (1 << 32) + edges[:, 0]
    return len(np.unique(directed)) == len(directed) and bool(np.isin(reverse, directed).all())


@pytest.mark.parametrize("perspective", [True, False])
def test_a_box_seen_from_the_default_camera_becomes_a_closed_box_of_its_size(perspective: bool) -> None:
    result = build(box_capture(DEFAULT_CAMERA, (2.0, 2.0, 2.0), perspective=perspective))
    positions = result.shape.positions
    assert closed_and_manifold(result.shape)
    assert volume(result.shape) == pytest.approx(8.0, rel=0.1), "outward-facing, and the cube's volume"
    assert positions.min(axis=0) == pytest.approx((-1.0, -1.0, -1.0), abs=0.08)
    assert positions.max(axis=0) == pytest.approx((1.0, 1.0, 1.0), abs=0.08)
    assert result.floor == pytest.approx(-1.0, abs=0.05), "it stands where the box stood"


@pytest.mark.parametrize("yaw", [0.0, 30.0])
def test_a_long_box_keeps_its_heading_in_world_space(yaw: float) -> None:
    """A 2 x 1 x 1 box turned by `yaw`: the solid is as long, as turned, wherever the camera stood."""
    result = build(box_capture((-5.0, -7.0, 3.0), (2.0, 1.0, 1.0), yaw))
    assert closed_and_manifold(result.shape)
    turn = math.radians(yaw)
    along_box = result.shape.positions[:, :2] @ np.array([[math.cos(turn), -math.sin(turn)],
                                                           [math.sin(turn), math.cos(turn)]])
    extent = along_box.max(axis=0) - along_box.min(axis=0)
    assert extent == pytest.approx((2.0, 1.0), abs=0.12)
    assert volume(result.shape) == pytest.approx(2.0, rel=0.15)


def test_a_box_seen_square_on_is_given_depth_by_the_prior() -> None:
    """Straight on, the camera sees one face and no depth at all: the solid is not a sheet."""
    result = build(box_capture((0.0, -8.0, 0.0), (2.0, 2.0, 2.0)))
    depth = float(np.ptp(result.shape.positions[:, 1]))
    assert closed_and_manifold(result.shape)
    assert depth >= depth_module.DEPTH_PRIOR * 2.0 * 0.9, "as deep as the prior assumes, at least"


def test_a_coarser_grid_gives_the_same_solid_with_fewer_triangles() -> None:
    capture = box_capture(DEFAULT_CAMERA, (2.0, 2.0, 2.0))
    fine, coarse = build(capture), build(downsample(capture, 2), samples=24)
    assert closed_and_manifold(coarse.shape)
    assert len(coarse.shape.indices) * 3 < len(fine.shape.indices)
    assert volume(coarse.shape) == pytest.approx(volume(fine.shape), rel=0.08)


def test_nothing_in_view_is_refused() -> None:
    capture = box_capture(DEFAULT_CAMERA, (2.0, 2.0, 2.0))
    empty = DepthCapture(np.full_like(capture.depth, np.inf), capture.camera_to_world, capture.frame,
                         capture.plane_z, capture.perspective, capture.window)
    with pytest.raises(ValueError, match="sees nothing"):
        build(empty)


def test_a_capture_file_round_trips_and_a_foreign_version_is_refused(tmp_path: Path) -> None:
    capture = box_capture(DEFAULT_CAMERA, (2.0, 2.0, 2.0), grid=32)
    normals = np.zeros((*capture.depth.shape, 3), np.float32)
    normals[..., 2] = 1.0
    path = tmp_path / "camera_depth.npz"
    save(path, DepthCapture(capture.depth, capture.camera_to_world, capture.frame, capture.plane_z,
                            capture.perspective, capture.window, normals))
    loaded = load(path)
    assert np.array_equal(loaded.depth, capture.depth) and loaded.frame == capture.frame
    assert loaded.normals is not None and loaded.normals[0, 0, 2] == 1.0
    with np.load(path) as data:
        arrays = dict(data)
    arrays["format"] = np.int32(depth_map.FORMAT + 1)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(ValueError, match="format"):
        load(tmp_path / "future.npz")


def test_the_local_engine_writes_a_valid_textured_glb_from_a_depth_capture(tmp_path: Path) -> None:
    capture = box_capture(DEFAULT_CAMERA, (2.0, 2.0, 2.0), grid=128)  # as Blender captures it
    save(tmp_path / "depth.npz", capture)
    image = np.zeros((90, 160, 4), np.uint8)
    image[..., :3], image[20:70, 60:100, 3] = 180, 255
    np.save(tmp_path / "image.npy", image)
    params = {PREPARED_IMAGES: (str(tmp_path / "image.npy"),),
              CAPTURE: capture_param("Camera", ["Cube"], str(tmp_path / "depth.npz"))}
    spec = JobSpec(kind=JobKind.IMAGE, backend="local", mode=Mode.DRAFT, params=JobSpec.make_params(params))
    result = generate(spec, tmp_path / "out")
    assert result.metadata["mask_source"] == "depth"
    document = read_glb_json(Path(result.files["model"]))
    assert document["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"] == {"index": 0}
    low, high = document["accessors"][0]["min"], document["accessors"][0]["max"]
    assert [h - lo for lo, h in zip(low, high, strict=True)] == pytest.approx([2.0, 2.0, 2.0], abs=0.15)
    reports = validate([Path(result.files["model"])])
    assert [(r["errors"], r["warnings"]) for r in reports.values()] == [(0, 0)]

    (tmp_path / "depth.npz").unlink()
    with pytest.raises(BackendError, match="depth capture is gone"):
        generate(spec, tmp_path / "again")
