"""Merge a sharded batch into one result: the shards' .blend files, reports and contact sheets.

`kiln batch --shard I/N` (one machine of a farm, a Ray task, a Flamenco task) writes
`<batch>.shard-I-of-N.blend`, `report.shard-I-of-N.json` and its exports into the same out/<batch>/.
This module turns them into what a single-machine run writes there: `<batch>.blend` (every shard's
collections appended, the assets still in their batch catalog), one `report.json` (totals over every
job, with each shard's timing) and one `contact_sheet.png`. Exports already share one folder; only a
batch-wide export (`per = "batch"`), which each shard wrote for its own slice, is written again once for
the whole batch.

Entry points: `python scripts/kiln_batch.py --merge OUT/<batch>` (Ray's and Flamenco's merge step).
A merge runs only when every shard of the set has completed (its report exists and was not
interrupted), so it never hides a shard that still has to run or resume.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy

from ..backends import registry
from ..batch import report as batch_report
from ..batch.manifest import ManifestError, load_manifest
from ..naming import slug
from .assets import batches_in_file, write_catalogs_beside_blend
from .batch_run import _meshes_of  # what a contact-sheet tile shows: one rule for runs and merges
from .contact_sheet import render_contact_sheet
from .exporter import ExportError, export
from .quiet import quiet_stdout

_log = logging.getLogger(__name__)

_SHARD_BLEND = re.compile(r"(?P<batch>.+)\.shard-(?P<index>[0-9]+)-of-(?P<count>[0-9]+)\.blend")


class MergeError(Exception):
    """The folder cannot be merged (yet); the message says which shard is missing and what to run."""


@dataclass(frozen=True)
class Shard:
    index: int
    count: int
    blend: Path
    report: dict[str, Any]


def find_shards(folder: Path) -> tuple[str, list[Shard]]:
    """The batch name and its complete shard set, in shard order. A folder with shard files of two
    different counts (a re-run with another N) is refused: which set is current cannot be guessed."""
    if not folder.is_dir():
        raise MergeError(f"{folder} is not a folder: give the batch folder, OUT/<batch>")
    found: dict[tuple[str, int], dict[int, Path]] = {}
    for path in folder.glob("*.shard-*-of-*.blend"):
        match = _SHARD_BLEND.fullmatch(path.name)
        if match:
            found.setdefault((match["batch"], int(match["count"])), {})[int(match["index"])] = path
    if not found:  # OUT itself (a farm job knows OUT, not the batch name): its one batch folder with shards
        inside = sorted({p.parent for p in folder.glob("*/*.shard-*-of-*.blend")})
        if len(inside) == 1:
            return find_shards(inside[0])
        if len(inside) > 1:
            raise MergeError(f"{folder} holds several batches ({', '.join(p.name for p in inside)}): "
                             "give one, OUT/<batch>")
        raise MergeError(f"{folder} holds no shard files (<batch>.shard-I-of-N.blend): run the shards first")
    if len(found) > 1:
        sets = ", ".join(f"{name} in {count} shards" for name, count in sorted(found))
        raise MergeError(f"{folder} holds more than one shard set ({sets}): remove the stale one")
    (batch, count), blends = next(iter(found.items()))
    shards = []
    for index in range(1, count + 1):
        suffix = f"shard-{index}-of-{count}"
        report_file = folder / f"report.{suffix}.json"
        if (index not in blends or not report_file.is_file()) and _empty_slice(folder, index, count):
            continue  # more shards than assets: this one had nothing to do, and wrote nothing
        if index not in blends or not report_file.is_file():
            raise MergeError(f"shard {index}/{count} has not completed (no {batch}.{suffix}.blend or "
                             f"report.{suffix}.json): run it, or --resume it, then merge")
        try:
            report = json.loads(report_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MergeError(f"cannot read {report_file.name}: {exc}") from exc
        if report.get("interrupted"):
            raise MergeError(f"shard {index}/{count} was interrupted: run it again with --resume, then merge")
        shards.append(Shard(index, count, blends[index], report))
    return batch, shards


def _empty_slice(folder: Path, index: int, count: int) -> bool:
    """Whether shard `index` of `count` has no assets, by the manifest another shard's report names."""
    for report_file in folder.glob(f"report.shard-*-of-{count}.json"):
        try:
            path = Path(json.loads(report_file.read_text(encoding="utf-8"))["manifest"])
            return not load_manifest(path, set(registry.names())).shard(index, count)
        except (OSError, ValueError, KeyError, ManifestError):
            continue
    return False


def merge(folder: Path) -> dict[str, Any]:
    """Merge the shards in `folder` (out/<batch>/); returns the merged report, also written to report.json."""
    started = time.monotonic()
    whole = _unsharded(folder)
    if whole is not None:
        return whole
    batch, shards = find_shards(folder)
    folder = shards[0].blend.parent  # OUT/<batch>/, also when `folder` was OUT
    entries = _entries(shards)
    bpy.ops.wm.read_homefile(use_empty=True)
    for shard in shards:
        _append_collections(shard.blend)
    missing = [e["asset"] for e in entries if e["status"] == "finished" and _object(e["asset"]) is None]
    if missing:
        raise MergeError(f"the shard files lack finished assets their reports list ({', '.join(missing[:5])}): "
                         "resume those shards, then merge")
    blend = folder / f"{batch}.blend"
    roots = _finished_roots(entries)
    export_error = _batch_wide_export(shards, roots, batch)
    sheet_path = folder / "contact_sheet.png"
    sheet = None
    if roots:
        with quiet_stdout():
            sheet = render_contact_sheet([(root.name, _meshes_of(root)) for root in roots], sheet_path)
    with quiet_stdout():
        bpy.ops.wm.save_as_mainfile(filepath=str(blend), check_existing=False)
    write_catalogs_beside_blend(batches_in_file())  # the save handler does this when Kiln's runtime runs
    exports_folder = next((s.report["output"].get("exports") for s in shards if s.report["output"].get("exports")),
                          None)
    if exports_folder:
        _tidy_export_manifest(Path(exports_folder), entries)
    first = shards[0].report
    merge_s = time.monotonic() - started
    output = {
        "folder": str(folder), "blend": str(blend), "exports": exports_folder,
        "export_error": export_error or next((s.report["output"].get("export_error") for s in shards
                                              if s.report["output"].get("export_error")), None),
        "report": str(folder / "report.json"),
        "contact_sheet": str(sheet_path) if sheet else None, "contact_sheet_grid": sheet,
        "shard_blends": [str(s.blend) for s in shards],
    }
    document = batch_report.assemble(
        batch=batch, manifest=first.get("manifest", ""), mode=first.get("mode", ""), backend=first.get("backend", ""),
        interrupted=False, entries=entries, wall_s=max(s.report["totals"]["wall_s"] for s in shards),
        output=output, reimported=sum(s.report["totals"].get("reimported_after_resume", 0) for s in shards),
        shard=(1, 1))
    document["shard"] = f"merged from {len(shards)}"
    document["shards"] = [{"shard": f"{s.index}/{s.count}", "wall_s": s.report["totals"]["wall_s"],
                           "jobs": s.report["totals"]["jobs"], "finished": s.report["totals"]["finished"],
                           "failed": s.report["totals"]["failed"], "blend": str(s.blend),
                           "exit_code": batch_report.exit_code(s.report)} for s in shards]
    document["merge_s"] = round(merge_s, 2)
    tmp = folder / "report.json.tmp"
    tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
    tmp.replace(folder / "report.json")
    return document


def _unsharded(folder: Path) -> dict[str, Any] | None:
    """A run in one shard (`--shard 1/1`, a farm job of one task) wrote the whole result already: its
    report, or None when `folder` (OUT/<batch>, or OUT with one batch) holds shard files to merge."""
    for candidate in (folder, *sorted(p.parent for p in folder.glob("*/report.json"))):
        report_file = candidate / "report.json"
        if not report_file.is_file() or any(candidate.glob("*.shard-*-of-*.blend")):
            continue
        try:
            document: dict[str, Any] = json.loads(report_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if document.get("shard") == "1/1" and not document.get("interrupted"):
            return document
    return None


def _entries(shards: list[Shard]) -> list[dict[str, Any]]:
    """Every shard's job entries, ordered by asset name as a single run lists them. An asset in two
    shards means the folder mixes runs: refused rather than counted twice."""
    owner: dict[str, int] = {}
    entries: list[dict[str, Any]] = []
    for shard in shards:
        for entry in shard.report.get("assets", []):
            earlier = owner.setdefault(entry["asset"], shard.index)
            if earlier != shard.index:
                raise MergeError(f"{entry['asset']} is in shard {earlier} and shard {shard.index}: the folder "
                                 "mixes two runs; run the shards again into an empty --out")
            entries.append(entry)
    return sorted(entries, key=lambda e: str(e["asset"]))  # stable: a segmented asset's parts keep their order


def _append_collections(path: Path) -> None:
    """Append a shard's collections (objects, LODs, materials follow). A collection another shard
    already brought (the batch's own, by name) receives this shard's objects instead of a `.001` twin."""
    libraries: Any = bpy.data.libraries  # the stubs miss that load() is a context manager
    with libraries.load(str(path), link=False) as (source, target):
        names = list(source.collections)
        target.collections = list(names)
    for library in [lib for lib in bpy.data.libraries if bpy.path.abspath(lib.filepath) == str(path)]:
        bpy.data.libraries.remove(library)  # appended, not linked: nothing uses it
    appended = [c for c in target.collections if c is not None]
    children = {child for c in appended for child in c.children}
    scene = bpy.context.scene
    if scene is None:
        raise MergeError("Blender has no scene to merge into")
    for name, collection in zip(names, target.collections, strict=True):
        if collection is None:
            continue
        existing: bpy.types.Collection | None = bpy.data.collections.get(name)
        if existing is not None and existing != collection:
            for obj in list(collection.objects):
                existing.objects.link(obj)
            for child in list(collection.children):
                if child.name not in existing.children:
                    existing.children.link(child)
            bpy.data.collections.remove(collection)
        elif collection not in children and collection.name not in scene.collection.children:
            scene.collection.children.link(collection)


def _object(name: str) -> bpy.types.Object | None:
    found: bpy.types.Object | None = bpy.data.objects.get(name)  # the stubs miss that get() may find nothing
    return found


def _finished_roots(entries: list[dict[str, Any]]) -> list[bpy.types.Object]:
    roots: list[bpy.types.Object] = []
    for entry in entries:
        obj = _object(entry["asset"]) if entry["status"] == "finished" else None
        while obj is not None and obj.parent is not None:
            obj = obj.parent
        if obj is not None and obj not in roots:
            roots.append(obj)
    return roots


def _batch_wide_export(shards: list[Shard], roots: list[bpy.types.Object], batch: str) -> str:
    """`per = "batch"`: each shard wrote one file for its slice; the batch gets one file for all of it.
    Recognised from the reports: a file that holds more than one asset. Per-asset exports are left as
    they are (already one folder). Returns the export error, if any."""
    files: dict[str, set[str]] = {}
    for shard in shards:
        for entry in shard.report.get("assets", []):
            for path in entry.get("files", {}).get("exports", []):
                files.setdefault(path, set()).add(entry["asset"])
    # A one-asset shard's batch-wide file is named after the batch (`_2`, `_3` from free_path for the
    # next shards), where a per-asset file carries the asset's zero-padded number (`_001`).
    stem = slug(batch)
    wide = [Path(p) for p, assets in files.items()
            if len(assets) > 1 or re.fullmatch(rf"{re.escape(stem)}(_[1-9][0-9]?)?", Path(p).stem)]
    if not wide or not roots:
        return ""
    folder = wide[0].parent
    manifest = folder / "export_manifest.json"
    preset = "unity"
    if manifest.is_file():
        with contextlib.suppress(ValueError):  # a damaged manifest: the default preset
            preset = str(json.loads(manifest.read_text(encoding="utf-8")).get("preset") or preset)
    for path in wide:
        path.unlink(missing_ok=True)
    try:
        written = export(roots, str(folder), per="batch", preset=preset, gltf=any(p.suffix == ".glb" for p in wide),
                         batch_name=batch)
    except (ExportError, OSError, RuntimeError, ValueError) as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    paths = sorted(f.path for f in written)
    for shard in shards:
        for entry in shard.report.get("assets", []):
            if entry.get("files", {}).get("exports"):
                entry["files"]["exports"] = paths
    return ""


def _tidy_export_manifest(folder: Path, entries: list[dict[str, Any]]) -> None:
    """Shards export into one folder at the same time, and each rewrites export_manifest.json: one may
    overwrite another's lines. Rebuilt here: the files that exist, once each, and a line for every export
    a shard report lists that the manifest lost."""
    manifest = folder / "export_manifest.json"
    try:
        document = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {"files": []}
    except ValueError:
        document = {"files": []}
    by_path: dict[str, dict[str, Any]] = {}
    for item in document.get("files", []):
        if isinstance(item, dict) and Path(str(item.get("path", ""))).is_file():
            by_path[str(item["path"])] = item
    for entry in entries:
        for path in entry.get("files", {}).get("exports", []):
            if path not in by_path and Path(path).is_file():
                by_path[path] = {"path": path, "kind": Path(path).suffix.lstrip("."), "objects": [entry["asset"]]}
    document["files"] = sorted(by_path.values(), key=lambda item: str(item["path"]))
    tmp = manifest.with_suffix(".json.part")
    tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
    tmp.replace(manifest)
