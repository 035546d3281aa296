"""Generation backends. `create_backend` is the one place that maps a backend name to its class."""

from __future__ import annotations

from collections.abc import Callable
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
    BackendInfo("tripo", "Tripo", "Tripo API v3: textured models from text or images (needs a key and online "
                "access)", True),
)


def create_backend(name: str, scratch_dir: Path | None = None, *, api_key: str = "", base_url: str = "",
                   online: Callable[[], bool] = lambda: True, timeout_s: float = 30.0) -> Backend:
    """The backend called `name`. Keys and URLs: the environment wins over what is passed in."""
    if name == "local":
        from .local import LocalBackend

        return LocalBackend(scratch_dir=scratch_dir)
    if name == "tripo":
        from .tripo import TripoBackend, resolve_base_url, resolve_key

        return TripoBackend(resolve_key(api_key), resolve_base_url(base_url), online=online, timeout_s=timeout_s)
    raise KeyError(f"unknown backend '{name}'")
