"""One writer per journal: a portable, process-lifetime lock on a folder (fcntl on POSIX, msvcrt on Windows).

The operating system releases the lock when the process dies, so a crashed run never leaves a stale lock
behind; the file's text (pid and command) only serves to tell the user who holds it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import IO

_log = logging.getLogger(__name__)

LOCK_NAME = "lock"

_held_here: set[Path] = set()
"""Folders whose lock this process holds (a lock is per process: see `held_here`)."""


def held_here(folder: Path) -> bool:
    """Whether this process already holds `folder`'s lock: a headless batch locks its journal folder,
    then runs the add-on's engine on it, and that engine is the same single writer."""
    return Path(folder).resolve() in _held_here


class FolderLocked(RuntimeError):
    """Another live process holds the lock; `holder` says who (as it wrote itself down)."""

    def __init__(self, folder: Path, holder: str) -> None:
        super().__init__(f"{folder} is in use by another Kiln run ({holder or 'unknown process'})")
        self.folder = folder
        self.holder = holder


class FolderLock:
    """Held from `acquire()` until `release()` or the end of the process."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._handle: IO[str] | None = None

    def acquire(self, who: str = "") -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the life of the lock
        try:
            _lock(handle)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise FolderLocked(self.folder, holder) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}{': ' + who if who else ''}\n")
        handle.flush()
        self._handle = handle
        _held_here.add(self.folder.resolve())
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        _held_here.discard(self.folder.resolve())
        try:
            _unlock(self._handle)
        except OSError:
            _log.debug("unlocking %s failed", self.path, exc_info=True)
        self._handle.close()
        self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None


if sys.platform == "win32":
    import msvcrt

    def _lock(handle: IO[str]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle: IO[str]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(handle: IO[str]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle: IO[str]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
