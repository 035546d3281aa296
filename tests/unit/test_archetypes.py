"""The offline engine's archetype kit: every archetype closed and valid in both modes, Production
finer than Draft within budget, words that change the shape, counts, composition, and ten seeds
giving ten different blockouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gltf_validator import validate
from mesh_checks import merged, shape_distances, shell_problems

from addon.backends.local import generate_text
from addon.backends.local.catalog import ARCHETYPES
from addon.backends.local.text import build, plan
from addon.imaging.glb import Material, MeshPart, read_glb_json, write_glb
from addon.jobs import JobKind, JobSpec, Mode

KIT_GROUPS = {"props", "containers", "furniture", "architecture", "street", "vehicles", "vegetation", "rocks",
              "weapons", "scifi", "fantasy", "creatures"}


def blockout(prompt: str, seed: int = 7, production: bool = False,
             face_budget: int | None = None) -> tuple[list[MeshPart], list[Material]]:
    return build(plan(prompt, production), seed, production, face_budget=face_budget)


def triangles(parts: list[MeshPart]) -> int:
    return sum(p.indices.size // 3 for p in parts)


def extent(parts: list[MeshPart]) -> np.ndarray:
    return np.ptp(merged(parts)[0], axis=0)


def test_the_kit_has_about_120_archetypes_in_every_group_each_named_by_its_own_first_word() -> None:
    assert len(ARCHETYPES) >= 120
    assert {a.category for a in ARCHETYPES} == KIT_GROUPS
    assert len({a.name for a in ARCHETYPES}) == len(ARCHETYPES)
    for group in KIT_GROUPS:
        assert sum(a.category == group for a in ARCHETYPES) >= 6, group
    # tests/blender/test_local_meshes.py generates each archetype from its first word.
    misread = {a.name: plan(a.words[0], False).archetype for a in ARCHETYPES}
    assert {name: got.name if got else None for name, got in misread.items() if got is None or got.name != name} == {}


def test_every_archetype_is_closed_valid_gltf_and_finer_in_production(tmp_path: Path) -> None:
    files, problems, counts = [], {}, {}
    for archetype in ARCHETYPES:
        for production in (False, True):
            parts, materials = blockout(archetype.words[0], production=production)
            found = shell_problems(parts)
            if found:
                problems[f"{archetype.name} {'production' if production else 'draft'}"] = found
            counts[archetype.name, production] = triangles(parts)
            path = tmp_path / f"{archetype.name}_{int(production)}.glb"
            write_glb(path, archetype.name, parts, materials, extras={"matched": archetype.name})
            files.append(path)
    assert problems == {}
    # Production: bevels, more segments, secondary detail, within the default face budget.
    coarse = {name: (counts[name, False], counts[name, True]) for name, production in counts
              if production and counts[name, True] < 1.5 * counts[name, False]}
    assert coarse == {}
    assert max(counts.values()) <= 12000
    reports = validate(files)  # one validator process for all of them
    assert len(reports) == len(files)
    assert {p: r["messages"] for p, r in reports.items() if r["errors"] or r["warnings"]} == {}


def test_a_face_budget_steps_detail_down_instead_of_overshooting() -> None:
    heavy, _ = blockout("shipping container", production=True)
    assert triangles(heavy) > 2000
    capped, _ = blockout("shipping container", production=True, face_budget=2000)
    assert triangles(capped) <= 2000
    assert triangles(capped) > triangles(blockout("shipping container")[0]), "still finer than Draft"


def test_production_adds_secondary_detail_not_only_segments() -> None:
    # Planks on a crate, bark bands on a tree, the barrel's middle hoop: more shells, not just rounder ones.
    for prompt in ("crate", "oak tree", "barrel", "bookshelf", "car"):
        draft_shells = len(plan(prompt, False).archetype.parts)  # type: ignore[union-attr]
        assert draft_shells
        draft, _ = blockout(prompt)
        production, _ = blockout(prompt, production=True)
        assert len(merged(production)[0]) > 2 * len(merged(draft)[0]), prompt


@pytest.mark.parametrize("prompt", [
    "broken barrel", "damaged car", "rusty sci-fi crate", "mossy rock", "overgrown stone wall", "ornate sword",
    "ornate throne", "simple chair", "three barrels", "stack of crates", "pile of rocks", "candle on a table",
    "table with candle", "knight with sword", "xylophone on a table", "post-apocalyptic truck",
])
def test_modified_and_composed_blockouts_stay_closed(prompt: str) -> None:
    for production in (False, True):
        parts, _ = blockout(prompt, production=production)
        assert shell_problems(parts) == [], (prompt, production)


def test_condition_words_change_the_shape_not_only_the_colour() -> None:
    plain, _ = blockout("barrel")
    broken, _ = blockout("broken barrel")
    assert extent(broken)[2] < 0.85 * extent(plain)[2], "a broken barrel is sheared down"
    assert extent(broken)[0] > extent(plain)[0], "with rubble round its foot"
    ornate, ornate_materials = blockout("ornate barrel")
    assert "gold_trim" in {m.name for m in ornate_materials} and triangles(ornate) > triangles(plain)
    for word, material in (("mossy", "moss"), ("rusty", "rust"), ("overgrown", "foliage")):
        parts, materials = blockout(f"{word} barrel")
        assert material in {m.name for m in materials}, word
        assert triangles(parts) > triangles(plain), word
    simple, _ = blockout("simple crate", production=True)
    detailed, _ = blockout("crate", production=True)
    assert triangles(simple) < triangles(detailed) / 2
    distances = shape_distances([plain] + [blockout(f"{w} barrel")[0] for w in ("broken", "mossy", "ornate",
                                                                                 "overgrown", "damaged")])
    assert distances[0, 1:].min() > 0.05


def test_size_words_scale_and_proportion() -> None:
    base = extent(blockout("pillar")[0])
    assert extent(blockout("tall pillar")[0])[2] == pytest.approx(1.5 * base[2], rel=1e-3)
    squat = extent(blockout("squat pillar")[0])
    assert squat[2] < base[2] and squat[0] > base[0]
    assert extent(blockout("long bench")[0])[0] > 1.5 * extent(blockout("bench")[0])[0]
    assert extent(blockout("huge rock")[0])[0] == pytest.approx(2 * extent(blockout("rock")[0])[0], rel=1e-3)
    assert extent(blockout("small crate")[0])[2] == pytest.approx(0.7 * extent(blockout("crate")[0])[2], rel=1e-3)


def test_counts_and_groups_build_that_many() -> None:
    one = extent(blockout("barrel")[0])
    three = extent(blockout("three barrels")[0])
    assert three[0] > 2.6 * one[0] and three[2] < 1.3 * one[2], "three in a row"
    stack = extent(blockout("stack of crates")[0])
    crate = extent(blockout("crate")[0])
    assert stack[2] > 2.5 * crate[2] and stack[0] > 2.5 * crate[0], "a 3-2-1 pyramid"
    pile = blockout("pile of rocks")[0]
    assert extent(pile)[1] > 1.5 * extent(blockout("rock")[0])[1], "scattered, not in a line"
    assert plan("row of 5 bollards", False).count == 5
    assert plan("a hundred crates", False).count == 1 and plan("20 crates", False).count == 12


def test_on_stands_the_subject_on_the_other_and_with_puts_it_on_a_surface_or_beside() -> None:
    table = extent(blockout("table")[0])
    candle_on_table, materials = blockout("candle on a table")
    assert extent(candle_on_table)[2] > table[2] + 0.1 and "glow" in {m.name for m in materials}
    table_with_candle = extent(blockout("table with candle")[0])
    assert table_with_candle[2] > table[2] + 0.1 and table_with_candle[0] < table[0] * 1.2, "on the table top"
    knight = extent(blockout("knight")[0])
    knight_with_sword = extent(blockout("knight with sword")[0])
    assert knight_with_sword[0] > knight[0] + 0.05, "beside the knight"


def test_canopies_are_foliage_unless_a_colour_word_says_otherwise() -> None:
    for prompt in ("oak tree", "tall pine tree", "palm tree", "bush", "hedge"):
        materials = {m.name: m for m in blockout(prompt)[1]}
        red, green, blue, _ = materials["foliage"].base_color
        assert green > red and green > blue, prompt
    oak = {m.name for m in blockout("oak tree")[1]}
    assert "bark" in oak, "the oak's wood is its trunk"
    autumn = {m.name: m for m in blockout("red maple tree")[1]}
    assert "foliage" not in autumn and autumn["red"].base_color[0] > 0.5


def test_ten_variations_of_one_prompt_are_visibly_different() -> None:
    for prompt in ("barrel", "street lamp", "chair", "dragon", "oak tree", "car"):
        meshes = [blockout(prompt, seed=seed)[0] for seed in range(10)]
        distances = shape_distances(meshes)
        closest = distances[np.triu_indices(10, 1)].min()
        assert closest > 0.05, f"two seeds of '{prompt}' look alike ({closest:.3f})"


def test_unknown_noun_warns_naming_it_and_still_builds(tmp_path: Path) -> None:
    spec = JobSpec(kind=JobKind.TEXT, backend="local", prompt="a rusty quantum teapot", seed=3)
    result = generate_text(spec, tmp_path / "miss")
    assert result.metadata["matched"] is None
    assert result.warnings == ["local engine does not know 'teapot'; generic blockout used"]
    assert "rusty" in result.metadata["modifiers"]
    assert read_glb_json(Path(result.files["model"]))["meshes"]


def test_production_spec_face_limit_reaches_the_engine(tmp_path: Path) -> None:
    spec = JobSpec(kind=JobKind.TEXT, backend="local", mode=Mode.PRODUCTION, prompt="stack of crates", seed=3,
                   params=(("face_limit", 1500),))
    result = generate_text(spec, tmp_path / "budget")
    assert result.metadata["triangles"] <= 1500
