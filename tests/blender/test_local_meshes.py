"""Local-engine blockouts, through the real generate → import path, land as closed manifold meshes.

One archetype of each kit group plus prompts whose words reshape them (broken, ornate, counts, "on"):
tests/unit/test_archetypes.py checks every archetype's shells in numpy with the importer's weld
semantics, so Blender here confirms the import path, not all 140 nouns twice per Blender version."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest
from conftest import ADDON_MODULE


def non_manifold(obj: object) -> tuple[int, int]:
    import bmesh

    bm = bmesh.new()
    try:
        bm.from_mesh(obj.data)  # type: ignore[attr-defined]
        return (sum(not e.is_manifold for e in bm.edges), sum(not f.normal.length > 0 for f in bm.faces))
    finally:
        bm.free()


@pytest.mark.parametrize("mode", ["DRAFT", "PRODUCTION"])
def test_every_archetype_imports_closed_and_manifold(runtime: ModuleType, mode: str) -> None:
    import bpy

    text = importlib.import_module(f"{ADDON_MODULE}.addon.backends.local.text")
    bpy.context.scene.kiln.mode = mode
    one_per_group = {a.category: a.words[0] for a in reversed(text.ARCHETYPES)}
    prompts = [*sorted(one_per_group.values()), "broken mossy barrel", "ornate sword", "stack of crates",
               "candle on a table"]
    for prompt in prompts:
        bpy.ops.kiln.generate(prompt=prompt)
    assert runtime.run_until_done(timeout=120)
    objects = [o for o in bpy.data.objects if o.get("kiln_prompt")]
    assert sorted(o["kiln_prompt"] for o in objects) == sorted(prompts)
    failed = [j.error.message for j in runtime.scheduler().views() if j.error]
    assert failed == []
    for obj in objects:
        assert obj.type == "MESH"
        bad_edges, degenerate = non_manifold(obj)
        assert bad_edges == 0, f"{obj.name}: {bad_edges} non-manifold edges"
        assert degenerate == 0, f"{obj.name}: degenerate faces"
        assert obj.data.uv_layers, f"{obj.name} has no UVs"
        assert all(slot.material for slot in obj.material_slots) and obj.material_slots
        assert obj["kiln_mode"] == mode.lower()
