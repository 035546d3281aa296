"""Manifest validation: every mistake is named before anything is spent; plans and shards are exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from addon.batch.cli import parse_args
from addon.batch.manifest import ManifestError, job_count, load_manifest
from addon.batch.plan import check_budget

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp: Path, text: str) -> Path:
    path = tmp / "batch.toml"
    path.write_text(text)
    return path


def test_the_demo_manifest_plans_a_dozen_assets() -> None:
    manifest = load_manifest(EXAMPLES / "demo.toml", {"local"})
    kinds = [a.kind for a in manifest.assets]
    assert kinds.count("text") == 7 and kinds.count("image") == 2 and kinds.count("parts") == 1
    assert len(manifest.assets) == 10 and job_count(manifest) == 15
    assert manifest.asset_names()[0] == "env_demo_01_001"
    assert manifest.finish is not None and manifest.finish.lod_ratios == (0.5, 0.25)
    assert manifest.finish.face_budget == 3000
    vegetation = load_manifest(EXAMPLES / "vegetation.toml", {"local"})
    assert len(vegetation.assets) == 30 and vegetation.assets[6].prompt == "broadleaf tree"


def test_shards_split_every_asset_exactly_once() -> None:
    manifest = load_manifest(EXAMPLES / "vegetation.toml", {"local"})
    for count in (1, 2, 3, 7):
        shards = [manifest.shard(i, count) for i in range(1, count + 1)]
        indices = sorted(a.index for shard in shards for a in shard)
        assert indices == list(range(len(manifest.assets)))


@pytest.mark.parametrize(("text", "message"), [
    ('[batch]\nname = "b"\ncolour = "red"\n[[asset]]\nprompt = "rock"', r"\[batch\]: unknown key\(s\) colour"),
    ('[batch]\nname = "b"\n[[asset]]\nprompt = "   "', r"asset\[1\].prompt: Type a prompt first"),
    ('[batch]\nname = "b"\n[[asset]]\nimage = "missing.png"', r"asset\[1\].image: file not found"),
    ('[batch]\nname = "b"\n[[asset]]\nprompt = "rock"\nsize = 3', r"asset\[1\]: unknown key\(s\) size"),
    ('[batch]\nname = "b"\n[[asset]]\nprompt = "x"\n[finish]\npreset = "shiny"', r"\[finish\] preset: unknown"),
    ('[batch]\nname = "b"\n[[asset]]\nprompt = "x"\n[finish]\ntexture_size = 1000', r"not a power of two"),
    ('[batch]\nname = "b"\n[[asset]]\nprompt = "x"\n[finish]\nlod_ratios = [2]', r"\[finish\] lod_ratios"),
    ('[batch]\nname = "b"\nbackend = "magic"\n[[asset]]\nprompt = "x"', r"\[batch\] backend: unknown backend"),
    ('[batch]\nname = "Env Rocks"\n[[asset]]\nprompt = "x"', r'\[batch\] name: "Env Rocks" must be lower-case'),
    ('[batch]\nname = "b"\nmode = "fast"\n[[asset]]\nprompt = "x"', r"\[batch\] mode"),
    ('[batch]\nname = "b"\noptions_per_prompt = 9\n[[asset]]\nprompt = "x"', r"options_per_prompt"),
    ('[batch]\nname = "b"', r"no assets"),
    ('[batch]\nname = "b"\n[[asset]]\nimages = { front = "a.png" }', r"needs a front view and at least one more"),
    ('[batch]\nname = "b"\n[variations]\nbase = "panel"\nlist = []', r"\[variations\] list"),
    ('[batch]\nname = "b"\n[[asset]]\nprompt = "x"\n[export]\npreset = "godot"', r"\[export\] preset"),
    ('[batch\nname = "b"', r"not valid TOML.*line 1"),
    ('[batch]\nname = "b"\n[[asset]]\nprompt = "x"\n[backends.local]\nconcurrency = 0', r"concurrency: must be"),
    ('[batch]\nname = "b"\n[[asset]]\nprompt = "x"\n[backends.local]\nconcurrency = "3"', r"concurrency: .*without"),
    ('[batch]\nname = "b"\n[[asset]]\nprompt = "x"\n[backends.local]\nthreads = 3', r"unknown key\(s\) threads"),
])
def test_each_manifest_mistake_names_its_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        load_manifest(write(tmp_path, text), {"local"})


def test_a_plan_concurrency_per_backend_is_read(tmp_path: Path) -> None:
    text = '[batch]\nname = "b"\n[[asset]]\nprompt = "x"\n[backends.local]\nconcurrency = 3'
    assert load_manifest(write(tmp_path, text), {"local"}).plan_concurrency == {"local": 3}


def test_a_credit_reserve_is_read_and_defaults_to_none(tmp_path: Path) -> None:
    text = '[batch]\nname = "b"\nreserve = 50\n[[asset]]\nprompt = "x"'
    assert load_manifest(write(tmp_path, text), {"local"}).reserve == 50.0
    assert load_manifest(write(tmp_path, text.replace("reserve = 50\n", "")), {"local"}).reserve == 0.0
    with pytest.raises(ManifestError, match=r"\[batch\] reserve: must be a number of credits ≥ 0"):
        load_manifest(write(tmp_path, text.replace("50", "-1")), {"local"})


def test_budget_below_the_estimate_is_refused() -> None:
    manifest = load_manifest(EXAMPLES / "demo.toml", {"local"})
    manifest.budget = 20
    with pytest.raises(ManifestError, match="budget: 20 credits is below the estimated cost of 30"):
        check_budget(manifest, 30.0)
    check_budget(manifest, 20.0)


def test_arguments() -> None:
    options = parse_args(["m.toml", "--shard", "2/3", "--jobs", "4", "--resume", "--json"])
    assert options.shard == (2, 3) and options.jobs == 4 and options.resume and options.json
    with pytest.raises(ManifestError, match="--shard: must look like I/N"):
        parse_args(["m.toml", "--shard", "4/3"])


def test_finish_workers_flag() -> None:
    assert parse_args(["m.toml"]).finish_workers is None  # the default: one per core
    assert parse_args(["m.toml", "--finish-workers", "0"]).finish_workers == 0  # in the batch's own Blender
    assert parse_args(["m.toml", "--finish-workers", "3"]).finish_workers == 3
    with pytest.raises(ManifestError, match="--finish-workers: must be a whole number of processes from 0"):
        parse_args(["m.toml", "--finish-workers", "-1"])
