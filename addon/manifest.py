"""Batch manifests (TOML): read, validate completely before anything is spent, and plan the assets.

Every error names the key it is about (`asset[3].prompt`, `[finish] lod_ratios`), or the line for
TOML syntax errors, so a pipeline TD can fix a manifest without reading Kiln's code.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .jobs import Mode, Priority
from .naming import asset_name, slug
from .presets import FinishPreset, PresetError, Theme, preset_from_settings, theme_from_prompt
from .validation import InputError, clean_prompt

BATCH_KEYS = {"name", "mode", "backend", "target", "priority", "budget", "options_per_prompt", "seed", "theme",
              "start_at"}
ASSET_KEYS = {"prompt", "image", "images", "parts", "count", "name", "options"}
VARIATION_KEYS = {"base", "list", "count", "options"}
EXPORT_KEYS = {"folder", "per", "preset", "gltf"}
TOP_KEYS = {"batch", "asset", "variations", "finish", "export", "backends"}
BACKEND_KEYS = {"base_url"}
VIEW_NAMES = ("front", "left", "back", "right")


class ManifestError(ValueError):
    """The manifest cannot run as written; nothing has been submitted."""


@dataclass(frozen=True)
class PlannedAsset:
    """One asset of the batch (before options): what to make and what to call it."""

    index: int
    kind: str
    """"text", "image", "multiview" or "parts"."""
    prompt: str = ""
    images: tuple[tuple[str, str], ...] = ()
    """(view or "image", absolute path)."""
    parts: tuple[str, ...] = ()
    label: str = ""
    options: int = 1
    """Variants of this asset to choose from (the batch's options_per_prompt unless overridden)."""


@dataclass
class ExportSettings:
    folder: str = "exports"
    per: str = "asset"
    preset: str = "unity"
    gltf: bool = False


@dataclass
class Manifest:
    path: Path
    name: str
    mode: Mode
    backend: str
    target: str
    priority: Priority
    budget: float | None
    options_per_prompt: int
    seed: int
    theme: Theme | None
    start_at: float | None
    assets: list[PlannedAsset] = field(default_factory=list)
    finish: FinishPreset | None = None
    export: ExportSettings | None = None
    backend_settings: dict[str, dict[str, str]] = field(default_factory=dict)
    """[backends.<name>] tables, e.g. {"tripo": {"base_url": "http://127.0.0.1:8000"}}."""

    def asset_names(self) -> list[str]:
        return [asset_name(self.name, a.index) for a in self.assets]

    def shard(self, index: int, count: int) -> list[PlannedAsset]:
        """A deterministic 1/count slice (index is 1-based): every asset lands in exactly one shard."""
        return [asset for asset in self.assets if asset.index % count == index - 1]


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _int(value: Any, where: str, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        bound = f" between {minimum} and {maximum}" if maximum else f" ≥ {minimum}"
        raise ManifestError(f"{where}: must be a whole number{bound}, not {value!r}")
    return value


def _prompt(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{where}: must be text")
    try:
        return clean_prompt(value)
    except InputError as exc:
        raise ManifestError(f"{where}: {exc}") from exc


def _image(value: Any, base: Path, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}: must be a file path")
    path = (base / value).resolve()
    if not path.is_file():
        raise ManifestError(f"{where}: file not found: {path}")
    return str(path)


def load_manifest(path: Path, known_backends: set[str] | None = None) -> Manifest:
    """Parse and fully validate a manifest. Raises ManifestError naming the key or line."""
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"manifest not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path.name}: not valid TOML: {exc}") from exc
    _check_keys(data, TOP_KEYS, "manifest")
    batch = data.get("batch")
    if not isinstance(batch, dict):
        raise ManifestError("[batch]: missing (it needs at least name)")
    _check_keys(batch, BATCH_KEYS, "[batch]")
    name = batch.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ManifestError("[batch] name: missing or empty (for example \"env_vegetation_01\")")
    if slug(name) != name:
        raise ManifestError(f"[batch] name: '{name}' must be lower-case letters, digits and underscores, "
                            f"e.g. '{slug(name)}'")
    try:
        mode = Mode(batch.get("mode", "production"))
    except ValueError as exc:
        raise ManifestError("[batch] mode: must be \"draft\" or \"production\"") from exc
    backend = batch.get("backend", "local")
    if known_backends is not None and backend not in known_backends:
        raise ManifestError(f"[batch] backend: unknown backend '{backend}' (available: "
                            f"{', '.join(sorted(known_backends))})")
    target = batch.get("target", "game")
    if target not in ("game", "film"):
        raise ManifestError("[batch] target: must be \"game\" or \"film\"")
    try:
        priority = Priority[str(batch.get("priority", "normal")).upper()]
    except KeyError as exc:
        raise ManifestError("[batch] priority: must be \"high\", \"normal\" or \"low\"") from exc
    budget = batch.get("budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float) or budget < 0):
        raise ManifestError("[batch] budget: must be a number of credits ≥ 0")
    options = _int(batch.get("options_per_prompt", 1), "[batch] options_per_prompt", 1, 4)
    seed = _int(batch.get("seed", 1), "[batch] seed", 0)
    theme_text = batch.get("theme")
    theme = theme_from_prompt(_prompt(theme_text, "[batch] theme")) if theme_text is not None else None
    start_at = None
    if "start_at" in batch:
        value = batch["start_at"]
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError as exc:
                raise ManifestError("[batch] start_at: use an ISO time, e.g. 2026-11-28T02:00:00") from exc
        if not isinstance(value, dt.datetime):
            raise ManifestError("[batch] start_at: use an ISO time, e.g. 2026-11-28T02:00:00")
        start_at = value.timestamp()

    base = path.parent
    assets: list[PlannedAsset] = []

    def add(kind: str, options_count: int = 1, **values: Any) -> None:
        assets.append(PlannedAsset(index=len(assets), kind=kind, options=options_count, **values))

    raw_assets = data.get("asset", [])
    if not isinstance(raw_assets, list):
        raise ManifestError("[[asset]]: write each asset as an [[asset]] table")
    for number, entry in enumerate(raw_assets, start=1):
        where = f"asset[{number}]"
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: must be a table")
        _check_keys(entry, ASSET_KEYS, where)
        sources = [k for k in ("image", "images", "parts") if k in entry]
        if len(sources) > 1:
            raise ManifestError(f"{where}: give one of image, images or parts, not {' and '.join(sources)}")
        count = _int(entry.get("count", 1), f"{where}.count", 1, 100)
        asset_options = _int(entry.get("options", options), f"{where}.options", 1, 4)
        for _ in range(count):
            if "image" in entry:
                image = _image(entry["image"], base, f"{where}.image")
                add("image", asset_options, images=(("image", image),), label=entry.get("name") or Path(image).stem)
            elif "images" in entry:
                views = entry["images"]
                if not isinstance(views, dict):
                    raise ManifestError(
                        f"{where}.images: a table of views, e.g. {{ front = \"a.png\", left = \"b.png\" }}")
                unknown = sorted(set(views) - set(VIEW_NAMES))
                if unknown:
                    raise ManifestError(f"{where}.images: unknown view(s) {', '.join(unknown)} "
                                        f"(use {', '.join(VIEW_NAMES)})")
                if "front" not in views or len(views) < 2:
                    raise ManifestError(f"{where}.images: needs a front view and at least one more")
                ordered = tuple((v, _image(views[v], base, f"{where}.images.{v}")) for v in VIEW_NAMES if v in views)
                add("multiview", images=ordered, label=entry.get("name") or "multiview")
            elif "parts" in entry:
                parts = entry["parts"]
                if not isinstance(parts, list) or not parts:
                    raise ManifestError(f"{where}.parts: a non-empty list of part prompts")
                cleaned = tuple(_prompt(p, f"{where}.parts[{i + 1}]") for i, p in enumerate(parts))
                prefix = _prompt(entry["prompt"], f"{where}.prompt") if "prompt" in entry else ""
                add("parts", prompt=prefix, parts=cleaned, label=entry.get("name") or prefix or "parts")
            else:
                if "prompt" not in entry:
                    raise ManifestError(f"{where}: needs a prompt, an image, images or parts")
                prompt = _prompt(entry["prompt"], f"{where}.prompt")
                add("text", asset_options, prompt=prompt, label=prompt)

    variations = data.get("variations")
    if variations is not None:
        if not isinstance(variations, dict):
            raise ManifestError("[variations]: must be a table with base and list")
        _check_keys(variations, VARIATION_KEYS, "[variations]")
        base_prompt = _prompt(variations.get("base"), "[variations] base")
        items = variations.get("list")
        if not isinstance(items, list) or not items:
            raise ManifestError("[variations] list: a non-empty list, e.g. [\"with vents\", \"with lights\"]")
        count = _int(variations.get("count", 1), "[variations] count", 1, 100)
        variation_options = _int(variations.get("options", options), "[variations] options", 1, 4)
        for i, item in enumerate(items, start=1):
            variation = _prompt(item, f"[variations] list[{i}]")
            for _ in range(count):
                prompt = _prompt(f"{base_prompt} {variation}", f"[variations] list[{i}]")
                add("text", variation_options, prompt=prompt, label=prompt)
    if not assets:
        raise ManifestError("manifest: no assets: add [[asset]] entries or a [variations] table")

    finish = None
    if "finish" in data:
        if not isinstance(data["finish"], dict):
            raise ManifestError("[finish]: must be a table, e.g. preset = \"game\"")
        try:
            finish = preset_from_settings(data["finish"])
        except PresetError as exc:
            raise ManifestError(str(exc)) from exc
    export = None
    if "export" in data:
        table = data["export"]
        if not isinstance(table, dict):
            raise ManifestError("[export]: must be a table")
        _check_keys(table, EXPORT_KEYS, "[export]")
        export = ExportSettings(**table)
        if export.per not in ("asset", "batch"):
            raise ManifestError("[export] per: must be \"asset\" or \"batch\"")
        if export.preset not in ("unity", "unreal"):
            raise ManifestError("[export] preset: must be \"unity\" or \"unreal\"")
        if not isinstance(export.gltf, bool):
            raise ManifestError("[export] gltf: must be true or false")
    backend_settings: dict[str, dict[str, str]] = {}
    for backend_name, table in (data.get("backends") or {}).items():
        where = f"[backends.{backend_name}]"
        if known_backends is not None and backend_name not in known_backends:
            raise ManifestError(f"{where}: unknown backend '{backend_name}'")
        if not isinstance(table, dict):
            raise ManifestError(f"{where}: must be a table, e.g. base_url = \"https://…\"")
        _check_keys(table, BACKEND_KEYS, where)
        url = table.get("base_url", "")
        if not isinstance(url, str) or not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ManifestError(f"{where} base_url: must be an https:// URL (plain http only for 127.0.0.1)")
        backend_settings[backend_name] = {"base_url": url}
    return Manifest(path=path, name=name, mode=mode, backend=backend, target=target, priority=priority,
                    budget=None if budget is None else float(budget), options_per_prompt=options, seed=seed,
                    theme=theme, start_at=start_at, assets=assets, finish=finish, export=export,
                    backend_settings=backend_settings)


def job_count(manifest: Manifest, assets: list[PlannedAsset] | None = None) -> int:
    """Jobs the assets will queue: options for text and image assets, one per part for parts."""
    total = 0
    for asset in manifest.assets if assets is None else assets:
        total += len(asset.parts) if asset.kind == "parts" else 1 if asset.kind == "multiview" else asset.options
    return total
