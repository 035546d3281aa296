"""Two Blenders with Kiln enabled share one queue (the add-on's journal in the user folder). Both running
it would send every queued job twice, and pay twice. The first one runs the queue; the second one shows
it read-only, says so, sends nothing, and takes over when the first one is gone (here: killed).

The first Blender is a real second process (the `bpy` module with Kiln loaded as an extension) talking
to the same Tripo sandbox over HTTP."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import ADDON_MODULE

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_two_blenders_key_7"
pytestmark = [pytest.mark.bpy50_only, pytest.mark.timeout(300)]

FIRST_BLENDER = textwrap.dedent("""
    import sys, time
    from importlib import import_module
    from pathlib import Path
    repo, journal, url, key = sys.argv[1:5]
    sys.path[:0] = [repo, repo + "/scripts"]
    from kiln_loader import isolate_user_resources, load_kiln
    isolate_user_resources()
    import bpy
    kiln = load_kiln()
    runtime = import_module(kiln.__name__ + ".addon.blender.runtime")
    tripo = import_module(kiln.__name__ + ".addon.backends.tripo")
    runtime.start(kiln.__name__, backends=[tripo.TripoBackend(key, url)], journal_dir=Path(journal))
    print("read-only" if runtime.read_only() else "writer", flush=True)
    while True:
        runtime.pump()
        time.sleep(0.02)
""")


def engine(name: str) -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.addon.{name}")


@pytest.fixture
def sandbox() -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 6.0})) as server:
        yield server


def wait_for(what: str, condition: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def queued_drafts(journal_dir: Path, prompts: list[str]) -> None:
    """What an artist left queued in the first Blender: draft jobs not sent yet."""
    jobs, journal_module = engine("jobs"), engine("journal")
    journal = journal_module.Journal(journal_dir)
    for prompt in prompts:
        spec = jobs.JobSpec(kind=jobs.JobKind.TEXT, backend="tripo", mode=jobs.Mode.DRAFT, prompt=prompt,
                            name=f"draft_{prompt.split()[-1]}_001")
        journal.record(jobs.Job(spec=spec), durable=True)


def test_a_second_blender_shows_the_queue_read_only_and_takes_over_without_paying_twice(
        runtime: ModuleType, sandbox: TripoSandbox, tmp_path: Path) -> None:
    import bpy

    journal_dir = tmp_path / "journal"
    prompts = ["iron crate", "oak barrel", "stone pillar"]
    queued_drafts(journal_dir, prompts)
    first = subprocess.Popen(
        [sys.executable, "-c", FIRST_BLENDER, str(REPO), str(journal_dir), sandbox.url, KEY],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "writer"
        wait_for("the first Blender to send the queued jobs", lambda: sandbox.state.creates == len(prompts))

        # The second Blender (this process) opens the same queue.
        scheduler = runtime.start(ADDON_MODULE, backends=[engine("backends.tripo").TripoBackend(KEY, sandbox.url)],
                                  journal_dir=journal_dir)
        assert "Another Blender runs Kiln's queue" in runtime.read_only()
        assert f"pid {first.pid}" in runtime.read_only(), "it names the Blender that holds the queue"
        assert sorted(view.spec.prompt for view in scheduler.views()) == sorted(prompts), "it shows the queue"
        with pytest.raises(RuntimeError, match="Another Blender runs Kiln's queue"):
            bpy.ops.kiln.generate(prompt="bronze statue")  # greyed out, with the reason
        with pytest.raises(engine("scheduling.engine").QueueReadOnly):
            scheduler.add(engine("jobs").JobSpec(kind=engine("jobs").JobKind.TEXT, backend="tripo",
                                                 mode=engine("jobs").Mode.DRAFT, prompt="bronze statue"))
        with pytest.raises(RuntimeError, match="Another Blender runs Kiln's queue"):
            bpy.ops.kiln.clear_finished()
        for _ in range(20):
            runtime.pump()
            time.sleep(0.05)
        assert runtime.is_done(), "a script waiting on a read-only Kiln is not kept waiting forever"
        assert sandbox.state.creates == len(prompts), "the second Blender sent nothing"
        assert not [o for o in bpy.data.objects if o.name.startswith("draft_")]

        first.send_signal(signal.SIGKILL)  # the first Blender crashes with every task still running
        first.wait(timeout=30)
        wait_for("the second Blender to take the queue over",
                 lambda: runtime.pump() is not None and not runtime.read_only(), timeout=30)
        assert runtime.run_until_done(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)

    assert sandbox.state.creates == len(prompts), "the tasks the first Blender paid for were reattached, not resent"
    landed = sorted(o.name for o in bpy.data.objects if o.name.startswith("draft_") and o.parent is None)
    assert landed == ["draft_barrel_001", "draft_crate_001", "draft_pillar_001"], landed
    states = {view.spec.prompt: view.state.value for view in runtime.scheduler().views()}
    assert set(states.values()) == {"finished"}, states
