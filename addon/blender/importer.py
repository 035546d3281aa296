"""Bring a downloaded result into the scene: Blender's own glTF importer, a named collection, metadata.

Runs on the main thread, from the pump only. A result that cannot be imported fails its job with a
clear message, keeps the file for inspection, and leaves nothing half-built in the scene.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bmesh
import bpy

from ..jobs import Job, Mode
from ..naming import DRAFTS_COLLECTION, asset_name, draft_name

_log = logging.getLogger(__name__)

DRAFT_SPACING = 0.5
"""Metres left between a new draft and the previous one, so drafts line up instead of stacking."""


class ImportFailed(Exception):
    code = "import_failed"


def _collection(name: str) -> bpy.types.Collection:
    collection = bpy.data.collections.get(name)
    if collection is None:
        collection = bpy.data.collections.new(name)
    scene = bpy.context.scene
    if scene is None:
        raise ImportFailed("there is no active scene to import into")
    scene_root = scene.collection
    if collection.name not in scene_root.children:
        scene_root.children.link(collection)
    return collection


def target_collection_name(job: Job) -> str:
    return job.spec.batch or DRAFTS_COLLECTION


def object_name(job: Job) -> str:
    spec = job.spec
    if spec.batch:
        return asset_name(spec.batch, spec.index, spec.option)
    label = spec.prompt or (Path(spec.image_paths[0]).stem if spec.image_paths else "draft")
    return draft_name(label, spec.index)


def metadata_properties(job: Job) -> dict[str, Any]:
    """Custom properties stored on the imported object (no secrets: specs never hold keys)."""
    spec = job.spec
    props: dict[str, Any] = {
        "kiln_prompt": spec.prompt,
        "kiln_negative_prompt": spec.negative_prompt,
        "kiln_seed": spec.seed,
        "kiln_backend": spec.backend,
        "kiln_mode": spec.mode.value,
        "kiln_kind": spec.kind.value,
        "kiln_task_id": job.task_id or "",
        "kiln_job_id": job.job_id,
        "kiln_batch": spec.batch,
        "kiln_credits": float(job.credits_spent),
        "kiln_source_images": ";".join(spec.image_paths),
    }
    for key in ("model_version", "matched", "triangles"):
        value = job.metadata.get(key)
        props[f"kiln_{key}"] = "" if value is None else value
    if job.warnings:
        props["kiln_warnings"] = "; ".join(job.warnings)
    return props


def import_result(job: Job) -> None:
    model = job.files.get("model")
    if not model or not Path(model).is_file():
        raise ImportFailed(f"the result file for '{job.label}' is missing from the cache")
    before = set(bpy.data.objects)
    try:
        result = bpy.ops.import_scene.gltf(filepath=model, merge_vertices=True)
    except RuntimeError as exc:
        _remove_new_objects(before)
        raise ImportFailed(f"Blender could not read {Path(model).name}: {str(exc).strip()[:200]}") from exc
    created = [obj for obj in bpy.data.objects if obj not in before]
    if result != {"FINISHED"} or not created:
        _remove_new_objects(before)
        raise ImportFailed(f"{Path(model).name} contained nothing to import")

    for obj in created:
        if isinstance(obj.data, bpy.types.Mesh):
            weld_split_vertices(obj.data)
    collection = _collection(target_collection_name(job))
    for obj in created:
        for owner in list(obj.users_collection):
            owner.objects.unlink(obj)
        collection.objects.link(obj)
    roots = [obj for obj in created if obj.parent is None]
    root = roots[0]
    root.name = object_name(job)
    for key, value in metadata_properties(job).items():
        root[key] = value
    if job.spec.mode is Mode.DRAFT and not job.spec.batch:
        _place_beside_previous(root, collection)


def weld_split_vertices(mesh: bpy.types.Mesh, distance: float = 1e-5) -> int:
    """glTF must split a vertex wherever its normal or UV differs; Blender keeps those per face corner.
    Welding coincident vertices back together restores closed, manifold shells (the importer's own
    `merge_vertices` leaves vertices with different UVs apart). Returns the number removed."""
    bm = bmesh.new()
    try:
        bm.from_mesh(mesh)
        before = len(bm.verts)
        bmesh.ops.remove_doubles(bm, verts=list(bm.verts), dist=distance)
        removed = before - len(bm.verts)
        bm.to_mesh(mesh)
    finally:
        bm.free()
    mesh.update()
    return removed


def _place_beside_previous(obj: bpy.types.Object, collection: bpy.types.Collection) -> None:
    others = [o for o in collection.objects if o is not obj and o.parent is None]
    if not others:
        return
    right_edge = max(o.location.x + max(o.dimensions.x, 0.0) / 2 for o in others)
    obj.location.x = right_edge + DRAFT_SPACING + obj.dimensions.x / 2


def _remove_new_objects(before: set[bpy.types.Object]) -> None:
    for obj in [o for o in bpy.data.objects if o not in before]:
        bpy.data.objects.remove(obj, do_unlink=True)
