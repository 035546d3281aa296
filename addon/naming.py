"""Names for batches, assets and files: one convention everywhere (`env_rocks_01`, `env_rocks_01_003`)."""

from __future__ import annotations

import re
import unicodedata

DRAFTS_COLLECTION = "Kiln Drafts"
REJECTED_COLLECTION = "Rejected"
_MAX_FILE_STEM = 64
# Names Windows refuses as file stems, whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def slug(text: str, max_length: int = _MAX_FILE_STEM) -> str:
    """A safe, readable file stem from free text: ASCII letters, digits and underscores only.

    Prompts are user text: path separators, `..`, control characters and reserved device names
    must never reach a file name.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:max_length].strip("_")
    if not stem:
        return "untitled"
    if stem in _RESERVED:
        stem = f"{stem}_asset"
    return stem


def asset_name(batch: str, index: int, option: int = 0) -> str:
    """`env_rocks_01_003`, and `env_rocks_01_003_v2` for the second option of the same prompt."""
    base = f"{slug(batch) if batch else 'draft'}_{index + 1:03d}"
    return f"{base}_v{option + 1}" if option else base


def draft_name(prompt: str, index: int) -> str:
    return f"draft_{slug(prompt, 32)}_{index + 1:03d}"


def next_batch_name(prefix: str, existing: set[str]) -> str:
    """`env_rocks_01`, then `_02` … : the first free number for this prefix."""
    stem = slug(prefix, 40)
    number = 1
    while f"{stem}_{number:02d}" in existing:
        number += 1
    return f"{stem}_{number:02d}"
