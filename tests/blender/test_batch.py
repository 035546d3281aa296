"""Headless batch runs end to end: the demo, bad manifests, resume after SIGKILL, shards, exit codes,
and the `blender -c kiln` entry."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ADDON_MODULE

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts/kiln_batch.py"


def run_script(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})})


def write_manifest(folder: Path, name: str, prompts: list[str], extra: str = "") -> Path:
    assets = "\n".join(f'[[asset]]\nprompt = "{p}"\n' for p in prompts)
    path = folder / f"{name}.toml"
    path.write_text(f'[batch]\nname = "{name}"\nmode = "production"\nbackend = "local"\nseed = 3\n\n{assets}\n'
                    f'[finish]\npreset = "game"\n{extra}')
    return path


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("demo")
    return run_script(str(REPO / "examples/demo.toml"), "--out", str(out)), out / "env_demo_01"


def test_demo_runs_end_to_end(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, folder = demo_run
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((folder / "report.json").read_text())
    assert report["totals"] == {**report["totals"], "jobs": 15, "assets": 12, "finished": 15, "failed": 0}
    assert (folder / "env_demo_01.blend").is_file() and (folder / "blender_assets.cats.txt").is_file()
    fbx = sorted(p.name for p in (folder / "exports").glob("*.fbx"))
    assert len(fbx) == 12 and fbx[0] == "env_demo_01_001.fbx"
    assert "contact sheet:" in result.stdout and str(folder / "report.json") in result.stdout


def test_demo_outputs_agree_with_each_other(kiln: ModuleType,
                                            demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    import bpy

    png = importlib.import_module(f"{ADDON_MODULE}.addon.imaging.png")
    _, folder = demo_run
    report = json.loads((folder / "report.json").read_text())
    grid = report["output"]["contact_sheet_grid"]
    sheet = png.decode_own_png((folder / "contact_sheet.png").read_bytes())
    assert (grid["columns"], grid["rows"]) == (4, 3)
    assert sheet.shape == (grid["rows"] * grid["tile"], grid["columns"] * grid["tile"], 3)
    bpy.ops.wm.open_mainfile(filepath=str(folder / "env_demo_01.blend"))
    try:
        for entry in report["assets"]:
            assert entry["asset"] in bpy.data.objects, entry["asset"]
            assert entry["status"] == "finished" and entry["faces"] > 0
            assert entry["lods"] and all(name in bpy.data.objects for name in entry["lods"])
        stall = bpy.data.objects["env_demo_01_008"]
        assert sorted(c.name for c in stall.children) == [
            "env_demo_01_008_barrel", "env_demo_01_008_crate", "env_demo_01_008_lantern", "env_demo_01_008_table"]
        bpy.ops.wm.read_homefile(use_empty=True)
        bpy.ops.import_scene.fbx(filepath=str(folder / "exports/env_demo_01_003.fbx"))
        assert {o.name for o in bpy.data.objects} == {"env_demo_01_003", "env_demo_01_003_LOD0",
                                                      "env_demo_01_003_LOD1", "env_demo_01_003_LOD2"}
    finally:
        bpy.ops.wm.read_homefile(use_empty=True)


def test_a_bad_manifest_exits_2_and_submits_nothing(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.toml"
    manifest.write_text('[batch]\nname = "env_bad_01"\n[[asset]]\nimage = "nowhere.png"\n')
    result = run_script(str(manifest), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "asset[1].image: file not found" in result.stderr
    assert not (tmp_path / "out/env_bad_01/report.json").exists()


def test_an_image_without_subject_is_refused_before_anything_runs(tmp_path: Path) -> None:
    png = importlib.import_module(f"{ADDON_MODULE}.addon.imaging.png")
    import numpy as np

    (tmp_path / "blank.png").write_bytes(png.encode_png(np.full((64, 64, 3), 128, np.uint8)))
    manifest = tmp_path / "m.toml"
    manifest.write_text('[batch]\nname = "env_blank_01"\n[[asset]]\nimage = "blank.png"\n')
    result = run_script(str(manifest), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "asset[1]: 'blank.png': no subject stands out" in result.stderr


def test_dry_run_lists_jobs_and_cost(tmp_path: Path) -> None:
    result = run_script(str(REPO / "examples/demo.toml"), "--out", str(tmp_path), "--dry-run")
    assert result.returncode == 0
    assert "batch env_demo_01: 10 asset(s), 15 job(s) on local (production), estimated 0 credits" in result.stdout
    assert "env_demo_01_008  parts" in result.stdout
    assert not (tmp_path / "env_demo_01/report.json").exists()


def test_resume_after_sigkill_finishes_without_redoing(tmp_path: Path) -> None:
    prompts = [f"{kind} {n}" for n in range(6) for kind in ("crate", "barrel", "rock", "pillar")]
    manifest = write_manifest(tmp_path, "env_resume_01", prompts)
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(manifest), "--out", str(tmp_path), "--jobs", "1"],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    assert process.stderr is not None
    finished_before = 0
    for line in process.stderr:
        finished_before += "→ finished" in line
        if finished_before >= 8:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    journal = tmp_path / "env_resume_01/.kiln/journal.jsonl"
    assert journal.exists()
    first = {}
    for line in journal.read_text().splitlines():
        try:
            snapshot = json.loads(line)["job"]
        except (ValueError, KeyError):
            continue  # the kill may tear the last line
        first[snapshot["job_id"]] = snapshot
    finished_ids = {j for j, s in first.items() if s["state"] == "finished"}
    assert 0 < len(finished_ids) < len(prompts), "killed mid-run"

    resumed = run_script(str(manifest), "--out", str(tmp_path), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads((tmp_path / "env_resume_01/report.json").read_text())
    assert report["totals"]["finished"] == len(prompts) and report["totals"]["jobs"] == len(prompts)
    names = sorted(entry["asset"] for entry in report["assets"])
    assert names == [f"env_resume_01_{i:03d}" for i in range(1, len(prompts) + 1)], "no duplicates, none lost"
    by_task = {entry["task_id"] for entry in report["assets"]}
    kept = {first[j]["task_id"] for j in finished_ids}
    assert kept <= by_task, "finished jobs were not generated again"


def test_shards_together_make_the_whole_batch(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "env_shard_01", ["crate", "barrel", "rock", "pillar", "stump"])
    names = []
    for shard in ("1/2", "2/2"):
        out = tmp_path / shard.replace("/", "of")
        result = run_script(str(manifest), "--out", str(out), "--shard", shard, "--quiet")
        assert result.returncode == 0, result.stderr[-2000:]
        report = json.loads((out / "env_shard_01/report.json").read_text())
        names.append(sorted(e["asset"] for e in report["assets"]))
    assert not set(names[0]) & set(names[1])
    assert sorted(names[0] + names[1]) == [f"env_shard_01_{i:03d}" for i in range(1, 6)]


def test_one_failed_asset_exits_1_and_the_rest_are_written(kiln: ModuleType, tmp_path: Path) -> None:
    cli = importlib.import_module(f"{ADDON_MODULE}.addon.batch.cli")
    runner = importlib.import_module(f"{ADDON_MODULE}.addon.blender.batch_run")
    local = importlib.import_module(f"{ADDON_MODULE}.addon.backends.local")
    base = importlib.import_module(f"{ADDON_MODULE}.addon.backends.base")

    class RefusingLocal(local.LocalBackend):  # type: ignore[misc,name-defined]
        """The local engine, except that the provider refuses one prompt, as a content policy would."""

        def submit(self, spec: object, client_ref: str) -> str:
            if "dragon" in spec.prompt:  # type: ignore[attr-defined]
                raise base.BackendError("2008", "prompt refused by content policy")
            return str(super().submit(spec, client_ref))

    manifest = write_manifest(tmp_path, "env_fail_01", ["crate", "dragon", "barrel"],
                              '[export]\nfolder = "exports"\n')
    code = cli.main([str(manifest), "--out", str(tmp_path), "--quiet"], runner=runner,
                    backend=RefusingLocal(scratch_dir=tmp_path / "scratch"))
    assert code == 1
    report = json.loads((tmp_path / "env_fail_01/report.json").read_text())
    statuses = {e["prompt"]: e["status"] for e in report["assets"]}
    assert statuses == {"crate": "finished", "dragon": "failed", "barrel": "finished"}
    assert report["assets"][1]["error"] == {"code": "2008", "message": "prompt refused by content policy"}
    assert len(list((tmp_path / "env_fail_01/exports").glob("*.fbx"))) == 2


def test_blender_cli_command_is_registered_and_runs_the_batch(kiln: ModuleType, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert kiln._cli_handle is not None
    assert kiln._cli(["batch", str(REPO / "examples/demo.toml"), "--out", str(tmp_path), "--dry-run"]) == 0
    assert "batch env_demo_01: 10 asset(s), 15 job(s)" in capsys.readouterr().out
    assert kiln._cli(["frobnicate"]) == 2


@pytest.mark.parametrize("renderer", ["workbench", "software"])
def test_contact_sheet_renders_with_or_without_a_gpu(runtime: ModuleType, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, renderer: str) -> None:
    """Without libEGL, Blender 4.3 aborts on a Workbench render in background mode; Kiln then uses its
    own numpy renderer. Both must give a grid with every asset drawn."""
    import bpy
    import numpy as np

    sheet_module = importlib.import_module(f"{ADDON_MODULE}.addon.blender.contact_sheet")
    png = importlib.import_module(f"{ADDON_MODULE}.addon.imaging.png")
    monkeypatch.setenv("KILN_CONTACT_SHEET", renderer)
    for prompt in ("crate", "barrel", "pine"):
        bpy.ops.kiln.generate(prompt=prompt)
    assert runtime.run_until_done(timeout=30)
    objects = [o for o in bpy.data.objects if o.get("kiln_prompt")]
    layout = sheet_module.render_contact_sheet([(o.name, [o]) for o in objects], tmp_path / "sheet.png", tile=128)
    assert layout["renderer"] == renderer and (layout["columns"], layout["rows"]) == (2, 2)
    pixels = png.decode_own_png((tmp_path / "sheet.png").read_bytes())
    assert pixels.shape == (256, 256, 3)
    for index in range(3):
        row, column = divmod(index, 2)
        tile = pixels[row * 128:(row + 1) * 128, column * 128:(column + 1) * 128]
        assert tile.std() > 10, f"tile {index} is blank"
    empty = pixels[128:, 128:]
    assert np.ptp(empty) == 0, "the unused cell stays empty"


def test_ctrl_c_stops_cleanly_says_what_was_kept_and_resume_finishes(tmp_path: Path) -> None:
    prompts = [f"{kind} {n}" for n in range(6) for kind in ("crate", "barrel", "rock", "pillar")]
    manifest = write_manifest(tmp_path, "env_interrupt_01", prompts)
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(manifest), "--out", str(tmp_path), "--jobs", "1"],
                               stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None and process.stdout is not None
    for line in process.stderr:
        if "→ finished" in line:
            break
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 130, stdout[-2000:]
    assert "interrupted; kept" in stdout and "--resume" in stdout
    report = json.loads((tmp_path / "env_interrupt_01/report.json").read_text())
    assert report["interrupted"] and 0 < report["totals"]["finished"] < len(prompts)
    resumed = run_script(str(manifest), "--out", str(tmp_path), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = json.loads((tmp_path / "env_interrupt_01/report.json").read_text())
    assert final["totals"]["finished"] == len(prompts) and not final["interrupted"]


# ------------------------------------------------------------------------- found once Blender runs
def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("kiln batch: error:")]


def test_an_export_folder_that_cannot_be_made_stops_before_any_job(tmp_path: Path) -> None:
    """Blender's own start-up writes to stderr too; Kiln's part is one error line, exit 2, and no job,
    journal entry, .blend or report."""
    manifest = write_manifest(tmp_path, "env_noexport_01", ["crate", "barrel"], '[export]\nfolder = "fbx/lods"\n')
    (tmp_path / "out/env_noexport_01").mkdir(parents=True)
    (tmp_path / "out/env_noexport_01/fbx").write_text("a file where the export folder should be")
    result = run_script(str(manifest), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert error_lines(result.stderr) == [
        f"kiln batch: error: [export] folder: cannot create {tmp_path}/out/env_noexport_01/fbx/lods: "
        f"{tmp_path}/out/env_noexport_01/fbx is a file"]
    assert "Traceback" not in result.stdout + result.stderr
    assert sorted(p.name for p in (tmp_path / "out/env_noexport_01").iterdir()) == ["fbx"], "nothing was started"


def test_a_failed_export_exits_1_and_json_stdout_is_only_the_report(kiln: ModuleType, tmp_path: Path,
                                                                     capfd: pytest.CaptureFixture[str]) -> None:
    """The export folder is replaced by a file while the jobs run (a full disk or a cleanup script would
    do the same): every asset is finished and saved, the export fails, the run exits 1, and under --json
    stdout still parses, with Blender's own prints (the .blend save, the exporters) on stderr."""
    cli = importlib.import_module(f"{ADDON_MODULE}.addon.batch.cli")
    batch_run = importlib.import_module(f"{ADDON_MODULE}.addon.blender.batch_run")

    class FolderReplacedDuringTheRun:
        prepare = staticmethod(batch_run.prepare)

        def run(self, manifest: object, plan: object, options: object, progress: object) -> object:
            folder = plan.export_dir  # type: ignore[attr-defined]
            folder.rmdir()
            folder.write_text("not a folder any more")
            return batch_run.run(manifest, plan, options, progress)

    manifest = write_manifest(tmp_path, "env_badexport_01", ["crate", "barrel"], '[export]\nfolder = "exports"\n')
    capfd.readouterr()
    code = cli.main([str(manifest), "--out", str(tmp_path / "out"), "--json"], runner=FolderReplacedDuringTheRun())
    out, err = capfd.readouterr()
    assert code == 1
    report = json.loads(out)
    assert report["totals"]["finished"] == report["totals"]["jobs"] == 2
    assert "cannot create the export folder" in report["output"]["export_error"]
    assert "kiln batch: export failed: cannot create the export folder" in err
    saved = json.loads((tmp_path / "out/env_badexport_01/report.json").read_text())
    assert saved["output"]["export_error"] == report["output"]["export_error"]
    assert (tmp_path / "out/env_badexport_01/env_badexport_01.blend").is_file()


def test_json_run_prints_only_json_and_leaves_no_temporary_folders(tmp_path: Path) -> None:
    """The script under plain Python: Blender's start-up and save messages go to stderr, the report is
    the whole of stdout, and its private folders (kiln-user-*, kiln-repo-*) are gone at exit."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    manifest = write_manifest(tmp_path, "env_json_01", ["crate", "rock"], '[export]\nfolder = "exports"\n')
    result = run_script(str(manifest), "--out", str(tmp_path / "out"), "--json", env={"TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["totals"]["finished"] == 2 and report["output"]["export_error"] is None
    assert len(list((tmp_path / "out/env_json_01/exports").glob("*.fbx"))) == 2
    assert not [p.name for p in temp.iterdir() if p.name.startswith(("kiln-user-", "kiln-repo-"))]


def test_bad_flags_and_environment_from_the_blender_command(kiln: ModuleType, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`blender -c kiln batch` goes through the same checks: one line, exit 2, the key never shown."""
    manifest = write_manifest(tmp_path, "env_cli_01", ["crate"])
    assert kiln._cli(["batch", str(manifest), "--jobs", "0"]) == 2
    assert capsys.readouterr().err == "kiln batch: error: --jobs: must be a whole number of jobs from 1 to 1000, " \
                                      "not '0'\n"
    tripo = tmp_path / "tripo.toml"
    tripo.write_text(manifest.read_text().replace('backend = "local"', 'backend = "tripo"'))
    os.environ["KILN_TRIPO_API_KEY"] = "tsk_secret\r"
    try:
        assert kiln._cli(["batch", str(tripo)]) == 2
    finally:
        del os.environ["KILN_TRIPO_API_KEY"]
    err = capsys.readouterr().err
    assert err.startswith("kiln batch: error: KILN_TRIPO_API_KEY: the key in KILN_TRIPO_API_KEY contains a line "
                          "break") and "tsk_secret" not in err


@pytest.mark.parametrize("per", ["asset", pytest.param("batch", marks=pytest.mark.bpy50_only)])
def test_a_resume_writes_each_export_once_in_place(tmp_path: Path, per: str) -> None:
    """A run killed during its exports is resumed and exports again: each FBX (one per asset, or the
    batch's one) is replaced where it was, never left beside a `name_2.fbx`, and export_manifest.json
    lists each file once."""
    manifest = write_manifest(tmp_path, "env_export_01", ["crate", "barrel"],
                              f'\n[export]\nfolder = "exports"\nper = "{per}"\npreset = "unity"\n')
    first = run_script(str(manifest), "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr[-1500:]
    exports = tmp_path / "env_export_01" / "exports"
    files = sorted(p.name for p in exports.iterdir())
    fbx = ["env_export_01_001.fbx", "env_export_01_002.fbx"] if per == "asset" else ["env_export_01.fbx"]
    assert files == [*fbx, "export_manifest.json"], files
    again = run_script(str(manifest), "--out", str(tmp_path), "--resume")
    assert again.returncode == 0, again.stderr[-1500:]
    assert sorted(p.name for p in exports.iterdir()) == files, "nothing written beside the first files"
    listed = [Path(f["path"]).name for f in json.loads((exports / "export_manifest.json").read_text())["files"]]
    assert sorted(listed) == fbx
