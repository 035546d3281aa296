"""Batch export with Blender's own FBX (and optionally glTF) exporters, with Unity/Unreal presets and
a JSON manifest of every file written. Never overwrites a file silently."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from ..naming import slug
from .finishing import material_images

_log = logging.getLogger(__name__)

# Axis and scale conventions per engine (Blender's FBX exporter options).
FBX_PRESETS: dict[str, dict[str, Any]] = {
    # Unity: bake the axis conversion into the mesh so objects import with no rotation and scale 1.
    "unity": {"axis_forward": "-Z", "axis_up": "Y", "apply_scale_options": "FBX_SCALE_ALL",
              "bake_space_transform": True, "mesh_smooth_type": "FACE", "use_tspace": True},
    # Unreal: Z up; smoothing groups from faces; no leaf bones.
    "unreal": {"axis_forward": "-Y", "axis_up": "Z", "apply_scale_options": "FBX_SCALE_NONE",
               "bake_space_transform": False, "mesh_smooth_type": "FACE", "use_tspace": True,
               "add_leaf_bones": False},
}


class ExportError(Exception):
    """The export cannot start: the message says what to change."""


@dataclass
class ExportedFile:
    path: str
    kind: str
    objects: list[str]
    faces: int
    textures: list[list[int]] = field(default_factory=list)
    ms: float = 0.0


def resolve_folder(folder: str) -> Path:
    """An absolute, writable export folder. Blender-relative paths (//) must stay beside the .blend."""
    if folder.startswith("//"):
        if not bpy.data.filepath:
            raise ExportError("a relative export folder (//…) needs the .blend file to be saved first")
        base = Path(bpy.data.filepath).parent.resolve()
        path = (base / folder[2:]).resolve()
        if base not in (path, *path.parents):
            raise ExportError(f"the export folder '{folder}' points outside the .blend's folder")
    else:
        path = Path(folder).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the export folder '{path}': {exc.strerror}") from exc
    if not os.access(path, os.W_OK):
        raise ExportError(f"the export folder '{path}' is not writable")
    return path


def free_path(folder: Path, stem: str, suffix: str, taken: set[Path], *, replace: bool = False) -> Path:
    """`stem.suffix`, or `stem_2.suffix` … when that name is already on disk or used in this export.
    With `replace`, a file already on disk does not count (a batch run owns its exports' names)."""
    candidate = folder / f"{stem}{suffix}"
    number = 2
    while (candidate.exists() and not replace) or candidate in taken:
        candidate = folder / f"{stem}_{number}{suffix}"
        number += 1
    taken.add(candidate)
    return candidate


def asset_groups(objects: list[bpy.types.Object]) -> dict[str, list[bpy.types.Object]]:
    """Asset name → the objects that make it: an LOD group's empty and its LODs, or the object alone."""
    groups: dict[str, list[bpy.types.Object]] = {}
    for obj in objects:
        root = obj
        while root.parent is not None:
            root = root.parent
        members = groups.setdefault(root.name, [])
        for member in (root, *root.children_recursive):
            if member not in members:
                members.append(member)
    return groups


def _faces(objects: list[bpy.types.Object]) -> int:
    return sum(len(o.data.polygons) for o in objects if isinstance(o.data, bpy.types.Mesh))


def _texture_sizes(objects: list[bpy.types.Object]) -> list[list[int]]:
    return [[int(v) for v in image.size] for obj in objects for image in material_images(obj)]  # type: ignore[attr-defined]


def _select_only(objects: list[bpy.types.Object]) -> None:
    view_layer = bpy.context.view_layer
    assert view_layer is not None
    for obj in view_layer.objects:
        obj.select_set(False)
    for obj in objects:
        obj.select_set(True)
    view_layer.objects.active = objects[0]


@contextlib.contextmanager
def _shown(objects: list[bpy.types.Object]) -> Iterator[None]:
    """Show hidden members (LOD1… are hidden in the scene) while the exporters run: both export only
    selectable objects, and FBX writes an object's viewport visibility, which engines import as a
    disabled renderer. Every flag is put back afterwards."""
    view_layer = bpy.context.view_layer
    in_layer = set(view_layer.objects) if view_layer is not None else set()
    saved = [(obj, obj.hide_viewport, obj in in_layer and obj.hide_get()) for obj in objects]
    try:
        for obj, _, hidden in saved:
            obj.hide_viewport = False
            if hidden:
                obj.hide_set(False)
        yield
    finally:
        for obj, disabled, hidden in saved:
            obj.hide_viewport = disabled
            if hidden:
                obj.hide_set(True)


def export(objects: list[bpy.types.Object], folder: str, *, per: str = "asset", preset: str = "unity",
           gltf: bool = False, batch_name: str = "batch", replace: bool = False) -> list[ExportedFile]:
    """Export `objects` (with their LODs) as FBX, one file per asset or one per batch; writes
    `export_manifest.json` in the folder and returns what was written.

    The Export button never overwrites the artist's files (`name_2.fbx` …). A headless batch passes
    `replace` for the names it owns (every per-asset name; the batch-wide name unless it is one shard of
    several, whose slices the merge replaces), so a resume after a kill mid-export writes each file
    again in place (atomically) instead of leaving `name_2.fbx` beside the first attempt's file."""
    if preset not in FBX_PRESETS:
        raise ExportError(f"unknown export preset '{preset}' (choose from {', '.join(FBX_PRESETS)})")
    if per not in ("asset", "batch"):
        raise ExportError("export per 'asset' or per 'batch'")
    if not objects:
        raise ExportError("nothing to export: select Kiln results first")
    target = resolve_folder(folder)
    groups = asset_groups(objects)
    units = list(groups.items()) if per == "asset" else [(batch_name, [o for g in groups.values() for o in g])]
    written: list[ExportedFile] = []
    taken: set[Path] = set()
    for name, members in units:
        with _shown(members):
            written += _export_unit(target, name, members, preset, gltf, taken, replace)
    manifest = target / "export_manifest.json"
    previous = json.loads(manifest.read_text()) if manifest.exists() else {"files": []}
    rewritten = {f.path for f in written}
    previous["files"] = [f for f in previous["files"] if f.get("path") not in rewritten] + [f.__dict__ for f in written]
    previous["preset"] = preset
    tmp = manifest.with_suffix(".json.part")
    tmp.write_text(json.dumps(previous, indent=2))
    tmp.replace(manifest)
    return written


def _export_unit(target: Path, name: str, members: list[bpy.types.Object], preset: str, gltf: bool,
                 taken: set[Path], replace: bool = False) -> list[ExportedFile]:
    """One FBX (and optionally one GLB) holding `members`, which must be selectable."""
    _select_only(members)
    stem = slug(name)
    written: list[ExportedFile] = []
    fbx_path = free_path(target, stem, ".fbx", taken, replace=replace)
    started = time.perf_counter()
    partial = fbx_path.with_name(f".{fbx_path.stem}.partial.fbx")  # a kill mid-write leaves no half file
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints two lines per file
        bpy.ops.export_scene.fbx(filepath=str(partial), use_selection=True, object_types={"EMPTY", "MESH"},
                                 path_mode="COPY", embed_textures=True, **FBX_PRESETS[preset])
    os.replace(partial, fbx_path)
    written.append(ExportedFile(str(fbx_path), "fbx", [o.name for o in members], _faces(members),
                                _texture_sizes(members), round((time.perf_counter() - started) * 1000, 2)))
    if gltf:
        glb_path = free_path(target, stem, ".glb", taken, replace=replace)
        started = time.perf_counter()
        partial = glb_path.with_name(f".{glb_path.stem}.partial.glb")
        with contextlib.redirect_stdout(io.StringIO()):
            bpy.ops.export_scene.gltf(filepath=str(partial), use_selection=True, export_format="GLB")
        os.replace(partial, glb_path)
        written.append(ExportedFile(str(glb_path), "glb", [o.name for o in members], _faces(members),
                                    _texture_sizes(members), round((time.perf_counter() - started) * 1000, 2)))
    return written
