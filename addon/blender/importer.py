"""Bring a downloaded result into the scene with Blender's own importers.

It lands in a collection per batch (or "Kiln Drafts"), named by the naming convention, upright on +Z
facing -Y with its origin at the bottom centre, with its metadata as custom properties, and marked as
an asset in its batch's catalog. Runs on the main thread, from the pump only. A result that cannot be
imported fails its job with a clear message, keeps the file for inspection, and leaves nothing
half-built in the scene.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import bmesh
import bpy
import numpy as np
import numpy.typing as npt
from mathutils import Matrix, Vector

from ..jobs import TITLE, Job
from ..naming import DRAFTS_COLLECTION, asset_name, draft_name
from ..requests import REPLACES
from .assets import mark_asset
from .calm import keep_artist_state
from .placement import place_in_row_of, place_new_result, settle
from .results import replace_draft

_log = logging.getLogger(__name__)

# Rotation (about Z, radians) that turns a provider's model to face -Y after Blender's glTF importer
# has already made it Z-up. The local engine builds facing -Y; providers are added as they land.
ORIENTATION_FIX: dict[str, float] = {"local": 0.0, "fake": 0.0}


class ImportFailed(Exception):
    code = "import_failed"


def _collection(name: str, parent: bpy.types.Collection | None = None) -> bpy.types.Collection:
    collection = bpy.data.collections.get(name)
    if collection is None:
        collection = bpy.data.collections.new(name)
    if parent is None:
        scene = bpy.context.scene
        if scene is None:
            raise ImportFailed("there is no active scene to import into")
        parent = scene.collection
    if collection.name not in parent.children:
        parent.children.link(collection)
    return collection


def target_collection_name(job: Job) -> str:
    return job.spec.batch or DRAFTS_COLLECTION


PART_SPACING = 0.3
"""Metres between the parts of a segmented asset, laid out along +X in part order."""


def object_name(job: Job) -> str:
    spec = job.spec
    if spec.name:
        return spec.name  # chosen by the request builder, by the convention
    part = spec.params_dict.get("part_name")
    if spec.batch:
        base = asset_name(spec.batch, spec.index, spec.option)
        return f"{base}_{part}" if part else base
    label = spec.prompt or (Path(spec.image_paths[0]).stem if spec.image_paths else "draft")
    return draft_name(label, spec.index)


def metadata_properties(job: Job) -> dict[str, Any]:
    """Custom properties stored on the imported object (no secrets: specs never hold keys)."""
    spec = job.spec
    started = job.state_times.get("submitting")
    ready = job.state_times.get("ready")
    props: dict[str, Any] = {
        # A job without a prompt (a camera capture) says what it came from: "Camera: <camera name>".
        "kiln_prompt": spec.prompt or str(spec.params_dict.get(TITLE) or ""),
        "kiln_negative_prompt": spec.negative_prompt,
        "kiln_seed": spec.seed,
        "kiln_backend": spec.backend,
        "kiln_mode": spec.mode.value,
        "kiln_kind": spec.kind.value,
        "kiln_task_id": job.task_id or "",
        "kiln_job_id": job.job_id,
        "kiln_batch": spec.batch,
        "kiln_index": spec.index,
        "kiln_option": spec.option,
        "kiln_credits": float(job.credits_spent),
        "kiln_generation_s": round(ready - started, 3) if started is not None and ready is not None else -1.0,
        "kiln_source_images": ";".join(spec.image_paths),
        # The full request, so Promote reuses it exactly and changes only the mode.
        "kiln_spec": json.dumps(spec.to_json(), separators=(",", ":")),
    }
    for key in ("model_version", "matched", "triangles"):
        value = job.metadata.get(key)
        props[f"kiln_{key}"] = "" if value is None else value
    if job.warnings:
        props["kiln_warnings"] = "; ".join(job.warnings)
    return props


def find_result(job_id: str) -> bpy.types.Object | None:
    return next((o for o in bpy.data.objects if o.get("kiln_job_id") == job_id), None)


def import_result(job: Job) -> None:
    """Import the job's result; records `import_ms` (Blender's importer) and `kiln_import_ms` (the rest).
    The artist's mode, selection and active object are as they were afterwards (`calm`)."""
    if find_result(job.job_id) is not None:
        return  # already in the scene: a resumed run must not import twice
    with keep_artist_state():
        _import(job)


def _import(job: Job) -> None:
    started = time.perf_counter()
    model = job.files.get("model")
    if not model or not Path(model).is_file():
        raise ImportFailed(f"the result file for '{job.label}' is missing from the cache")
    before = set(bpy.data.objects)
    data_before = _datablock_ids()
    importer_started = time.perf_counter()
    try:
        if model.lower().endswith(".fbx"):
            result = bpy.ops.import_scene.fbx(filepath=model)
        else:
            result = bpy.ops.import_scene.gltf(filepath=model, merge_vertices=True)
    except RuntimeError as exc:
        _remove_new_data(before, data_before)
        raise ImportFailed(f"Blender could not read {Path(model).name}: {str(exc).strip()[:200]}") from exc
    importer_ms = (time.perf_counter() - importer_started) * 1000
    created = [obj for obj in bpy.data.objects if obj not in before]
    meshes = [obj for obj in created if isinstance(obj.data, bpy.types.Mesh)]
    if result != {"FINISHED"} or not meshes:
        _remove_new_data(before, data_before)
        raise ImportFailed(f"{Path(model).name} contained no mesh to import")
    try:
        root = _assemble(job, created, meshes)
    except Exception:
        _remove_new_data(before, data_before)
        raise
    job.metadata["import_ms"] = round(importer_ms, 2)
    job.metadata["kiln_import_ms"] = round((time.perf_counter() - started) * 1000 - importer_ms, 2)
    root["kiln_import_ms"] = job.metadata["kiln_import_ms"]


def _assemble(job: Job, created: list[bpy.types.Object], meshes: list[bpy.types.Object]) -> bpy.types.Object:
    """Clean the import up and file it: one object per asset (joined if the file had several)."""
    for obj in meshes:
        obj.matrix_world = obj.matrix_world.copy()  # bake parent transforms before dropping empties
    for obj in meshes:
        world = obj.matrix_world.copy()
        obj.parent = None
        obj.matrix_world = world
    for obj in created:
        if obj not in meshes:
            bpy.data.objects.remove(obj, do_unlink=True)  # importer empties that add nothing
    root = meshes[0]
    if len(meshes) > 1:
        with bpy.context.temp_override(active_object=root, selected_editable_objects=meshes, object=root):
            bpy.ops.object.join()
    mesh = root.data
    assert isinstance(mesh, bpy.types.Mesh)
    # Filed first: linking to a collection makes the next depsgraph update rebuild its relations, which
    # costs 100+ ms in a scene of hundreds of objects, so it must fall in the update bake_transform runs
    # anyway, not in a second one when the result is placed.
    collection = _collection(target_collection_name(job))
    for owner in list(root.users_collection):
        owner.objects.unlink(root)
    collection.objects.link(root)
    root.name = object_name(job)
    mesh.name = root.name
    fix = ORIENTATION_FIX.get(job.spec.backend, 0.0)
    bake_transform(root, Matrix.Rotation(fix, 4, "Z") if fix else None)
    weld_split_vertices(mesh)
    origin_to_bottom_centre(root)
    for key, value in metadata_properties(job).items():
        root[key] = value
    replaces = job.spec.params_dict.get(REPLACES)
    if replaces:
        replace_draft(root, str(replaces))
        settle(root, just_imported=True)  # a production result may be larger than the draft it replaces
    elif "part_name" in job.spec.params_dict:
        _attach_part(root, job, collection)
    else:
        place_new_result(root, job, collection)
    mark_asset(root, batch=job.spec.batch, prompt=job.spec.prompt or job.label, mode=job.spec.mode.value,
               backend=job.spec.backend, preview=job.files.get("preview"))
    return root


def bake_transform(obj: bpy.types.Object, extra: Matrix | None = None, *, keep_heading: bool = False) -> None:
    """Apply the object's transform (and `extra`) to its mesh, leaving an identity transform; with
    `keep_heading`, the turn about Z stays on the object (a camera result turned to face its camera
    must still face -Y in its own mesh, as engines expect of an exported asset)."""
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    view_layer = bpy.context.view_layer
    if view_layer is not None:
        view_layer.update()  # matrix_world is stale after a location change until the depsgraph runs
    matrix = obj.matrix_world.copy()
    if extra is not None:
        matrix = extra @ matrix
    kept = Matrix.Identity(4)
    if keep_heading:
        front = matrix.to_3x3() @ Vector((0.0, -1.0, 0.0))
        if math.hypot(front.x, front.y) > 1e-9:
            kept = Matrix.Rotation(math.atan2(front.x, -front.y), 4, "Z")
    matrix = kept.inverted() @ matrix
    if matrix == Matrix.Identity(4):
        return  # nothing to apply (the usual case straight from the importer)
    mesh.transform(matrix)
    if matrix.determinant() < 0:
        mesh.flip_normals()
    obj.matrix_world = kept


def origin_to_bottom_centre(obj: bpy.types.Object) -> None:
    """Move the mesh so its bounding box's bottom centre sits at the object's origin."""
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    if not mesh.vertices:
        return
    low, high = mesh_bounds(mesh)
    offset = Vector(((low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]))
    mesh.transform(Matrix.Translation((-offset.x, -offset.y, -offset.z)))
    # The asset stays where it was; only its origin moved (by the offset as the object turns and scales it).
    obj.location = obj.location + obj.matrix_basis.to_3x3() @ offset
    obj["kiln_width"] = float(high[0] - low[0])
    mesh.update()


def mesh_bounds(mesh: bpy.types.Mesh) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Local-space bounding box from the vertices themselves (valid before any depsgraph update)."""
    coords = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", coords)
    points = coords.reshape(-1, 3)
    return points.min(axis=0), points.max(axis=0)


def weld_split_vertices(mesh: bpy.types.Mesh, distance: float = 1e-5) -> int:
    """glTF must split a vertex wherever its normal or UV differs; Blender keeps those per face corner.
    Welding coincident vertices back together restores closed, manifold shells (the importer's own
    `merge_vertices` leaves vertices with different UVs apart). Returns the number removed.

    A numpy check first: meshes that arrive already welded (the 50k-triangle inflations) skip the
    bmesh round trip, which would otherwise cost as much as the import itself."""
    count = len(mesh.vertices)
    coords = np.empty(count * 3, np.float32)
    mesh.vertices.foreach_get("co", coords)
    cells = np.round(coords.reshape(-1, 3) / distance).astype(np.int64)
    if count and int(np.abs(cells).max()) < 2**20:
        # Pack each position into one int64 (21 bits per axis): exact, and a 1-D unique is fast.
        shifted = cells + 2**20
        distinct = len(np.unique(shifted[:, 0] << 42 | shifted[:, 1] << 21 | shifted[:, 2]))
    else:
        distinct = len(np.unique(cells, axis=0))
    if distinct == count:
        return 0
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


def _attach_part(obj: bpy.types.Object, job: Job, collection: bpy.types.Collection) -> None:
    """Parts of one asset share a parent empty named after the asset and line up in part order."""
    spec = job.spec
    group_name = asset_name(spec.batch, spec.index, spec.option) if spec.batch else draft_name("parts", spec.index)
    group = bpy.data.objects.get(group_name)
    new = group is None
    if group is None:
        group = bpy.data.objects.new(group_name, None)
        collection.objects.link(group)
        group["kiln_parts_group"] = True
        group["kiln_option"] = spec.option
    obj.parent = group
    order = int(spec.params_dict.get("part_index", 0))
    obj["kiln_part_index"] = order
    _relayout_parts(group)
    if new:  # the group takes a place in its row; as later parts widen it, it moves only if it must
        place_in_row_of(group, collection, spec.option if spec.batch else None)
    else:
        settle(group)


def _relayout_parts(group: bpy.types.Object) -> None:
    """Line the parts up along +X in part order (parts arrive in any order, so redo it each time)."""
    parts = sorted((c for c in group.children if c.get("kiln_part_index") is not None),
                   key=lambda c: int(c["kiln_part_index"]))
    cursor = 0.0
    for part in parts:
        width = mesh_width(part)
        part.location = (cursor + width / 2, 0.0, 0.0)
        cursor += width + PART_SPACING


def mesh_width(obj: bpy.types.Object) -> float:
    """Width along X. `Object.dimensions` stays zero until the depsgraph updates, which never happens
    between two imports in one pump call, so use the width measured at import (`kiln_width`), or
    measure the mesh itself: laying out a batch of hundreds must not re-read every mesh each time."""
    known = obj.get("kiln_width")
    if known is not None:
        return float(known) * obj.scale.x
    mesh = obj.data
    if not isinstance(mesh, bpy.types.Mesh) or not mesh.vertices:
        return 0.0
    low, high = mesh_bounds(mesh)
    return float(high[0] - low[0]) * obj.scale.x


def _datablock_ids() -> set[int]:
    # as_pointer(), not id(): bpy makes a new Python wrapper on every access.
    return {d.as_pointer() for collection in (bpy.data.meshes, bpy.data.materials, bpy.data.images,
                                              bpy.data.textures) for d in collection}


def _remove_new_data(before: set[bpy.types.Object], data_before: set[int]) -> None:
    """Leave nothing half-built: objects, meshes, materials and images from a failed import go."""
    for obj in [o for o in bpy.data.objects if o not in before]:
        bpy.data.objects.remove(obj, do_unlink=True)
    for collection in (bpy.data.meshes, bpy.data.materials, bpy.data.images, bpy.data.textures):
        for block in [d for d in collection if d.as_pointer() not in data_before and d.users == 0]:
            collection.remove(block)  # type: ignore[arg-type]  # each block comes from this collection
