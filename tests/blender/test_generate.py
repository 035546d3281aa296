"""kiln.generate end to end on the local backend: what lands in the scene, and what bad input says."""

from __future__ import annotations

import importlib
import itertools
from types import ModuleType

import pytest


def drafts() -> list:
    import bpy

    collection = bpy.data.collections.get("Kiln Drafts")
    return sorted(collection.objects, key=lambda o: o.location.x) if collection else []


def test_a_draft_lands_named_with_its_metadata(runtime: ModuleType) -> None:
    import bpy

    assert bpy.ops.kiln.generate(prompt="wooden crate with iron bands") == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    (obj,) = drafts()
    assert obj.name == "draft_wooden_crate_with_iron_bands_001"
    assert obj["kiln_prompt"] == "wooden crate with iron bands"
    assert obj["kiln_backend"] == "local" and obj["kiln_mode"] == "draft"
    assert obj["kiln_matched"] == "crate" and obj["kiln_task_id"].startswith("local-")
    assert obj["kiln_seed"] > 0
    assert len(obj.data.polygons) >= 6 and len(obj.material_slots) == 2
    assert {slot.material.name.split(".")[0] for slot in obj.material_slots} == {"wooden", "iron"}


def test_options_give_distinct_seeds_and_drafts_sit_side_by_side(runtime: ModuleType) -> None:
    import bpy

    bpy.context.scene.kiln.options = 3
    bpy.ops.kiln.generate(prompt="mossy rock")
    assert runtime.run_until_done(timeout=30)
    objects = drafts()
    assert len(objects) == 3
    assert len({o["kiln_seed"] for o in objects}) == 3
    for left, right in itertools.pairwise(objects):
        gap = (right.location.x - right.dimensions.x / 2) - (left.location.x + left.dimensions.x / 2)
        assert gap > 0.1, "drafts are placed beside each other, not on top"


def test_unknown_noun_gets_a_generic_blockout_and_says_so(runtime: ModuleType) -> None:
    import bpy

    bpy.ops.kiln.generate(prompt="a fearsome xylophone")  # "dragon" became an archetype (issue 17)
    assert runtime.run_until_done(timeout=30)
    (obj,) = drafts()
    assert obj["kiln_matched"] == ""
    assert "does not know 'xylophone'" in obj["kiln_warnings"]
    (job,) = [j for j in runtime.scheduler().views() if j.spec.prompt == "a fearsome xylophone"]
    assert job.warnings == ("local engine does not know 'xylophone'; generic blockout used",)


def test_a_negative_prompt_is_held_to_the_backends_own_limit(runtime: ModuleType) -> None:
    """Local has no negative prompt: a long one is ignored (the panel's tip says so), never a refusal.
    Tripo's 255-character limit is a hard error there (tests/unit/test_preflight.py)."""
    import bpy

    panel = importlib.import_module(runtime.__name__.replace(".runtime", ".panel"))
    settings = bpy.context.scene.kiln
    settings.negative_prompt = "blurry " * 50
    try:
        assert bpy.ops.kiln.generate(prompt="crate") == {"FINISHED"}
        settings.prompt = "crate"
        assert "negative_ignored" in {f.code for f in panel.scene_prompt_findings(settings)}
    finally:
        settings.negative_prompt = ""
    assert runtime.run_until_done(timeout=60)


@pytest.mark.parametrize(("prompt", "message"), [("   ", "empty"), ("x" * 1100, "limit is 1024")])
def test_bad_prompts_are_refused_and_queue_nothing(runtime: ModuleType, prompt: str, message: str) -> None:
    import bpy

    before = len(runtime.scheduler().views())
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.kiln.generate(prompt=prompt)
    assert len(runtime.scheduler().views()) == before
    assert drafts() == []
