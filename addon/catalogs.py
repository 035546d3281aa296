"""Asset catalogs: one per batch, in the `blender_assets.cats.txt` that sits beside the .blend file.

Catalog ids are derived from the batch name (UUID5), so re-running a batch, resuming it or importing it
on another machine files assets under the same catalog instead of creating duplicates.
"""

from __future__ import annotations

import uuid
from pathlib import Path

CATS_FILE = "blender_assets.cats.txt"
ROOT = "Kiln"
_NAMESPACE = uuid.UUID("6f1c3f3a-6c7e-4d83-9a53-4b1d6f0a7c11")
_HEADER = (
    "# This is an Asset Catalog Definition file for Blender.\n"
    "#\n"
    "# Empty lines and lines starting with `#` will be ignored.\n"
    "# The first non-ignored line should be the version indicator.\n"
    '# Other lines are of the format "UUID:catalog/path/for/assets:simple catalog name"\n'
    "\n"
    "VERSION 1\n"
    "\n"
)


def catalog_id(batch: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, batch or "drafts"))


def catalog_path(batch: str) -> str:
    return f"{ROOT}/{batch or 'Drafts'}"


def merge_catalogs(existing_text: str, batches: list[str]) -> str:
    """The cats file with a catalog for each batch added; existing catalogs (the artist's) are kept."""
    lines = existing_text.splitlines() if existing_text.strip() else _HEADER.splitlines()
    known = {line.split(":", 1)[0] for line in lines if line and not line.startswith("#") and ":" in line}
    for batch in batches:
        cid = catalog_id(batch)
        if cid not in known:
            simple = catalog_path(batch).replace("/", "-")
            lines.append(f"{cid}:{catalog_path(batch)}:{simple}")
            known.add(cid)
    return "\n".join(lines) + "\n"


def write_catalogs(folder: Path, batches: list[str]) -> Path:
    """Create or update the cats file in `folder` (the .blend's folder), atomically."""
    target = folder / CATS_FILE
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    text = merge_catalogs(existing, batches)
    tmp = target.with_suffix(".txt.part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target
