"""Bring a result a finishing worker already finished into the artist's scene: append its `.blend`.

The worker (`finish_worker.py`) imported and finished the asset in a Blender of its own. Here, on the
main thread, only the cheap part is left: `bpy.data.libraries.load` (append, not link), filing the
objects in their batch's collection, the job's metadata and asset mark, and a place in the scene.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import bpy

from ..jobs import Job
from ..requests import REPLACES
from .assets import mark_asset
from .calm import keep_artist_state
from .importer import ImportFailed, _collection, find_result, metadata_properties, target_collection_name
from .placement import ROW_ANCHOR, place_new_result, settle
from .results import replace_draft

_log = logging.getLogger(__name__)


def append_finished(job: Job, blend: Path) -> bpy.types.Object:
    """Append the finished asset of `job` from `blend`; returns its root (the LOD group when it has
    LODs). A result already in the scene (a resumed run) is left as it is. The artist's mode, selection
    and active object are left as they were."""
    with keep_artist_state():
        return _append(job, blend)


def _append(job: Job, blend: Path) -> bpy.types.Object:
    started = time.perf_counter()
    existing = find_result(job.job_id)
    if existing is not None:
        return _top(existing)
    if not blend.is_file():
        raise ImportFailed(f"the finished asset of '{job.label}' is missing from the cache ({blend.name})")
    materials_before = set(bpy.data.materials)
    try:
        library: Any = bpy.data.libraries  # the stubs miss that load() is a context manager
        with library.load(str(blend), link=False) as (source, target):
            target.objects = list(source.objects)
    except (OSError, RuntimeError) as exc:
        raise ImportFailed(f"Blender could not read {blend.name}: {str(exc).strip()[:200]}") from exc
    # Looked up again by name: the references the loader hands back may not be the objects that end up
    # in the file (then placing one would not move what the artist sees).
    names = [obj.name for obj in target.objects if obj is not None]
    appended = [bpy.data.objects[name] for name in names if name in bpy.data.objects]
    for library in [lib for lib in bpy.data.libraries if bpy.path.abspath(lib.filepath) == str(blend)]:
        bpy.data.libraries.remove(library)  # appended, not linked: nothing uses it
    own = next((obj for obj in appended if obj.get("kiln_job_id") == job.job_id), None)
    if own is None:
        for obj in appended:
            bpy.data.objects.remove(obj, do_unlink=True)
        raise ImportFailed(f"{blend.name} holds no object of job {job.job_id}")
    collection = _collection(target_collection_name(job))
    for obj in appended:
        collection.objects.link(obj)
        if ROW_ANCHOR in obj:
            del obj[ROW_ANCHOR]  # the worker's empty scene is not the artist's row
    _share_theme_materials(set(bpy.data.materials) - materials_before)
    for key, value in metadata_properties(job).items():  # the live job: credits, times, warnings
        own[key] = value
    if own.asset_data is None:
        mark_asset(own, batch=job.spec.batch, prompt=job.spec.prompt or job.label, mode=job.spec.mode.value,
                   backend=job.spec.backend, preview=job.files.get("preview"))
    root = _top(own)
    view_layer = bpy.context.view_layer
    if view_layer is not None:
        view_layer.update()  # placing measures the appended objects' bounds, which only an update computes
    replaces = job.spec.params_dict.get(REPLACES)
    if replaces:
        replace_draft(own, str(replaces))  # the draft's place, and the link between them, on the result
        if own != root:  # an LOD group: the group takes that place (LOD0 sits at the group's origin)
            root.location, own.location = own.location.copy(), (0.0, 0.0, 0.0)
        settle(root)
    else:
        place_new_result(root, job, collection)
    if view_layer is not None:
        view_layer.update()  # world matrices follow the move now, as after an import finished here
    job.metadata["append_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return root


def _top(obj: bpy.types.Object) -> bpy.types.Object:
    while obj.parent is not None:
        obj = obj.parent
    return obj


def _share_theme_materials(new: set[bpy.types.Material]) -> None:
    """A batch's theme is one material shared by every asset (as when finished in this Blender): an
    appended copy of one that is already here is replaced by it."""
    for material in new:
        theme = material.get("kiln_theme")
        if theme is None:
            continue
        kept = next((m for m in bpy.data.materials if m not in new and m.get("kiln_theme") == theme), None)
        if kept is not None:
            material.user_remap(kept)
            bpy.data.materials.remove(material)
