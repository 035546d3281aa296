"""The local engine's text → blockout: archetypes, words that shape the result, seeds, honesty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gltf_validator import validate

from addon.backends.local import generate_text
from addon.backends.local.text import ARCHETYPES, plan
from addon.imaging.glb import read_glb_json
from addon.jobs import JobKind, JobSpec, Mode


def make(tmp: Path, prompt: str, seed: int = 7, mode: Mode = Mode.DRAFT, name: str = "") -> tuple[Path, dict, list]:
    spec = JobSpec(kind=JobKind.TEXT, backend="local", mode=mode, prompt=prompt, seed=seed)
    result = generate_text(spec, tmp / (name or f"{prompt.replace(' ', '_')}_{seed}_{mode.value}"))
    return Path(result.files["model"]), result.metadata, result.warnings


def positions(path: Path) -> np.ndarray:
    """All vertex positions of the GLB (Y-up as stored)."""
    data = path.read_bytes()
    document = read_glb_json(path)
    json_len = int.from_bytes(data[12:16], "little")
    binary = data[20 + json_len + 8:]
    chunks = []
    for primitive in document["meshes"][0]["primitives"]:
        accessor = document["accessors"][primitive["attributes"]["POSITION"]]
        view = document["bufferViews"][accessor["bufferView"]]
        raw = binary[view["byteOffset"]: view["byteOffset"] + view["byteLength"]]
        chunks.append(np.frombuffer(raw, np.float32).reshape(-1, 3))
    return np.concatenate(chunks)


def test_the_first_kit_is_still_there() -> None:
    names = {a.name for a in ARCHETYPES}
    for required in ("chest", "barrel", "crate", "vase", "lantern", "book", "rock", "cliff", "log", "stump", "pine",
                     "broadleaf_tree", "bush", "grass", "mushroom", "wall", "pillar", "arch", "stairs", "door",
                     "scifi_panel", "table", "chair", "bookshelf", "bed", "sword", "shield", "axe", "hammer",
                     "biped"):
        assert required in names


def test_one_archetype_per_group_goes_through_the_job_path(tmp_path: Path) -> None:
    # Every archetype is built and validated in both modes in test_archetypes.py; here the full job
    # path (metadata, warnings, preview) for one archetype of each group, the modes alternating.
    firsts = {a.category: a for a in reversed(ARCHETYPES)}
    files = []
    for number, archetype in enumerate(firsts.values()):
        for mode in ((Mode.DRAFT, Mode.PRODUCTION)[number % 2],):
            path, metadata, warnings = make(tmp_path, archetype.words[0], mode=mode,
                                            name=f"{archetype.name}_{mode.value}")
            assert metadata["matched"] == archetype.name, archetype.words[0]
            assert warnings == []
            document = read_glb_json(path)
            primitive = document["meshes"][0]["primitives"][0]
            assert {"POSITION", "NORMAL", "TEXCOORD_0"} <= set(primitive["attributes"])
            assert document["materials"] and all("pbrMetallicRoughness" in m for m in document["materials"])
            assert not document.get("extensionsUsed"), "core PBR only, no KHR_materials extensions"
            assert (path.parent / "preview.png").stat().st_size > 0
            files.append(path)
    reports = validate(files)
    assert len(reports) == len(files)
    problems = {p: r["messages"] for p, r in reports.items() if r["errors"] or r["warnings"]}
    assert problems == {}


def test_same_seed_is_identical_and_other_seeds_vary_the_shape(tmp_path: Path) -> None:
    first, _, _ = make(tmp_path, "wooden barrel", seed=1, name="a")
    again, _, _ = make(tmp_path, "wooden barrel", seed=1, name="b")
    other, _, _ = make(tmp_path, "wooden barrel", seed=2, name="c")
    assert first.read_bytes() == again.read_bytes()
    extent = np.ptp(positions(first), axis=0)
    other_extent = np.ptp(positions(other), axis=0)
    assert not np.allclose(extent, other_extent, rtol=0.01), "seeds change proportions"
    colors = [read_glb_json(p)["materials"][0]["pbrMetallicRoughness"]["baseColorFactor"] for p in (first, other)]
    assert colors[0] != colors[1], "seeds jitter colour"


def test_unknown_noun_gets_an_honest_generic_blockout(tmp_path: Path) -> None:
    path, metadata, warnings = make(tmp_path, "a fearsome xylophone")
    assert metadata["matched"] is None
    assert warnings == ["local engine does not know 'xylophone'; generic blockout used"]
    assert read_glb_json(path)["nodes"][0]["extras"]["matched"] is None


def test_material_words_set_pbr_colour_and_metalness(tmp_path: Path) -> None:
    path, _, _ = make(tmp_path, "golden sword")
    materials = {m["name"]: m["pbrMetallicRoughness"] for m in read_glb_json(path)["materials"]}
    assert materials["golden"]["metallicFactor"] == 1.0
    red, _green, blue, _alpha = materials["golden"]["baseColorFactor"]
    assert red > blue + 0.4, "gold is warm"


@pytest.mark.parametrize(("prompt", "detail"), [
    ("wooden crate with iron bands", "iron"),
    ("sci-fi panel with warning lights", "glow"),
    ("sci-fi panel with vents", "vent_dark_metal"),
    ("mossy rock", "moss"),
])
def test_attachment_words_add_their_parts(tmp_path: Path, prompt: str, detail: str) -> None:
    path, _, _ = make(tmp_path, prompt)
    names = [m["name"] for m in read_glb_json(path)["materials"]]
    assert detail in names
    bare = prompt.split(" with ")[0].replace("mossy ", "")
    bare_path, _, _ = make(tmp_path, bare, name="bare_" + bare.replace(" ", "_"))
    assert len(positions(path)) > len(positions(bare_path))


def test_proportion_and_style_words_change_the_mesh(tmp_path: Path) -> None:
    base, _, _ = make(tmp_path, "pillar", name="base")
    tall, _, _ = make(tmp_path, "tall pillar", name="tall")
    assert np.ptp(positions(tall)[:, 1]) == pytest.approx(1.5 * np.ptp(positions(base)[:, 1]), rel=1e-4)
    low, _, _ = make(tmp_path, "low-poly barrel", name="low")
    smooth, _, _ = make(tmp_path, "smooth barrel", name="smooth")
    assert len(positions(low)) * 3 < len(positions(smooth))


def test_material_word_yields_to_a_real_noun() -> None:
    assert plan("stone pillar", production=False).archetype.name == "pillar"  # type: ignore[union-attr]
    assert plan("stone", production=False).archetype.name == "rock"  # type: ignore[union-attr]
    assert plan("iron bands crate", production=False).archetype.name == "crate"  # type: ignore[union-attr]


def test_a_style_word_yields_to_a_real_noun() -> None:
    # "sci-fi" names the sci-fi panel archetype, but a "sci-fi crate" is a crate (it came out a 0.15 m panel).
    assert plan("sci-fi crate with vents", production=False).archetype.name == "crate"  # type: ignore[union-attr]
    assert plan("sci-fi panel", production=False).archetype.name == "scifi_panel"  # type: ignore[union-attr]
    assert plan("sci-fi", production=False).archetype.name == "scifi_panel"  # type: ignore[union-attr]
