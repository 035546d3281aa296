"""Every backend Kiln knows, in one table: its name, what the artist sees, how to build it, and where its
key and endpoint come from.

The key variable names, the preferences properties and the default URLs are written here and nowhere
else: the preferences draw their fields from this table, the runtime and the headless batch build
backends through `build`, and `resolve` is the one place where the environment wins over a
preference (a farm injects keys without touching preferences).

Backend modules are imported only when a backend is built or its capabilities are asked for, so
loading the table costs nothing (Tripo pulls in `requests`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .base import Backend, BackendError, Capabilities

Online = Callable[[], bool]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class BackendSettings:
    """What one backend is built from, already resolved (environment, then preferences or manifest, then
    the default). Plain values, so the runtime can tell whether anything changed."""

    api_key: str = field(default="", repr=False)  # never in a repr, so never in a log line
    base_url: str = ""
    timeout_s: float = 30.0


Factory = Callable[[BackendSettings, Path | None, Online], Backend]


@dataclass(frozen=True)
class BackendInfo:
    name: str
    label: str
    description: str
    needs_network: bool
    load: Callable[[], type[Backend]] = field(repr=False, compare=False)
    """The backend's class, imported on demand (its class-level capabilities describe it unbuilt)."""
    factory: Factory = field(repr=False, compare=False)
    key_variable: str = ""
    """Environment variable holding the API key; empty: the backend needs no key."""
    key_property: str = ""
    """Kiln's preferences property holding the API key."""
    url_variable: str = ""
    url_property: str = ""
    default_base_url: str = ""

    @property
    def needs_key(self) -> bool:
        return bool(self.key_variable)

    @property
    def capabilities(self) -> Capabilities:
        return self.load().capabilities

    def no_key_message(self) -> str:
        return f"No {self.label} API key: set it in Preferences ▸ Add-ons ▸ Kiln (or {self.key_variable})"


def _local_class() -> type[Backend]:
    from .local import LocalBackend

    return LocalBackend


def _build_local(settings: BackendSettings, scratch_dir: Path | None, online: Online) -> Backend:
    from .local import LocalBackend

    return LocalBackend(scratch_dir=scratch_dir)


def _tripo_class() -> type[Backend]:
    from .tripo import TripoBackend

    return TripoBackend


def _build_tripo(settings: BackendSettings, scratch_dir: Path | None, online: Online) -> Backend:
    from .tripo import TripoBackend

    return TripoBackend(settings.api_key, settings.base_url, online=online, timeout_s=settings.timeout_s)


BACKENDS: tuple[BackendInfo, ...] = (
    BackendInfo("local", "Local (offline)", "Embedded engine: instant blockouts, no key, no network",
                needs_network=False, load=_local_class, factory=_build_local),
    BackendInfo("tripo", "Tripo", "Tripo API v3: textured models from text or images (needs a key and online "
                "access)", needs_network=True, load=_tripo_class, factory=_build_tripo,
                key_variable="KILN_TRIPO_API_KEY", key_property="tripo_api_key",
                url_variable="KILN_TRIPO_BASE_URL", url_property="tripo_base_url",
                default_base_url="https://openapi.tripo3d.ai"),
)
_BY_NAME = {info.name: info for info in BACKENDS}


def names() -> list[str]:
    return [info.name for info in BACKENDS]


def find(name: str) -> BackendInfo | None:
    return _BY_NAME.get(name)


def info(name: str) -> BackendInfo:
    found = _BY_NAME.get(name)
    if found is None:
        raise KeyError(f"unknown backend '{name}' (known: {', '.join(names())})")
    return found


def capabilities(name: str) -> Capabilities:
    """What the backend can do (concurrency, cancel, …) without building it."""
    return info(name).capabilities


def resolve(name: str, *, api_key: str = "", base_url: str = "", timeout_s: float = 30.0,
            environ: Mapping[str, str] = os.environ) -> BackendSettings:
    """The settings for `name`: the environment first, then the given values (preferences, a manifest),
    then the default URL."""
    entry = info(name)
    if not entry.needs_network:
        return BackendSettings()  # nothing to reach: no key, endpoint or timeout can change it
    key = (environ.get(entry.key_variable, "") if entry.key_variable else "") or api_key
    url = (environ.get(entry.url_variable, "") if entry.url_variable else "") or base_url or entry.default_base_url
    return BackendSettings(key.strip(), url.strip(), timeout_s)


def resolve_all(values: Mapping[str, Mapping[str, str]] | None = None, *, timeout_s: float = 30.0,
                environ: Mapping[str, str] = os.environ) -> dict[str, BackendSettings]:
    """`resolve` for every backend; `values` maps a name to its "api_key" and "base_url" (the
    preferences), and without it the environment alone decides (plain Python, no preferences)."""
    values = values or {}
    return {entry.name: resolve(entry.name, api_key=values.get(entry.name, {}).get("api_key", ""),
                                base_url=values.get(entry.name, {}).get("base_url", ""), timeout_s=timeout_s,
                                environ=environ)
            for entry in BACKENDS}


def with_endpoint(name: str, settings: BackendSettings, base_url: str,
                  environ: Mapping[str, str] = os.environ) -> BackendSettings:
    """`settings` pointed at `base_url` (a manifest's [backends.<name>] table), unless the environment
    names an endpoint: that still wins, as it does over the preferences."""
    entry = info(name)
    if not base_url or (entry.url_variable and environ.get(entry.url_variable)):
        return settings
    return BackendSettings(settings.api_key, base_url.strip(), settings.timeout_s)


def url_problem(base_url: str) -> str | None:
    """What makes `base_url` unusable as an endpoint, key or not, or None. Decided on the parsed URL,
    never on a prefix: `http://localhost@host` is a request to `host`."""
    if not base_url:
        return "is empty"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in base_url):
        return "contains a space or a control character"
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("https", "http"):
        return "is not an http(s) URL"
    if "@" in parts.netloc:
        return "must not contain a user name or password (the part before @)"
    if not parts.hostname:
        return "has no host name"
    if port == 0:
        return "has port 0"
    if parts.query or parts.fragment:
        return "must not have a ?query or #fragment"
    return None


def endpoint_problem(base_url: str, with_key: bool) -> str | None:
    """Why `base_url` cannot be used, or None. A key travels only over https, or to this machine; a
    self-hosted server without a key may use plain http anywhere."""
    problem = url_problem(base_url)
    if problem is not None:
        shown = "the URL" if "@" in base_url else f"'{base_url}'"  # user-info may hold a password
        return f"{shown} {problem}"
    hostname = urlsplit(base_url).hostname
    if with_key and base_url.startswith("http:") and hostname not in LOOPBACK_HOSTS:
        return (f"the key would travel unencrypted to {hostname}: use https:// (plain http only to "
                "127.0.0.1, ::1 or localhost)")
    return None


def build(name: str, settings: BackendSettings | None = None, *, scratch_dir: Path | None = None,
          online: Online = lambda: True) -> Backend:
    """The backend `name`, built from `settings`. Raises BackendError when it cannot be (code "no_key"
    for a missing key, "bad_endpoint" for an endpoint the key must not go to) and KeyError for an unknown
    name. `online` is asked before every request (Blender's online access)."""
    entry = info(name)
    settings = settings or resolve(name)
    if entry.needs_key and not settings.api_key:
        raise BackendError("no_key", entry.no_key_message())
    if entry.needs_network:
        problem = endpoint_problem(settings.base_url, bool(settings.api_key))
        if problem is not None:
            raise BackendError("bad_endpoint", f"{entry.label} endpoint: {problem}")
    return entry.factory(settings, scratch_dir, online)
