"""What the artist does with results: promote a draft, keep one option, find an asset's root, and tell
which result any part of an asset belongs to."""

from __future__ import annotations

import bpy

from ..naming import REJECTED_COLLECTION

JOB_ID = "kiln_job_id"
"""Carried by the object a job imported: its LOD0 once finished, each part of a segmented asset."""

def replace_draft(new: bpy.types.Object, draft_name: str) -> None:
    """The promoted result takes the draft's place; the draft stays in Kiln Drafts, hidden."""
    draft: bpy.types.Object | None = bpy.data.objects.get(draft_name)
    if draft is None:
        return
    new.location = draft.location.copy()
    draft.hide_set(True)
    draft.hide_render = True
    draft["kiln_promoted_to"] = new.name
    new["kiln_promoted_from"] = draft.name


def _rejected_collection() -> bpy.types.Collection:
    collection = bpy.data.collections.get(REJECTED_COLLECTION) or bpy.data.collections.new(REJECTED_COLLECTION)
    scene = bpy.context.scene
    if scene is not None and collection.name not in scene.collection.children:
        scene.collection.children.link(collection)
    view_layer = bpy.context.view_layer
    if view_layer is not None:
        layer: bpy.types.LayerCollection | None = view_layer.layer_collection.children.get(collection.name)
        if layer is not None:
            layer.exclude = True  # out of view, renders and exports
    return collection


def other_options(kept: bpy.types.Object) -> list[bpy.types.Object]:
    """The other options of the same request as `kept` that are not rejected yet (Keep This Option's
    work). Options share the batch, index, prompt and source images; two camera captures of one camera
    share the title "Camera: <name>" but not their captured image, so they are not options of each other."""
    key = _option_key(kept)
    return [o for o in bpy.data.objects
            if o != kept and o.get(JOB_ID) and not o.get("kiln_rejected") and _option_key(o) == key]


def _option_key(obj: bpy.types.Object) -> tuple[object, ...]:
    return tuple(obj.get(name) for name in ("kiln_batch", "kiln_index", "kiln_prompt", "kiln_source_images"))


def reject_other_options(kept: bpy.types.Object) -> list[str]:
    """Move the other options of the kept result's prompt to 'Rejected'; returns their names."""
    others = other_options(kept)
    if not others:
        return []
    rejected = _rejected_collection()
    for obj in others:
        root = obj
        while root.parent is not None:
            root = root.parent
        for member in (root, *root.children_recursive):
            for owner in list(member.users_collection):
                owner.objects.unlink(member)
            rejected.objects.link(member)
        obj["kiln_rejected"] = True
    kept["kiln_kept_option"] = True
    return [o.name for o in others]


def kiln_roots(objects: list[bpy.types.Object]) -> list[bpy.types.Object]:
    """Each result's top-level object (its LOD group or parts group), once, rejected ones left out."""
    roots: list[bpy.types.Object] = []
    for obj in objects:
        if obj.get("kiln_rejected"):
            continue
        root = obj
        while root.parent is not None:
            root = root.parent
        if root not in roots:
            roots.append(root)
    return roots


def results_of(obj: bpy.types.Object) -> list[bpy.types.Object]:
    """The Kiln results `obj` stands for, in part order: itself when it carries a job id; for an
    LOD (whose copied properties were stripped) or an LOD group, the LOD0 that carries them; for a
    parts group, every part. Empty for anything that is not part of a Kiln asset.

    The Result panel shows the first; actions on the selection act on all of them, so an artist may
    click an asset anywhere (Outliner root, viewport outline of an LOD, a part) and get the same result."""
    if obj.get(JOB_ID):
        return [obj]
    if obj.get("kiln_lod") is not None and obj.parent is not None:
        obj = obj.parent  # LOD1…: its group holds the LOD0
    if not (obj.get("kiln_lod_group") or obj.get("kiln_parts_group")):
        return []
    found: list[bpy.types.Object] = []
    for child in sorted(obj.children, key=lambda c: (int(c.get("kiln_part_index", 0)), c.name)):
        if child.get(JOB_ID):
            found.append(child)
        elif child.get("kiln_lod_group"):  # a finished part: its own LOD group
            found += results_of(child)
    return found


def result_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The one result the Result panel shows for `obj` (see `results_of`)."""
    found = results_of(obj) if obj is not None else []
    return found[0] if found else None
