"""The one request builder, without Blender: names, batches, seeds and what each mode means."""

from __future__ import annotations

import pytest

from addon.jobs import Job, JobKind, JobSpec, Mode, Priority
from addon.requests import (
    SEED_RANGE,
    PanelRequest,
    PreparedInput,
    camera_request,
    derived_seed,
    finish_for,
    image_request,
    manifest_asset_specs,
    manifest_batch,
    multiview_request,
    parts_request,
    promote_request,
    prompt_batch_request,
    text_request,
    view_facing,
)

PRODUCTION = PanelRequest(mode=Mode.PRODUCTION, target="game", face_budget=800, texture_size=512,
                          finish_preset="game", seed=7)


def test_a_draft_has_no_batch_and_numbered_names() -> None:
    request = text_request(PanelRequest(options=2, seed=5), "Wooden Barrel!", {"draft_wooden_barrel_001"})
    assert request.batch is None
    assert [s.name for s in request.specs] == ["draft_wooden_barrel_002", "draft_wooden_barrel_002_v2"]
    assert [s.seed for s in request.specs] == [5, 6]
    assert all(s.mode is Mode.DRAFT and s.batch == "" for s in request.specs)


def test_production_from_a_button_is_a_finished_batch_of_its_own() -> None:
    request = text_request(PRODUCTION, "wooden barrel", {"gen_wooden_barrel_01"})
    batch = request.batch
    assert batch is not None and batch.name == "gen_wooden_barrel_02"
    assert batch.finish is not None and batch.finish.face_budget == 800 and batch.finish.texture_size == 512
    assert batch.finish.lod_ratios == (0.5, 0.25)
    (spec,) = request.specs
    assert spec.name == "gen_wooden_barrel_02_001" and spec.batch == batch.name
    assert spec.params_dict["face_limit"] == 800 and spec.params_dict["target"] == "game"


def test_film_keeps_detail_and_makes_no_lods() -> None:
    finish = finish_for(PanelRequest(mode=Mode.PRODUCTION, target="film", face_budget=800, finish_preset="game"))
    assert finish.lod_ratios == () and finish.face_budget == 5000  # the preset's own, not the game budget


def test_a_prompt_batch_names_each_variation_and_option() -> None:
    request = prompt_batch_request(PanelRequest(mode=Mode.PRODUCTION, options=2), "stone", ["pillar", "arch"], ())
    assert request.batch is not None and request.batch.name == "env_stone_01"
    assert [s.name for s in request.specs] == ["env_stone_01_001", "env_stone_01_001_v2", "env_stone_01_002",
                                               "env_stone_01_002_v2"]
    assert [s.prompt for s in request.specs][::2] == ["stone pillar", "stone arch"]


def test_a_draft_prompt_batch_is_not_finished() -> None:
    request = prompt_batch_request(PanelRequest(), "stone", ["pillar"], ())
    assert request.batch is not None and request.batch.finish is None and request.batch.mode is Mode.DRAFT


def test_images_keep_their_references_for_placement() -> None:
    images = [PreparedInput("/a.png", "/a.npy", label="crate_ref", beside=("crate_ref",))]
    (spec,) = image_request(PanelRequest(), images, ()).specs
    assert spec.kind is JobKind.IMAGE and spec.name == "draft_crate_ref_001"
    assert spec.params_dict["beside"] == ("crate_ref",) and spec.params_dict["prepared_images"] == ("/a.npy",)


def test_multiview_orders_views_and_needs_a_front() -> None:
    views = [PreparedInput("/r.png", "/r.npy", view="right", label="r"),
             PreparedInput("/f.png", "/f.npy", view="front", label="f")]
    (spec,) = multiview_request(PanelRequest(), views, ()).specs
    assert spec.params_dict["views"] == ("front", "right") and spec.image_paths == ("/f.png", "/r.png")
    with pytest.raises(ValueError, match="front view"):
        multiview_request(PanelRequest(), views[:1], ())


def test_parts_share_one_group_name() -> None:
    request = parts_request(PanelRequest(mode=Mode.PRODUCTION), "market stall", ["roof", "counter"], ())
    assert [s.name for s in request.specs] == ["gen_market_stall_01_001_roof", "gen_market_stall_01_001_counter"]


def test_a_camera_job_is_named_and_titled_after_its_camera() -> None:
    capture = PreparedInput("/cache/captures/camera_camera_001_17.png", "/cache/inputs/ab.npy")
    (draft,) = camera_request(PanelRequest(seed=3), capture, "Camera.001", set()).specs
    assert draft.name == "draft_camera_camera_001_001"
    assert Job(draft).label == "Camera: Camera.001", "not the capture's file path"
    assert draft.prompt == "", "the title is never sent to a backend as a prompt"
    production = camera_request(PRODUCTION, capture, "Shot A", set())
    assert production.batch is not None and production.batch.name == "gen_camera_shot_a_01"
    assert Job(production.specs[0]).label == "Camera: Shot A"


def test_promote_changes_only_the_mode() -> None:
    (draft,) = text_request(PanelRequest(seed=99, negative_prompt="blurry"), "wooden barrel", ()).specs
    request = promote_request(PRODUCTION, draft.to_json(), "draft_wooden_barrel_001", ())
    (promoted,) = request.specs
    assert request.batch is not None and request.batch.finish is not None
    assert (promoted.prompt, promoted.seed, promoted.negative_prompt, promoted.kind) == \
        (draft.prompt, draft.seed, draft.negative_prompt, draft.kind)
    assert promoted.mode is Mode.PRODUCTION and promoted.params_dict["replaces"] == "draft_wooden_barrel_001"
    assert promoted.params_dict["detail"] == "fine" and promoted.name == "gen_wooden_barrel_01_001"


def test_manifest_seeds_stay_in_range_and_do_not_depend_on_position() -> None:
    batch = manifest_batch(name="rocks", mode=Mode.PRODUCTION, backend="local", priority=Priority.NORMAL,
                           start_at=None, budget=None, finish=None, target="game", theme=None)
    huge = 10**12
    first = manifest_asset_specs(batch, kind="text", index=0, name="rocks_001", base_seed=huge, prompt="rock",
                                 options=3)
    moved = manifest_asset_specs(batch, kind="text", index=5, name="rocks_001", base_seed=huge, prompt="rock",
                                 options=3)
    assert all(0 <= s.seed < SEED_RANGE for s in first)
    assert [s.seed for s in first] == [s.seed for s in moved]
    assert derived_seed(1, "a") != derived_seed(1, "b")


def test_specs_round_trip_through_json_with_their_name() -> None:
    (spec,) = text_request(PRODUCTION, "crate", ()).specs
    assert JobSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(("normal", "view"), [
    ((0, -1, 0), "front"), ((0, 1, 0), "back"), ((1, 0, 0), "right"), ((-1, 0, 0), "left"),
    ((0, 0, 1), None), ((0.6, -0.6, 0.5), None),
])
def test_view_facing(normal: tuple[float, float, float], view: str | None) -> None:
    assert view_facing(normal) == view
