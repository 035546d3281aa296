"""One writer per journal folder: a second process is refused and told who holds it; a dead holder
leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from addon.locks import FolderLock, FolderLocked

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from addon.locks import FolderLock
held = FolderLock(__import__("pathlib").Path({folder!r})).acquire("holder for the test")
print("held", flush=True)
time.sleep(60)
"""


def hold_in_another_process(folder: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=str(REPO), folder=str(folder))],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_second_process_is_refused_with_the_holders_name(tmp_path: Path) -> None:
    process = hold_in_another_process(tmp_path)
    try:
        with pytest.raises(FolderLocked) as refused:
            FolderLock(tmp_path).acquire("second")
        assert f"pid {process.pid}" in str(refused.value) and "holder for the test" in refused.value.holder
    finally:
        process.kill()
        process.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    process = hold_in_another_process(tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    lock = FolderLock(tmp_path).acquire("after the crash")
    assert lock.held and f"pid {os.getpid()}" in (tmp_path / "lock").read_text()
    lock.release()
    assert not lock.held
