"""Batch manifests (TOML): read, validate completely before anything is spent, and plan the assets.

Every error names the key it is about (`asset[3].prompt`, `[finish] lod_ratios`), or the file and
line for encoding and TOML syntax errors, so a pipeline TD can fix a manifest without reading Kiln's
code. Types are checked as strictly as ranges: TOML has real booleans, numbers and dates, so a quoted
`"no"` or `"5"` is refused rather than guessed at (`bool("no")` is true).
"""

from __future__ import annotations

import codecs
import datetime as dt
import math
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ..backends import registry
from ..imaging.header import HeaderError, ImageTooLarge, check_image
from ..jobs import Mode, Priority
from ..naming import asset_name, slug
from ..presets import FinishPreset, PresetError, Theme, preset_from_settings, theme_from_prompt
from ..validation import InputError, clean_prompt
from ..validation import show_value as show

BATCH_KEYS = {"name", "mode", "backend", "target", "priority", "budget", "options_per_prompt", "seed", "theme",
              "start_at", "reserve"}
ASSET_KEYS = {"prompt", "image", "images", "parts", "count", "name", "options"}
VARIATION_KEYS = {"base", "list", "count", "options"}
EXPORT_KEYS = {"folder", "per", "preset", "gltf"}
TOP_KEYS = {"batch", "asset", "variations", "finish", "export", "backends"}
BACKEND_KEYS = {"base_url", "urls", "concurrency"}
MAX_PLAN_CONCURRENCY = 100
VIEW_NAMES = ("front", "left", "back", "right")

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""A manifest is a few kilobytes; anything this big is the wrong file (a GLB, a log), not a batch."""
MAX_JOBS = 10_000
"""Jobs one manifest may queue. Counted while the manifest is read, so a typo such as `count = 100`
on a long list fails at once instead of building millions of jobs; bigger batches are several manifests."""
MAX_COUNT = 100
MAX_OPTIONS = 4
MAX_NAME_CHARS = 200
INT64 = 2**63
"""TOML integers are 64-bit; Python's parser reads longer ones, which the spec says must be refused."""
EARLIEST_START = dt.datetime(1970, 1, 2)
"""A start time before the epoch is a typo (year 1), not a schedule."""


class ManifestError(ValueError):
    """The run cannot start as asked, and nothing has been submitted. `key` names what to fix: a
    manifest key (`[batch] seed`), a flag (`--out`), an environment variable or the file itself."""

    def __init__(self, key: str, what: str) -> None:
        super().__init__(f"{key}: {what}")
        self.key = key
        self.what = what


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

    @property
    def jobs(self) -> int:
        """Jobs this asset queues: one per part, one for a multiview, one per option otherwise."""
        return len(self.parts) if self.kind == "parts" else 1 if self.kind == "multiview" else self.options


@dataclass
class ExportSettings:
    folder: str = "exports"
    """Relative to out/<batch>/, and never outside it (only the command line's --export-dir is)."""
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
    plan_concurrency: dict[str, int] = field(default_factory=dict)
    """[backends.<name>] concurrency: the tasks in flight the account's plan allows, per backend."""
    reserve: float = 0.0
    """[batch] reserve: credits this run leaves on the account for drafts (DESIGN: plan limits)."""
    text: str = ""
    """The manifest as read (its hash tells a resume whether it was edited)."""

    def asset_names(self) -> list[str]:
        return [asset_name(self.name, a.index) for a in self.assets]

    def shard(self, index: int, count: int) -> list[PlannedAsset]:
        """A deterministic 1/count slice (index is 1-based): every asset lands in exactly one shard."""
        return [asset for asset in self.assets if asset.index % count == index - 1]


# ------------------------------------------------------------------------------------------- values
def _unquote_hint(value: Any) -> str:
    return " (write it without quotes)" if isinstance(value, str) else ""


def _text(value: Any, key: str, example: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(key, f"must be text in quotes, e.g. {example}, not {show(value)}")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(f'"{c}"' for c in choices)
        raise ManifestError(key, f"must be one of {options}, not {show(value)}")
    return value


def _whole(value: Any, key: str, minimum: int, maximum: int, span: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        span = span or f"from {minimum} to {maximum}"
        raise ManifestError(key, f"must be a whole number {span}, not {show(value)}{_unquote_hint(value)}")
    return value


def _number(value: Any, key: str, what: str) -> float:
    """A finite number ≥ 0 (an int or a float; never NaN, infinity or a bool)."""
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    if not math.isfinite(number) or number < 0:
        raise ManifestError(key, f"must be {what} ≥ 0 (a finite number), not {show(value)}{_unquote_hint(value)}")
    return number


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(key, f"must be true or false (without quotes), not {show(value)}")
    return value


def _table(value: Any, key: str, example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(key, f"must be a table, e.g. {example}, not {show(value)}")
    return value


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        shown = ", ".join(show(k) if not k.isidentifier() else k for k in unknown[:5])
        raise ManifestError(where, f"unknown key(s) {shown} (allowed: {', '.join(sorted(allowed))})")


def _prompt(value: Any, key: str) -> str:
    text = _text(value, key, '"mossy boulder"')
    try:
        return clean_prompt(text)
    except InputError as exc:
        raise ManifestError(key, str(exc)) from exc


def _label(value: Any, key: str) -> str:
    text = " ".join(_text(value, key, '"market_stall"').split())
    if not text or len(text) > MAX_NAME_CHARS:
        raise ManifestError(key, f"must be 1 to {MAX_NAME_CHARS} characters, not {show(value)}")
    return text


def resolve_path(path: Path, key: str) -> Path:
    """`path` with links followed; a link loop is the TD's to fix, not a crash."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:
        raise ManifestError(key, f"cannot follow {path}: a link loop or an unreadable folder") from exc


def _image(value: Any, base: Path, key: str) -> str:
    text = _text(value, key, '"images/crate.png"')
    if not text.strip() or "\x00" in text:
        raise ManifestError(key, f"must be a file path, not {show(value)}")
    path = resolve_path(base / text, key)
    if not path.is_file():
        raise ManifestError(key, f"file not found: {path}" if not path.exists() else f"{path} is not a file")
    if not os.access(path, os.R_OK):
        raise ManifestError(key, f"cannot read {path} (permission denied)")
    try:  # from the header: a decompression bomb stops the run here, before Blender opens anything
        check_image(path)
    except ImageTooLarge as exc:
        raise ManifestError(key, f"{path.name} is {exc}") from None
    except HeaderError as exc:
        raise ManifestError(key, f"{path.name} is not a readable image ({exc})") from None
    except OSError as exc:
        raise ManifestError(key, f"cannot read {path}: {exc.strerror or exc}") from None
    return str(path)


def _start_time(value: Any, key: str) -> float:
    """A start time as a POSIX timestamp; a time without a zone is the machine's local time."""
    example = "use a date and time, e.g. 2026-11-28T02:00:00"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ManifestError(key, f"{example}, not {show(value)}") from exc
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        raise ManifestError(key, f"{example}, not {show(value)}")
    if value.replace(tzinfo=None) < EARLIEST_START:
        raise ManifestError(key, f"{value.date().isoformat()} is before 1970: {example}, or remove start_at to "
                            "start at once")
    try:
        return value.timestamp()
    except (OverflowError, ValueError, OSError) as exc:
        raise ManifestError(key, f"{value.isoformat()} is out of range: {example}") from exc


def _export_folder(value: Any, key: str) -> str:
    """A folder inside out/<batch>/: relative, without `..` (as POSIX or as Windows reads it)."""
    text = _text(value, key, '"exports"')
    if not text.strip() or any(ord(c) < 32 for c in text):
        raise ManifestError(key, f"must be a folder name, e.g. \"exports\", not {show(value)}")
    posix, windows = PurePosixPath(text), PureWindowsPath(text)
    if posix.is_absolute() or windows.anchor or text.startswith("~"):
        raise ManifestError(key, f"{show(value)} is not inside the batch folder: give a folder relative to "
                            "out/<batch>/, or pass --export-dir DIR on the command line to write elsewhere")
    if ".." in posix.parts or ".." in windows.parts:
        raise ManifestError(key, f"{show(value)} climbs out of the batch folder (..): give a folder inside "
                            "out/<batch>/, or pass --export-dir DIR on the command line to write elsewhere")
    return text


# --------------------------------------------------------------------------------------------- file
def read_manifest_text(path: Path) -> str:
    """The manifest's text, refusing what is not a UTF-8 text file (a UTF-8 signature is dropped:
    Windows editors write one, and it changes nothing)."""
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise ManifestError("manifest", f"{path} does not exist") from exc
    except OSError as exc:
        raise ManifestError("manifest", f"cannot read {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ManifestError("manifest", f"{path} is a folder: give the .toml file")
    if not stat.S_ISREG(info.st_mode):
        raise ManifestError("manifest", f"{path} is not a regular file")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise ManifestError("manifest", f"{path} is {info.st_size // 1024} KB; a manifest is text of at most "
                            f"{MAX_MANIFEST_BYTES // (1024 * 1024)} MB (is it the right file?)")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError("manifest", f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode_manifest(data, path.name)


def decode_manifest(data: bytes, name: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)):
        raise ManifestError(name, "the file is UTF-16 or UTF-32 text: save it as UTF-8")
    if b"\x00" in data:
        raise ManifestError(name, "the file holds NUL bytes: it is UTF-16 text or not text at all; save it as "
                            "UTF-8")
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ManifestError(name, f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}): save the file "
                            "as UTF-8") from exc


def parse_manifest(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(name, f"not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ManifestError(name, "not valid TOML: arrays or tables nested too deeply") from exc
    except ValueError as exc:  # an integer literal longer than Python converts (thousands of digits)
        raise ManifestError(name, "not valid TOML: a number is far too long") from exc


# ------------------------------------------------------------------------------------------- tables
def load_manifest(path: Path, known_backends: set[str] | None = None) -> Manifest:
    """Read and fully validate a manifest. Raises ManifestError naming the key, or the file and line."""
    path = Path(path).absolute()
    text = read_manifest_text(path)
    return manifest_from_data(parse_manifest(text, path.name), path, known_backends, text)


def manifest_from_data(data: dict[str, Any], path: Path, known_backends: set[str] | None = None,
                       text: str = "") -> Manifest:
    _check_keys(data, TOP_KEYS, "manifest")
    if "batch" not in data:
        raise ManifestError("[batch]", "missing (it needs at least name)")
    batch = _table(data["batch"], "[batch]", 'name = "env_rocks_01"')
    _check_keys(batch, BATCH_KEYS, "[batch]")
    if "name" not in batch:
        raise ManifestError("[batch] name", "missing (for example \"env_vegetation_01\")")
    name = _text(batch["name"], "[batch] name", '"env_vegetation_01"')
    if not name.strip():
        raise ManifestError("[batch] name", "empty (for example \"env_vegetation_01\")")
    if slug(name) != name:
        raise ManifestError("[batch] name", f"{show(name)} must be lower-case letters, digits and underscores, "
                            f"e.g. \"{slug(name)}\"")
    mode = Mode(_choice(batch.get("mode", "production"), "[batch] mode", tuple(m.value for m in Mode)))
    backend = _text(batch.get("backend", "local"), "[batch] backend", '"local"')
    if known_backends is not None and backend not in known_backends:
        raise ManifestError("[batch] backend", f"unknown backend {show(backend)} (available: "
                            f"{', '.join(sorted(known_backends))})")
    target = _choice(batch.get("target", "game"), "[batch] target", ("game", "film"))
    priority = Priority[_choice(batch.get("priority", "normal"), "[batch] priority",
                                ("high", "normal", "low")).upper()]
    budget = _number(batch["budget"], "[batch] budget", "a number of credits") if "budget" in batch else None
    reserve = _number(batch.get("reserve", 0), "[batch] reserve", "a number of credits")
    options = _whole(batch.get("options_per_prompt", 1), "[batch] options_per_prompt", 1, MAX_OPTIONS)
    # Any TOML integer: seeds derive from it by a hash (addon/requests.py), always inside 0..2^31-1.
    seed = _whole(batch.get("seed", 1), "[batch] seed", -INT64, INT64 - 1, "(any that fits in 64 bits)")
    theme = theme_from_prompt(_prompt(batch["theme"], "[batch] theme")) if "theme" in batch else None
    start_at = _start_time(batch["start_at"], "[batch] start_at") if "start_at" in batch else None

    assets = _assets(data, path.parent, options)
    if known_backends is not None:
        # A backend that cannot start from an asset's input (Stability: images only) is refused now.
        for asset in assets:
            problem = registry.input_problem(backend, "text" if asset.kind == "parts" else asset.kind)
            if problem:
                raise ManifestError("[batch] backend", f"asset '{asset.label}': {problem}")
    finish = None
    if "finish" in data:
        table = _table(data["finish"], "[finish]", 'preset = "game"')
        try:
            finish = preset_from_settings(table)
        except PresetError as exc:
            raise ManifestError(exc.key, exc.what) from exc
    export = None
    if "export" in data:
        table = _table(data["export"], "[export]", 'folder = "exports"')
        _check_keys(table, EXPORT_KEYS, "[export]")
        export = ExportSettings(
            folder=_export_folder(table.get("folder", "exports"), "[export] folder"),
            per=_choice(table.get("per", "asset"), "[export] per", ("asset", "batch")),
            preset=_choice(table.get("preset", "unity"), "[export] preset", ("unity", "unreal")),
            gltf=_flag(table.get("gltf", False), "[export] gltf"))
    backend_settings: dict[str, dict[str, str]] = {}
    plan_concurrency: dict[str, int] = {}
    if "backends" in data:
        tables = _table(data["backends"], "[backends]", '[backends.tripo] base_url = "https://…"')
        for backend_name, value in tables.items():
            where = f"[backends.{backend_name}]"
            if known_backends is not None and backend_name not in known_backends:
                raise ManifestError(where, f"unknown backend {show(backend_name)} (available: "
                                    f"{', '.join(sorted(known_backends))})")
            table = _table(value, where, 'base_url = "https://…"')
            _check_keys(table, BACKEND_KEYS, where)
            if "base_url" in table:
                url = _text(table["base_url"], f"{where} base_url", '"https://api.example.com"')
                entry = registry.find(backend_name)
                problem = registry.endpoint_problem(url, with_key=entry is None or entry.needs_key)
                if problem:
                    raise ManifestError(f"{where} base_url", problem)
                backend_settings[backend_name] = {"base_url": url}
            if "urls" in table:
                backend_settings[backend_name] = {"base_url": _urls(table["urls"], backend_name, f"{where} urls")}
            if "concurrency" in table:
                plan_concurrency[backend_name] = _whole(table["concurrency"], f"{where} concurrency", 1,
                                                        MAX_PLAN_CONCURRENCY)
    return Manifest(path=path, name=name, mode=mode, backend=backend, target=target, priority=priority,
                    budget=budget, options_per_prompt=options, seed=seed, theme=theme, start_at=start_at,
                    assets=assets, finish=finish, export=export, backend_settings=backend_settings,
                    plan_concurrency=plan_concurrency, reserve=reserve, text=text)


def _urls(value: Any, backend_name: str, where: str) -> str:
    """A pool's `urls = ["http://gpu1:8081", …]`, for a backend whose endpoint is a pool (Hunyuan3D), kept
    as the comma-separated text its endpoint setting holds."""
    entry = registry.find(backend_name)
    if entry is None or not entry.url_list:
        raise ManifestError(where, f"only a pooled backend takes a list of servers; use base_url for "
                            f"{show(backend_name)}")
    if not isinstance(value, list) or not value or not all(isinstance(u, str) and u.strip() for u in value):
        raise ManifestError(where, 'must be a list of server URLs, e.g. urls = ["http://gpu1:8081", '
                            '"http://gpu2:8081"]')
    text = ",".join(u.strip() for u in value)
    problem = registry.endpoints_problem(backend_name, text, with_key=entry.needs_key)
    if problem:
        raise ManifestError(where, problem)
    return text


def _assets(data: dict[str, Any], base: Path, default_options: int) -> list[PlannedAsset]:
    assets: list[PlannedAsset] = []
    jobs = 0

    def add(key: str, kind: str, options_count: int = 1, **values: Any) -> None:
        nonlocal jobs
        asset = PlannedAsset(index=len(assets), kind=kind, options=options_count, **values)
        jobs += asset.jobs
        if jobs > MAX_JOBS:
            raise ManifestError(key, f"the manifest would queue more than {MAX_JOBS} jobs: lower the counts, or "
                                "split it into several manifests")
        assets.append(asset)

    raw_assets = data.get("asset", [])
    if not isinstance(raw_assets, list):
        raise ManifestError("[[asset]]", f"write each asset as an [[asset]] table, not {show(raw_assets)}")
    for number, value in enumerate(raw_assets, start=1):
        where = f"asset[{number}]"
        entry = _table(value, where, 'prompt = "crate"')
        _check_keys(entry, ASSET_KEYS, where)
        sources = [k for k in ("image", "images", "parts") if k in entry]
        if len(sources) > 1:
            raise ManifestError(where, f"give one of image, images or parts, not {' and '.join(sources)}")
        count = _whole(entry.get("count", 1), f"{where}.count", 1, MAX_COUNT)
        asset_options = _whole(entry.get("options", default_options), f"{where}.options", 1, MAX_OPTIONS)
        label = _label(entry["name"], f"{where}.name") if "name" in entry else ""
        made: dict[str, Any]
        if "image" in entry:
            image = _image(entry["image"], base, f"{where}.image")
            made = {"kind": "image", "options_count": asset_options, "images": (("image", image),),
                    "label": label or Path(image).stem}
        elif "images" in entry:
            views = _table(entry["images"], f"{where}.images", '{ front = "a.png", left = "b.png" }')
            unknown = sorted(set(views) - set(VIEW_NAMES))
            if unknown:
                raise ManifestError(f"{where}.images", f"unknown view(s) {', '.join(show(v) for v in unknown[:4])} "
                                    f"(use {', '.join(VIEW_NAMES)})")
            if "front" not in views or len(views) < 2:
                raise ManifestError(f"{where}.images", "needs a front view and at least one more")
            ordered = tuple((v, _image(views[v], base, f"{where}.images.{v}")) for v in VIEW_NAMES if v in views)
            made = {"kind": "multiview", "images": ordered, "label": label or "multiview"}
        elif "parts" in entry:
            parts = entry["parts"]
            if not isinstance(parts, list) or not parts:
                raise ManifestError(f"{where}.parts", f"a non-empty list of part prompts, not {show(parts)}")
            cleaned = tuple(_prompt(p, f"{where}.parts[{i + 1}]") for i, p in enumerate(parts))
            prefix = _prompt(entry["prompt"], f"{where}.prompt") if "prompt" in entry else ""
            made = {"kind": "parts", "prompt": prefix, "parts": cleaned, "label": label or prefix or "parts"}
        else:
            if "prompt" not in entry:
                raise ManifestError(where, "needs a prompt, an image, images or parts")
            prompt = _prompt(entry["prompt"], f"{where}.prompt")
            made = {"kind": "text", "options_count": asset_options, "prompt": prompt, "label": label or prompt}
        for _ in range(count):
            add(f"{where}.count", **made)

    if "variations" in data:
        variations = _table(data["variations"], "[variations]", 'base = "sci-fi panel"')
        _check_keys(variations, VARIATION_KEYS, "[variations]")
        if "base" not in variations:
            raise ManifestError("[variations] base", "missing: the prompt every variation is added to")
        base_prompt = _prompt(variations["base"], "[variations] base")
        items = variations.get("list")
        if not isinstance(items, list) or not items:
            raise ManifestError("[variations] list", f"a non-empty list, e.g. [\"with vents\", \"with lights\"], not "
                                f"{show(items) if items is not None else 'missing'}")
        count = _whole(variations.get("count", 1), "[variations] count", 1, MAX_COUNT)
        variation_options = _whole(variations.get("options", default_options), "[variations] options", 1,
                                   MAX_OPTIONS)
        for i, item in enumerate(items, start=1):
            variation = _prompt(item, f"[variations] list[{i}]")
            prompt = _prompt(f"{base_prompt} {variation}", f"[variations] list[{i}]")
            for _ in range(count):
                add("[variations] count", "text", variation_options, prompt=prompt, label=prompt)
    if not assets:
        raise ManifestError("manifest", "no assets: add [[asset]] entries or a [variations] table")
    return assets


def job_count(manifest: Manifest, assets: list[PlannedAsset] | None = None) -> int:
    """Jobs the assets will queue: options for text and image assets, one per part for parts."""
    return sum(asset.jobs for asset in (manifest.assets if assets is None else assets))
