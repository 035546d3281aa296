"""Image → 3D and multiview in the local engine, without Blender: masks, meshes, files, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gltf_validator import validate
from test_images import SHAPES, draw, iou, multiview_pair, resize_mask

from addon.backends.base import BackendError
from addon.backends.local import generate_image, generate_multiview
from addon.imaging.glb import read_glb_json
from addon.imaging.png import decode_own_png
from addon.imaging.raster import fill_holes, keep_largest_component
from addon.imaging.silhouette import NoSubject, extract
from addon.jobs import JobKind, JobSpec, Mode


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("alpha", [False, True])
def test_subject_mask_matches_the_truth(name: str, alpha: bool) -> None:
    rgba, truth = draw(name, 640, alpha=alpha)
    silhouette = extract(rgba)
    assert silhouette.source == ("alpha" if alpha else "background")
    assert iou(silhouette.mask, resize_mask(truth, *silhouette.mask.shape)) > 0.97


def test_specks_are_dropped_and_holes_filled() -> None:
    rgba, truth = draw("disc", 400)
    rgba[20:26, 20:26, :3] = 10  # a speck of dirt in the corner
    rgba[195:205, 195:205, :3] = 235  # a hole the colour of the background in the middle
    silhouette = extract(rgba)
    assert any("speck" in note for note in silhouette.notes) and any("hole" in note for note in silhouette.notes)
    assert iou(silhouette.mask, resize_mask(truth, *silhouette.mask.shape)) > 0.97


def test_components_and_holes_helpers() -> None:
    mask = np.zeros((9, 9), bool)
    mask[1:8, 1:8] = True
    mask[4, 4] = False  # a hole
    mask[0, 8] = True  # a speck
    kept, dropped = keep_largest_component(mask)
    assert dropped == 1 and not kept[0, 8]
    filled, holes = fill_holes(kept)
    assert holes == 1 and filled[4, 4]


@pytest.mark.parametrize(("image", "message"), [
    (np.full((200, 200, 4), 128, np.uint8), "no subject stands out"),
    ("noise", "background is not plain"),
    ("full", "fills the whole frame"),
    (np.full((4, 4, 4), 255, np.uint8), "only 4x4 pixels"),
])
def test_images_without_a_separable_subject_say_why(image: object, message: str) -> None:
    if isinstance(image, str) and image == "noise":
        image = np.random.default_rng(0).integers(0, 256, (200, 200, 4), dtype=np.uint8)
        image[..., 3] = 255  # type: ignore[index]
    elif isinstance(image, str) and image == "full":
        image = np.full((200, 200, 4), 255, np.uint8)
        image[..., 3] = 0  # type: ignore[index]
        image[1:-1, 1:-1, 3] = 255  # type: ignore[index]
    with pytest.raises(NoSubject, match=message):
        extract(image)  # type: ignore[arg-type]


def test_image_results_are_valid_glbs_with_texture_and_preview(tmp_path: Path) -> None:
    rgba, _ = draw("character", 512, alpha=True)
    files, triangles = [], {}
    for mode in (Mode.DRAFT, Mode.PRODUCTION):
        result = generate_image(JobSpec(kind=JobKind.IMAGE, backend="local", mode=mode), rgba, tmp_path / mode.value)
        model = Path(result.files["model"])
        document = read_glb_json(model)
        assert document["images"][0]["mimeType"] == "image/png"
        assert document["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"] == {"index": 0}
        preview = decode_own_png(Path(result.files["preview"]).read_bytes())
        assert preview.shape[2] == 3 and preview.std() > 10, "the preview shows something"
        triangles[mode] = result.metadata["triangles"]
        files.append(model)
    assert triangles[Mode.DRAFT] * 4 < triangles[Mode.PRODUCTION], "Draft is coarse, Production fine"
    mv = generate_multiview(JobSpec(kind=JobKind.MULTIVIEW, backend="local"),
                            {view: pair[0] for view, pair in multiview_pair().items()}, tmp_path / "mv")
    files.append(Path(mv.files["model"]))
    reports = validate(files)
    assert {p: (r["errors"], r["warnings"]) for p, r in reports.items()} == {str(f): (0, 0) for f in files}


def test_multiview_needs_usable_views(tmp_path: Path) -> None:
    views = {view: pair[0] for view, pair in multiview_pair().items()}
    spec = JobSpec(kind=JobKind.MULTIVIEW, backend="local")
    with pytest.raises(BackendError, match="left or right view"):
        generate_multiview(spec, {"front": views["front"], "back": views["front"]}, tmp_path / "a")
    with pytest.raises(BackendError, match="unknown view"):
        generate_multiview(spec, {"front": views["front"], "top": views["left"]}, tmp_path / "b")
    blank = np.full((100, 100, 4), 200, np.uint8)
    with pytest.raises(BackendError, match="left view: no subject"):
        generate_multiview(spec, {"front": views["front"], "left": blank}, tmp_path / "c")


def test_bitmap_font_draws_names() -> None:
    from addon.imaging.font import burn_text, text_mask

    mask = text_mask("env_01", scale=1)
    assert mask.shape == (5, 6 * 4) and mask.any()
    image = np.zeros((20, 60, 3), np.uint8)
    burn_text(image, "ab", x=2, y=2, scale=2)
    assert (image == 235).any()
