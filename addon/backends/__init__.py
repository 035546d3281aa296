"""Generation backends. `create_backend` is the one place that maps a backend name to its class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .base import Backend


@dataclass(frozen=True)
class BackendInfo:
    name: str
    label: str
    description: str
    needs_network: bool


AVAILABLE: tuple[BackendInfo, ...] = (
    BackendInfo("local", "Local (offline)", "Embedded engine: instant blockouts, no key, no network", False),
)


def create_backend(name: str, scratch_dir: Path | None = None) -> Backend:
    if name == "local":
        from .local import LocalBackend

        return LocalBackend(scratch_dir=scratch_dir)
    raise KeyError(f"unknown backend '{name}'")
