"""A generated fuzz set of bad manifests, flags and environments for `kiln batch` (issue 12, item 6).

A valid manifest that uses every key is mutated key by key (wrong types, wrong values, ranges, paths),
and joined by broken files (encodings, nesting, sizes, not-a-file), bad flags and bad environments.
Each case runs the real command line (`addon.batch.cli.main`) under plain Python, and must give:

- exit 2, and exactly one line on stderr, `kiln batch: error: <key>: …`, naming the key;
- no traceback, nothing on stdout, the Blender runner never reached (nothing was prepared or spent);
- nothing written anywhere in the test's folder (the manifest's folder, --out and beyond);
- never the API key itself.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from addon.batch import cli, report
from addon.batch.manifest import MAX_JOBS, ManifestError, load_manifest
from addon.batch.plan import BatchOptions, Plan, check_outputs, export_folder
from addon.imaging.png import encode_png
from addon.requests import SEED_RANGE, derived_seed

NOW = dt.datetime(2026, 11, 27, 12, 0, 0)
KEY = "tsk_secret-key-0123456789"
BATCH = "env_fuzz_01"


# ------------------------------------------------------------------------------------ a TOML writer
def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # TOML basic strings take JSON's escapes
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


@dataclass(frozen=True)
class Raw:
    """TOML text written as is (a value no Python type produces, e.g. a bare time)."""

    text: str


def valid_document() -> dict[str, Any]:
    """A manifest that passes every check and uses every key."""
    return {
        "batch": {"name": BATCH, "mode": "production", "backend": "local", "target": "game", "priority": "normal",
                  "budget": 100, "options_per_prompt": 1, "seed": 7, "theme": "mossy stone",
                  "start_at": (NOW + dt.timedelta(hours=2)).isoformat()},
        "asset": [
            {"prompt": "wooden crate", "count": 2, "options": 2, "name": "crate"},
            {"image": "ref.png"},
            {"images": {"front": "front.png", "left": "left.png"}},
            {"name": "stall", "parts": ["table", "barrel"]},
        ],
        "variations": {"base": "sci-fi panel", "list": ["with vents", "with lights"], "count": 1, "options": 1},
        "finish": {"preset": "game", "face_budget": 3000, "bake": True, "bake_size": 512, "texture_size": 1024,
                   "lod_ratios": [0.5, 0.25], "height_m": 1.5, "remesh": "keep", "uv": "auto",
                   "apply_transforms": True},
        "export": {"folder": "exports", "per": "asset", "preset": "unity", "gltf": False},
        "backends": {"tripo": {"base_url": "https://api.example.com"}},
    }


def to_toml(document: dict[str, Any]) -> str:
    lines: list[str] = []
    for section, content in document.items():
        if isinstance(content, list) and all(isinstance(item, dict) for item in content) and content:
            for item in content:
                lines.append(f"[[{section}]]")
                lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in item.items()]
        elif isinstance(content, dict) and section == "backends":
            for name, table in content.items():
                if isinstance(table, dict):
                    lines.append(f"[backends.{json.dumps(name)}]")
                    lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
                else:
                    lines.append(f"[backends]\n{json.dumps(name)} = {toml_value(table)}")
        elif isinstance(content, dict):
            lines.append(f"[{section}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in content.items()]
        else:
            lines.insert(0, f"{json.dumps(section)} = {toml_value(content)}")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    id: str
    key: str
    """What the one error line must name first (after `kiln batch: error: `)."""
    manifest: bytes | None = None
    flags: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    online: bool = False
    setup: Callable[[Path], None] | None = None
    manifest_path: str = "batch.toml"


def mutated(section: str, key: str, value: Any, *, index: int | None = None, drop: bool = False) -> bytes:
    document = valid_document()
    table = document[section] if index is None else document[section][index]
    if drop:
        del table[key]
    else:
        table[key] = value
    return to_toml(document).encode()


def replaced(section: str, value: Any) -> bytes:
    document = valid_document()
    document[section] = value
    return to_toml(document).encode()


WRONG_TYPES: list[Any] = [5, 1.5, True, ["x"], {"a": 1}, dt.datetime(2026, 1, 1)]
WRONG_TEXT: list[Any] = [5, True, ["x"], {"a": 1}]
WHOLE_BAD: list[Any] = ["2", 2.5, True, -1, 0, 10**12, [1]]


def key_cases() -> list[Case]:
    """Every key of the valid manifest, with values of the wrong type or out of range."""
    cases: list[Case] = []

    def add(section: str, key: str, values: list[Any], where: str, index: int | None = None) -> None:
        for value in values:
            cases.append(Case(f"{where}={toml_value(value)[:30]}", where, mutated(section, key, value, index=index)))

    add("batch", "name", [*WRONG_TEXT, "", "Env Rocks", "../x", "con", "a" * 100, "env/fuzz"], "[batch] name")
    add("batch", "mode", [*WRONG_TYPES, "fast", ""], "[batch] mode")
    add("batch", "backend", [["local"], 5, True, {"a": 1}, "magic", ""], "[batch] backend")
    add("batch", "target", [*WRONG_TEXT, "mobile"], "[batch] target")
    add("batch", "priority", [1, True, ["high"], "urgent", "HIGH"], "[batch] priority")
    add("batch", "budget", ["50", math.nan, math.inf, -math.inf, -1, -0.5, True, [1], 10**400], "[batch] budget")
    add("batch", "options_per_prompt", [0, 5, -1, "2", 2.0, True, 10**30], "[batch] options_per_prompt")
    add("batch", "seed", ["7", 7.5, True, [7], 2**63, -(2**63) - 1, math.nan], "[batch] seed")
    add("batch", "theme", [5, "", "   ", "x" * 2000, ["stone"]], "[batch] theme")
    add("batch", "start_at", ["tomorrow", "0001-01-01T00:00:00", "1969-12-31T00:00:00", "2026-13-40T00:00:00",
                              dt.datetime(1, 1, 1), Raw("0001-01-01T00:00:00Z"), Raw("02:00:00"), 5, True,
                              "9999-12-31T23:59:59", Raw("9999-12-31T23:59:59Z"),
                              (NOW + dt.timedelta(days=8)).isoformat()], "[batch] start_at")
    add("asset", "prompt", [5, "", "   ", "x" * 2000, ["x"], True], "asset[1].prompt", 0)
    add("asset", "count", [*WHOLE_BAD, 101], "asset[1].count", 0)
    add("asset", "options", [0, 5, "1", True, 1.0], "asset[1].options", 0)
    add("asset", "name", [5, "", "x" * 300, ["x"]], "asset[1].name", 0)
    add("asset", "image", [5, "", "missing.png", "adir", "a\u0000b.png", ["ref.png"], "loop/x.png"],
        "asset[2].image", 1)
    # Images refused from their header, before Blender decodes anything: a decompression bomb, a broken header.
    add("asset", "image", ["bomb.png", "wide.png", "zero.png", "cut.png"], "asset[2].image", 1)
    add("asset", "images", [{"left": "bomb.png", "front": "front.png"}], "asset[3].images.left", 2)
    add("asset", "images", [5, "front.png", ["front.png"]], "asset[3].images", 2)
    add("asset", "images", [{"front": "front.png"}, {"front": "front.png", "top": "left.png"},
                            {"left": "left.png", "back": "front.png"}], "asset[3].images", 2)
    add("asset", "images", [{"front": 5, "left": "left.png"}], "asset[3].images.front", 2)
    add("asset", "images", [{"front": "front.png", "left": "missing.png"}], "asset[3].images.left", 2)
    add("asset", "parts", [5, [], "table", {"a": "b"}], "asset[4].parts", 3)
    add("asset", "parts", [[5], ["", "x"], [["x"]]], "asset[4].parts[1]", 3)
    add("asset", "size", [3], "asset[1]", 0)
    add("asset", "image", ["ref.png"], "asset[4]", 3)  # parts and image together
    add("variations", "base", [5, "", ["x"]], "[variations] base")
    add("variations", "list", [5, [], "with vents", {"a": 1}], "[variations] list")
    add("variations", "list", [[5], [""]], "[variations] list[1]")
    add("variations", "count", [0, "1", 101, True], "[variations] count")
    add("variations", "options", [9, 0, "2"], "[variations] options")
    add("variations", "colour", ["red"], "[variations]")
    add("finish", "preset", [5, "shiny", ["game"], True], "[finish] preset")
    add("finish", "bake", ["no", "yes", "true", "false", 1, 0, "off"], "[finish] bake")
    add("finish", "apply_transforms", ["false", 0, [True]], "[finish] apply_transforms")
    add("finish", "face_budget", [-1, "3000", 1.5, True, 10**12, math.inf], "[finish] face_budget")
    add("finish", "texture_size", [1000, 0.5, "1024", 2**40, -2, True], "[finish] texture_size")
    add("finish", "bake_size", [3, "512"], "[finish] bake_size")
    add("finish", "lod_ratios", [[2], "0.5", [True], [math.nan], [0.5] * 20, 5, [0], [1.0], ["0.5"]],
        "[finish] lod_ratios")
    add("finish", "height_m", [-1, math.inf, math.nan, "2", True, 1e9], "[finish] height_m")
    add("finish", "remesh", [5, "smooth", ["voxel"]], "[finish] remesh")
    add("finish", "uv", ["x", 1], "[finish] uv")
    add("finish", "sharpen", [True], "[finish] sharpen")
    add("export", "folder", [5, "", "../x", "../../x", "/tmp/abs", "a/../../b", "..\\x", "C:\\x", "~/x", "//x",
                             "ok\u0001", ["exports"], "exports/.."], "[export] folder")
    add("export", "per", ["each", 5, True], "[export] per")
    add("export", "preset", ["godot", 5], "[export] preset")
    add("export", "gltf", ["no", "true", "false", 1, "yes"], "[export] gltf")
    add("export", "zip", [True], "[export]")
    add("backends", "tripo", [{"base_url": 5}, {"base_url": ""}, {"base_url": "ftp://x.example.com"},
                              {"base_url": "http://evil.example.com"},
                              {"base_url": "http://localhost@evil.example.com:80"},
                              {"base_url": "https://user:pw@api.example.com"}, {"base_url": "https://h:99999"},
                              {"base_url": "http://[::1"}, {"base_url": "https://"},
                              {"base_url": "https:// example.com"}, {"base_url": "https://example.com?x=1"},
                              {"base_url": "javascript:alert(1)"}, {"base_url": "https://exa\nmple.com"},
                              {"base_url": "http://127.0.0.1.evil.example.com"}], "[backends.tripo] base_url")
    add("backends", "tripo", [{"base_url": "https://a.example.com", "token": "x"}, 5], "[backends.tripo]")
    add("backends", "magic", [{"base_url": "https://a.example.com"}], "[backends.magic]")
    cases.append(Case("backends=5", "[backends]", replaced("backends", 5)))
    cases.append(Case("backends=list", "[backends]", replaced("backends", ["tripo"])))
    cases.append(Case("batch=5", "[batch]", replaced("batch", 5)))
    cases.append(Case("finish=5", "[finish]", replaced("finish", 5)))
    cases.append(Case("export=5", "[export]", replaced("export", "exports")))
    cases.append(Case("variations=5", "[variations]", replaced("variations", 5)))
    cases.append(Case("asset=5", "[[asset]]", replaced("asset", 5)))
    cases.append(Case("asset=strings", "asset[1]", replaced("asset", ["crate", "barrel"])))
    cases.append(Case("no-batch", "[batch]", b'[[asset]]\nprompt = "crate"\n'))
    cases.append(Case("no-name", "[batch] name", mutated("batch", "name", None, drop=True)))
    cases.append(Case("unknown-top", "manifest", to_toml({**valid_document(), "colour": "red"}).encode()))
    cases.append(Case("no-assets", "manifest", b'[batch]\nname = "env_fuzz_01"\n'))
    cases.append(Case("too-many-jobs", "[variations] count", to_toml(
        {"batch": {"name": BATCH}, "variations": {"base": "rock", "list": [f"v{i}" for i in range(200)],
                                                   "count": 100}}).encode()))
    cases.append(Case("too-many-jobs-assets", "asset[", to_toml(
        {"batch": {"name": BATCH}, "asset": [{"prompt": f"rock {i}", "count": 100, "options": 4}
                                             for i in range(30)]}).encode()))
    assert MAX_JOBS < 30 * 100 * 4
    return cases


def file_cases() -> list[Case]:
    """The manifest file itself: encodings, structure, size, and paths that are not a manifest."""
    text = to_toml(valid_document())
    name = "batch.toml"

    def fifo(folder: Path) -> None:
        os.mkfifo(folder / "pipe.toml")

    def loop(folder: Path) -> None:
        (folder / "la.toml").symlink_to(folder / "lb.toml")
        (folder / "lb.toml").symlink_to(folder / "la.toml")

    return [
        Case("huge-int-top", name, b"x = " + b"9" * 5000 + b"\n"),
        Case("utf16-le-bom", name, codecs.BOM_UTF16_LE + text.encode("utf-16-le")),
        Case("utf16-be-bom", name, codecs.BOM_UTF16_BE + text.encode("utf-16-be")),
        Case("utf16-no-bom", name, text.encode("utf-16-le")),
        Case("utf32", name, text.encode("utf-32")),
        Case("latin1", name, text.replace("mossy stone", "pierre moussée").encode("latin-1")),
        Case("cp1252-quotes", name, text.replace('"wooden crate"', '\u201cwooden crate\u201d').encode("cp1252")),
        Case("invalid-utf8", name, text.encode() + b"# \xff\xfe\n"),
        Case("nul-byte", name, text.encode().replace(b"crate", b"cr\x00ate")),
        Case("empty", "[batch]", b""),
        Case("png-bytes", name, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
        Case("deep-array", name, b"[batch]\nname = " + b"[" * 3000 + b"]" * 3000 + b"\n"),
        Case("deep-inline-table", name, b"a = " + b"{b = " * 3000 + b"1" + b"}" * 3000 + b"\n"),
        Case("deep-array-in-key", name, text.encode() + b"\n[extra]\nx = " + b"[" * 3000 + b"]" * 3000),
        Case("huge-int", name, text.replace('"seed" = 7', '"seed" = ' + "9" * 5000).encode()),
        Case("syntax", name, b'[batch\nname = "b"\n'),
        Case("duplicate-key", name, b'[batch]\nname = "a"\nname = "b"\n'),
        Case("unterminated-string", name, b'[batch]\nname = "a\n'),
        Case("too-big", "manifest", b"# " + b"x" * (4 * 1024 * 1024 + 10) + b"\n"),
        Case("directory", "manifest", None, manifest_path="adir"),
        Case("missing", "manifest", None, manifest_path="nowhere.toml"),
        Case("fifo", "manifest", None, manifest_path="pipe.toml", setup=fifo),
        Case("symlink-loop", "manifest", None, manifest_path="la.toml", setup=loop),
    ]


def flag_cases() -> list[Case]:
    def file_at(relative: str) -> Callable[[Path], None]:
        def make(folder: Path) -> None:
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("not a folder")
        return make

    def folder_at(relative: str) -> Callable[[Path], None]:
        def make(folder: Path) -> None:
            (folder / relative).mkdir(parents=True)
        return make

    def escape_link(folder: Path) -> None:
        (folder / "out" / BATCH).mkdir(parents=True)
        (folder / "elsewhere").mkdir()
        (folder / "out" / BATCH / "exports").symlink_to(folder / "elsewhere")

    def broken_link(folder: Path) -> None:
        (folder / "out").mkdir()
        (folder / "out" / BATCH).symlink_to(folder / "gone")

    cases = [Case(f"--jobs {v}", "--jobs", flags=["--jobs", v]) for v in ("0", "-1", "x", "1.5", "", "99999", "\u0663")]
    cases += [Case(f"--shard {v}", "--shard", flags=["--shard", v])
              for v in ("x", "0/1", "3/2", "1/0", "-1/2", "1/2/3", "\u0661/\u0662", "", "1/", "/2", "1/99999")]
    cases += [Case(f"--give-up-after {v}", "--give-up-after", flags=["--give-up-after", v])
              for v in ("0", "-1", "nan", "inf", "x", "", "1e9", "-inf")]
    cases += [
        Case("--out-is-file", "--out", flags=["--out", "afile"], setup=file_at("afile")),
        Case("--out-under-file", "--out", flags=["--out", "afile/sub"], setup=file_at("afile")),
        Case("--out-empty", "--out", flags=["--out", ""]),
        Case("--out-batch-is-file", "--out", setup=file_at(f"out/{BATCH}")),
        Case("--out-report-is-folder", "--out", setup=folder_at(f"out/{BATCH}/report.json")),
        Case("--out-blend-is-folder", "--out", setup=folder_at(f"out/{BATCH}/{BATCH}.blend")),
        Case("--out-broken-link", "--out", setup=broken_link),
        Case("--export-dir-is-file", "--export-dir", flags=["--export-dir", "afile"], setup=file_at("afile")),
        Case("--export-dir-empty", "--export-dir", flags=["--export-dir", ""]),
        Case("export-folder-is-file", "[export] folder", setup=file_at(f"out/{BATCH}/exports")),
        Case("export-folder-link-escape", "[export] folder", setup=escape_link),
        Case("unknown-flag", "--bogus", flags=["--bogus"]),
        Case("abbreviated-flag", "--res", flags=["--res"]),
        Case("--resume=yes", "--resume", flags=["--resume=yes"]),
        Case("--out-without-value", "--out", flags=["--out"]),
        Case("no-manifest", "manifest", flags=["--no-manifest-marker"]),
    ]
    return cases


def environment_cases() -> list[Case]:
    tripo = mutated("batch", "backend", "tripo")
    cases = [Case(f"key-{label}", "KILN_TRIPO_API_KEY", tripo, env={"KILN_TRIPO_API_KEY": value}, online=True)
             for label, value in (("cr", KEY + "\r"), ("lf", KEY + "\n"), ("crlf-inside", "ab\r\ncd" + KEY),
                                  ("only-newline", "\n"), ("control", "ab\x01" + KEY), ("tab", KEY + "\t"),
                                  ("non-ascii", "kéy" + KEY), ("smart-quote", "\u201c" + KEY + "\u201d"))]
    cases += [Case(f"url-{label}", "KILN_TRIPO_BASE_URL", tripo, env={"KILN_TRIPO_API_KEY": KEY,
                                                                      "KILN_TRIPO_BASE_URL": value},
                   online=True)
              for label, value in (("http-remote", "http://evil.example.com"), ("ftp", "ftp://x.example.com"),
                                   ("userinfo", "http://localhost@evil.example.com:80"), ("port", "https://h:0"),
                                   ("newline", "https://api.example.com\n"), ("no-scheme", "api.example.com"))]
    cases += [
        Case("tripo-offline", "[batch] backend", tripo, env={"KILN_TRIPO_API_KEY": KEY}, online=False),
        Case("tripo-no-key", "[batch] backend", tripo, online=True),
        # A shared manifest cannot send the key to its own host (api.example.com) without --allow-host.
        Case("manifest-redirects-the-key", "[backends.tripo] base_url", tripo, env={"KILN_TRIPO_API_KEY": KEY},
             online=True),
        Case("allowed-another-host", "[backends.tripo] base_url", tripo, env={"KILN_TRIPO_API_KEY": KEY},
             online=True, flags=["--allow-host", "api.example.com:8443"]),
    ]
    cases += [Case(f"--allow-host {value!r}", "--allow-host", tripo, env={"KILN_TRIPO_API_KEY": KEY}, online=True,
                   flags=[f"--allow-host={value}"])
              for value in ("", "user@api.example.com", "https://api.example.com", "api.example.com/v3",
                            "api.example.com:0", "api.exa mple.com", "ap\\i.example.com", "l\u043eocalhost")]
    return cases


CASES = key_cases() + file_cases() + flag_cases() + environment_cases()


def test_the_fuzz_set_is_big_enough() -> None:
    assert len(CASES) >= 150
    assert len({case.id for case in CASES}) == len(CASES)


# ------------------------------------------------------------------------------------------- running
class Reached(BaseException):
    """The runner was called: validation let the input through. BaseException, so no net catches it."""


class UnreachableRunner:
    def prepare(self, *args: Any, **kwargs: Any) -> Plan:
        raise Reached("prepare")

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise Reached("run")


def workspace(folder: Path) -> None:
    """The files a valid manifest points at (the runner would check their pixels; it is never reached),
    and images refused from their header alone."""
    for name in ("ref.png", "front.png", "left.png"):
        (folder / name).write_bytes(encode_png(np.zeros((8, 8, 4), np.uint8)))
    ihdr = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    for name, width, height in (("bomb.png", 20000, 20000), ("wide.png", 40000, 16), ("zero.png", 0, 16)):
        (folder / name).write_bytes(ihdr + struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0) + b"\x00" * 16)
    (folder / "cut.png").write_bytes(ihdr + b"\x00\x00")
    (folder / "adir").mkdir()
    (folder / "loop").symlink_to(folder / "loop")


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    entries: dict[str, tuple[str, int, int]] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            info = path.lstat()
            kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
            entries[str(path.relative_to(folder))] = (kind, info.st_size if kind == "file" else 0, info.st_mtime_ns)
    return entries


def run_cli(folder: Path, manifest: str, flags: list[str], env: dict[str, str], online: bool,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    previous = Path.cwd()
    os.chdir(folder)  # relative --out and paths as a TD types them
    try:
        argv = [manifest, *flags] if "--no-manifest-marker" not in flags else []
        code = cli.main(argv, runner=UnreachableRunner(), online_access=online, environ=env,
                        now=NOW.timestamp())
    finally:
        os.chdir(previous)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_exit_2_with_one_line_naming_the_key(case: Case, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    workspace(tmp_path)
    if case.manifest is not None:
        (tmp_path / case.manifest_path).write_bytes(case.manifest)
    elif case.manifest_path == "batch.toml":
        (tmp_path / "batch.toml").write_text(to_toml(valid_document()))
    if case.setup is not None:
        case.setup(tmp_path)
    before = snapshot(tmp_path)

    code, out, err = run_cli(tmp_path, case.manifest_path, case.flags, case.env, case.online, capsys)

    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"kiln batch: error: {case.key}"), lines[0]
    assert "unexpected" not in lines[0], lines[0]
    assert out == ""
    assert "Traceback" not in out + err
    assert KEY not in out + err
    assert snapshot(tmp_path) == before, "nothing is written by a refused run"


# ------------------------------------------------------------------------------------ what is allowed
def test_the_valid_manifest_reaches_the_runner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fuzz set's base passes every check: each case fails because of its own mutation."""
    workspace(tmp_path)
    (tmp_path / "batch.toml").write_text(to_toml(valid_document()))
    with pytest.raises(Reached):
        run_cli(tmp_path, "batch.toml", [], {}, False, capsys)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("section", "key", "value", "flags"), [
    ("finish", "bake", False, []),
    ("batch", "seed", 2**63 - 1, []),
    ("batch", "seed", -(2**63), []),
    ("batch", "start_at", dt.datetime(9999, 12, 31, 23, 59, 59), ["--wait"]),
    ("batch", "start_at", dt.date(2026, 11, 28), []),
    ("batch", "start_at", "2020-01-01T00:00:00", []),  # in the past: starts at once
    ("batch", "budget", 0, []),
    ("export", "folder", "deliveries/fbx", []),
    ("export", "folder", ".", []),
    ("export", "folder", "/elsewhere/abs", ["--export-dir", "chosen"]),  # only the command line writes elsewhere
])
def test_strict_does_not_refuse_what_is_right(tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str,
                                              key: str, value: Any, flags: list[str]) -> None:
    workspace(tmp_path)
    document = valid_document()
    if section == "export" and key == "folder" and flags:
        document["export"].pop("folder")
    else:
        document[section][key] = value
    (tmp_path / "batch.toml").write_text(to_toml(document))
    with pytest.raises(Reached):
        run_cli(tmp_path, "batch.toml", flags, {}, False, capsys)


def test_a_utf8_signature_and_windows_line_endings_are_fine(tmp_path: Path) -> None:
    workspace(tmp_path)
    path = tmp_path / "batch.toml"
    path.write_bytes(codecs.BOM_UTF8 + to_toml(valid_document()).replace("\n", "\r\n").encode())
    assert load_manifest(path, {"local", "tripo"}).name == BATCH


def test_plain_http_is_for_this_machine_only(tmp_path: Path) -> None:
    workspace(tmp_path)
    for url in ("http://127.0.0.1:8000", "http://localhost:8000/v2", "http://[::1]:9000", "https://a.example.com/x"):
        document = valid_document()
        document["backends"]["tripo"]["base_url"] = url
        (tmp_path / "batch.toml").write_text(to_toml(document))
        assert load_manifest(tmp_path / "batch.toml", {"local", "tripo"}).backend_settings["tripo"]["base_url"] == url


def test_any_seed_derives_job_seeds_inside_blenders_int_properties() -> None:
    for seed in (0, 1, 21475, 2**31, 2**63 - 1, -(2**63), -1):
        derived = derived_seed(seed, '["env_fuzz_01_001", "text", "crate"]')
        assert 0 <= derived < SEED_RANGE <= 2**31 - 1


def test_exports_resolve_inside_the_batch_folder_unless_the_command_line_says(tmp_path: Path) -> None:
    workspace(tmp_path)
    document = valid_document()
    document["export"]["folder"] = "deliveries/fbx"
    (tmp_path / "batch.toml").write_text(to_toml(document))
    manifest = load_manifest(tmp_path / "batch.toml", {"local", "tripo"})
    options = BatchOptions(manifest=tmp_path / "batch.toml", out=tmp_path / "out")
    assert export_folder(manifest, options) == (tmp_path / "out" / BATCH / "deliveries/fbx").resolve()
    assert check_outputs(manifest, options) == export_folder(manifest, options)
    chosen = BatchOptions(manifest=tmp_path / "batch.toml", out=tmp_path / "out", export_dir=tmp_path / "farm")
    assert export_folder(manifest, chosen) == (tmp_path / "farm").resolve()
    assert not (tmp_path / "out").exists(), "checks create nothing"


def test_give_up_after_reaches_the_options() -> None:
    assert cli.parse_args(["m.toml"]).give_up_after_s == 120.0
    assert cli.parse_args(["m.toml", "--give-up-after", "45"]).give_up_after_s == 45.0
    with pytest.raises(ManifestError, match="--give-up-after"):
        cli.parse_args(["m.toml", "--give-up-after", "0"])


# ---------------------------------------------------------------------------- exit codes and streams
def report_with(statuses: list[str], *, interrupted: bool = False, export_error: str = "") -> dict[str, Any]:
    entries = [{"asset": f"{BATCH}_{i + 1:03d}", "status": s, "credits": 0.0, "faces": 10}
               for i, s in enumerate(statuses)]
    return report.assemble(batch=BATCH, manifest="m.toml", mode="production", backend="local",
                           interrupted=interrupted, entries=entries, wall_s=1.0,
                           output={"export_error": export_error or None})


@pytest.mark.parametrize(("statuses", "interrupted", "export_error", "code"), [
    (["finished", "finished"], False, "", 0),
    (["finished", "failed"], False, "", 1),
    (["finished", "cancelled"], False, "", 1),
    (["finished", "running"], False, "", 1),  # an unfinished job is not a success
    (["finished", "finished"], False, "cannot create the export folder", 1),
    (["finished", "queued"], True, "", 130),
])
def test_exit_0_only_when_every_asset_finished(statuses: list[str], interrupted: bool, export_error: str,
                                               code: int) -> None:
    document = report_with(statuses, interrupted=interrupted, export_error=export_error)
    assert report.exit_code(document) == code
    assert document["totals"]["unfinished"] == sum(s not in ("finished", "failed", "cancelled") for s in statuses)


class NoisyRunner:
    """Stands in for Blender: prints to Python's stdout and writes to file descriptor 1 directly, as
    Blender's C code does when it saves a file or exports an FBX."""

    def __init__(self, statuses: list[str], export_error: str = "") -> None:
        self.statuses = statuses
        self.export_error = export_error

    def prepare(self, manifest: Any, assets: Any, options: BatchOptions, backend: Any = None,
                settings: Any = None) -> Plan:
        print("Read prefs: /nowhere/userpref.blend")
        return Plan(specs=[], estimated_credits=0.0, backend=None, out=options.out, work=options.out)  # type: ignore[arg-type]

    def run(self, manifest: Any, plan: Plan, options: BatchOptions, progress: Any) -> dict[str, Any]:
        print("Info: Saved \"env_fuzz_01.blend\"")
        os.write(1, b"FBX export starting... '/x/env_fuzz_01_001.fbx'\n")
        return report_with(self.statuses, export_error=self.export_error)


def test_under_json_stdout_carries_only_the_report(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    workspace(tmp_path)
    (tmp_path / "batch.toml").write_text(to_toml(valid_document()))
    code = cli.main([str(tmp_path / "batch.toml"), "--out", str(tmp_path / "out"), "--json"],
                    runner=NoisyRunner(["finished", "finished"], export_error="disk full"), now=NOW.timestamp())
    out, err = capfd.readouterr()
    assert code == 1, "a failed export is a failed run"
    document = json.loads(out)
    assert document["output"]["export_error"] == "disk full"
    assert "Saved" in err and "FBX export starting" in err and "Read prefs" in err
    assert "kiln batch: export failed: disk full" in err


def test_without_json_a_failed_export_still_exits_1_and_says_so_on_stderr(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    workspace(tmp_path)
    (tmp_path / "batch.toml").write_text(to_toml(valid_document()))
    code = cli.main([str(tmp_path / "batch.toml"), "--out", str(tmp_path / "out")],
                    runner=NoisyRunner(["finished"], export_error="disk full"), now=NOW.timestamp())
    out, err = capfd.readouterr()
    assert code == 1
    assert "kiln batch: export failed: disk full" in err and "export failed" not in out
    assert "1 jobs finished, 0 failed" in out


def test_an_ascii_console_does_not_turn_a_message_into_a_traceback(tmp_path: Path) -> None:
    import io
    import sys

    workspace(tmp_path)
    document = valid_document()
    document["batch"]["budget"] = "50 ≥ crédits"
    (tmp_path / "batch.toml").write_text(to_toml(document))
    saved = sys.stderr
    raw = io.BytesIO()
    console = sys.stderr = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    try:
        code = cli.main([str(tmp_path / "batch.toml")], runner=UnreachableRunner(), now=NOW.timestamp())
        console.flush()
    finally:
        sys.stderr = saved
    assert code == 2
    assert raw.getvalue().decode("ascii").startswith("kiln batch: error: [batch] budget: must be")
