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

import contextlib
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

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
    allowed_hosts: tuple[str, ...] = ()
    """Hosts besides the provider's own and `base_url`'s that a manifest may point this key at: only the
    command line's --allow-host fills it (`allow_hosts`), never a manifest."""


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
    url_list: bool = False
    """The endpoint setting is a pool: several URLs separated by commas (one server per GPU box)."""

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


def _meshy_class() -> type[Backend]:
    from .meshy import MeshyBackend

    return MeshyBackend


def _build_meshy(settings: BackendSettings, scratch_dir: Path | None, online: Online) -> Backend:
    from .meshy import MeshyBackend

    return MeshyBackend(settings.api_key, settings.base_url, online=online, timeout_s=settings.timeout_s)


def _rodin_class() -> type[Backend]:
    from .rodin import RodinBackend

    return RodinBackend


def _build_rodin(settings: BackendSettings, scratch_dir: Path | None, online: Online) -> Backend:
    from .rodin import RodinBackend

    return RodinBackend(settings.api_key, settings.base_url, online=online, timeout_s=settings.timeout_s)


def _stability_class() -> type[Backend]:
    from .stability import StabilityBackend

    return StabilityBackend


def _build_stability(settings: BackendSettings, scratch_dir: Path | None, online: Online) -> Backend:
    from .stability import StabilityBackend

    return StabilityBackend(settings.api_key, settings.base_url, scratch_dir=scratch_dir, online=online,
                            timeout_s=settings.timeout_s)


def _hunyuan_class() -> type[Backend]:
    from .hunyuan import HunyuanBackend

    return HunyuanBackend


def _build_hunyuan(settings: BackendSettings, scratch_dir: Path | None, online: Online) -> Backend:
    from .hunyuan import HunyuanBackend

    return HunyuanBackend(split_urls(settings.base_url), online=online, timeout_s=settings.timeout_s)


BACKENDS: tuple[BackendInfo, ...] = (
    BackendInfo("local", "Local (offline)", "Embedded engine: instant blockouts, no key, no network",
                needs_network=False, load=_local_class, factory=_build_local),
    BackendInfo("tripo", "Tripo", "Tripo API v3: textured models from text or images (needs a key and online "
                "access)", needs_network=True, load=_tripo_class, factory=_build_tripo,
                key_variable="KILN_TRIPO_API_KEY", key_property="tripo_api_key",
                url_variable="KILN_TRIPO_BASE_URL", url_property="tripo_base_url",
                default_base_url="https://openapi.tripo3d.ai"),
    BackendInfo("meshy", "Meshy", "Meshy: a fast preview as the Draft, refined into a textured Production "
                "model, status pushed live (needs a key and online access)", needs_network=True,
                load=_meshy_class, factory=_build_meshy,
                key_variable="KILN_MESHY_API_KEY", key_property="meshy_api_key",
                url_variable="KILN_MESHY_BASE_URL", url_property="meshy_base_url",
                default_base_url="https://api.meshy.ai"),
    BackendInfo("rodin", "Hyper3D Rodin", "Hyper3D Rodin: quality tiers from text or up to 5 images (needs a key "
                "and online access)", needs_network=True, load=_rodin_class, factory=_build_rodin,
                key_variable="KILN_RODIN_API_KEY", key_property="rodin_api_key",
                url_variable="KILN_RODIN_BASE_URL", url_property="rodin_base_url",
                default_base_url="https://api.hyper3d.com/api/v2"),
    BackendInfo("stability", "Stability Fast 3D", "Stability AI Stable Fast 3D: a model from one image in "
                "seconds, for drafts (image only; needs a key and online access)", needs_network=True,
                load=_stability_class, factory=_build_stability,
                key_variable="KILN_STABILITY_API_KEY", key_property="stability_api_key",
                url_variable="KILN_STABILITY_BASE_URL", url_property="stability_base_url",
                default_base_url="https://api.stability.ai"),
    BackendInfo("hunyuan", "Hunyuan3D (self-hosted)", "Your own Hunyuan3D-2/2.1 api_server.py boxes, pooled: "
                "image to model, no key", needs_network=True, load=_hunyuan_class, factory=_build_hunyuan,
                url_variable="KILN_HUNYUAN_URLS", url_property="hunyuan_urls", url_list=True),
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


def input_problem(name: str, kind: str) -> str | None:
    """Why backend `name` cannot start from input of this kind ("text", "image", …), naming the backends
    that can, or None. Asked before anything is queued: no request is built, nothing is spent."""
    entry = find(name)
    kinds = entry.capabilities.input_kinds if entry is not None else None
    if entry is None or kinds is None or kind in kinds:
        return None
    others = [e.label for e in BACKENDS if e.name != name and (e.capabilities.input_kinds is None
                                                               or kind in e.capabilities.input_kinds)]
    accepted = " or ".join(sorted(kinds))
    what = {"text": "a text prompt", "parts": "a text prompt"}.get(kind, f"{kind} input")
    return (f"{entry.label} makes models from {accepted} input only, not from {what}: choose another backend"
            + (f" ({', '.join(others)})" if others else "") + " for it, or give an image")


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
    names an endpoint: that still wins, as it does over the preferences. Raises BackendError
    ("untrusted_endpoint") when the manifest would send the key to a host nobody trusted
    (`redirect_problem`): the command line checks first and names the manifest key, this is the lock."""
    entry = info(name)
    if not base_url or (entry.url_variable and environ.get(entry.url_variable)):
        return settings
    problem = redirect_problem(name, settings, base_url, environ)
    if problem is not None:
        raise BackendError("untrusted_endpoint", problem)
    return replace(settings, base_url=base_url.strip())


# ------------------------------------------------------------------------------- where a key may go
_HOST_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*", re.IGNORECASE)
_NETLOC = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[0-9]{1,5}))?")
"""host[:port] with an ASCII-digit port: what urllib3 and urlsplit read alike."""
DEFAULT_PORTS = {"https": 443, "http": 80}


def _host_problem(parts: SplitResult) -> str | None:
    """What is wrong with the host[:port] of an already split URL, or None. Strict, so that every HTTP
    library reads the same host that Kiln checked: no user-info, no percent-escapes or zone ids, no
    non-ASCII letters (which IDNA folds into other names), no port spelled with '+' or other digits."""
    if "@" in parts.netloc:
        return "must not contain a user name or password (the part before @)"
    found = _NETLOC.fullmatch(parts.netloc)
    if found is None:
        return "has a malformed host or port (write host:port, the port in digits 1-65535)"
    host, port = found.group("host"), found.group("port")
    if not host or host == "[]":
        return "has no host name"
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "has a malformed IPv6 address (write it as [::1])"
        if "%" in host:
            return "has an IPv6 zone (%…): leave it out"
    elif not host.isascii():
        return "has a host name with non-ASCII letters (write an international name in its xn-- form)"
    elif not _HOST_NAME.fullmatch(host):
        return "has a malformed host name (letters, digits, '-' and '.' only, no empty part or final dot)"
    if port is not None and not 1 <= int(port) <= 65535:
        return "has a port outside 1-65535"
    return None


def _address_problem(url: str) -> str | None:
    """What is wrong with `url`'s scheme, host and port, or None (path, query and fragment aside)."""
    if not url:
        return "is empty"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "contains a space or a control character"
    if "\\" in url:
        return "contains a backslash (some programs read it as /, others not: write / )"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("https", "http"):
        return "is not an http(s) URL"
    if not parts.netloc:
        return "has no host name"
    return _host_problem(parts)


def url_problem(base_url: str) -> str | None:
    """What makes `base_url` unusable as an endpoint, key or not, or None. Decided on the parsed URL,
    never on a prefix: `http://localhost@host` is a request to `host`."""
    problem = _address_problem(base_url)
    if problem is None and ("?" in base_url or "#" in base_url):
        return "must not have a ?query or #fragment"
    return problem


Origin = tuple[str, str, int]


def origin(url: str) -> Origin | None:
    """(scheme, host, port) of `url`, the host lower-cased and the port made explicit, or None when its
    address is malformed (`url_problem`): two URLs reach the same server only when their origins are equal."""
    if _address_problem(url) is not None:
        return None
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(parts.scheme, 0)


def is_loopback(url: str) -> bool:
    """Whether `url` names this machine, by its parsed host, with no user-info: 127.0.0.1, ::1 or localhost."""
    found = origin(url)
    return found is not None and found[1] in LOOPBACK_HOSTS


def endpoint_problem(base_url: str, with_key: bool) -> str | None:
    """Why `base_url` cannot be used, or None. A key travels only over https, or to this machine; a
    self-hosted server without a key may use plain http anywhere."""
    problem = url_problem(base_url)
    if problem is not None:
        shown = "the URL" if "@" in base_url else f"'{base_url}'"  # user-info may hold a password
        return f"{shown} {problem}"
    scheme, hostname, _ = origin(base_url) or ("", "", 0)
    if with_key and scheme == "http" and not is_loopback(base_url):
        return (f"the key would travel unencrypted to {hostname}: use https:// (plain http only to "
                "127.0.0.1, ::1 or localhost)")
    return None


def allowed_host(text: str) -> str:
    """A command-line --allow-host value, normalised ("host" or "host:port", lower case). Raises
    ValueError saying what is wrong."""
    value = text.strip()
    if ":" in value and not value.startswith("["):  # a bare IPv6 address, e.g. ::1
        with contextlib.suppress(ValueError):
            value = f"[{ipaddress.IPv6Address(value)}]"
    problem = url_problem(f"https://{value}") if value and "/" not in value else "is not a host name"
    if problem is not None:
        raise ValueError(f"{value!r} {problem}: give a host such as api.example.com or 127.0.0.1:8000")
    parts = urlsplit(f"https://{value}")
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port is not None else host


def allow_hosts(settings: BackendSettings, hosts: Iterable[str]) -> BackendSettings:
    """`settings` with the command line's --allow-host values added."""
    added = tuple(h for h in (allowed_host(h) for h in hosts) if h not in settings.allowed_hosts)
    return replace(settings, allowed_hosts=settings.allowed_hosts + added) if added else settings


def _allows(allowed: str, url: str) -> bool:
    _, host, port = origin(url) or ("", "", 0)
    parts = urlsplit(f"https://{allowed}")
    return (parts.hostname or "").lower() == host and (parts.port is None or parts.port == port)


def redirect_problem(name: str, settings: BackendSettings, base_url: str,
                     environ: Mapping[str, str] = os.environ) -> str | None:
    """Why a manifest may not point backend `name` at `base_url`, or None. A shared manifest must not
    be able to send the user's key anywhere: the key goes to the provider's own API, to the endpoint the
    user set (environment or preferences), or to a host the command line allows (--allow-host). The
    environment's endpoint, when set, wins over the manifest, so nothing is redirected then."""
    entry = info(name)
    if not entry.needs_key or not base_url or (entry.url_variable and environ.get(entry.url_variable)):
        return None
    target = origin(base_url)
    if target is None or url_problem(base_url) is not None:
        return endpoint_problem(base_url, with_key=True)
    trusted = [origin(u) for u in (entry.default_base_url, settings.base_url) if u]
    if target in trusted or any(_allows(h, base_url) for h in settings.allowed_hosts):
        return None
    host = target[1] if ":" not in target[1] else f"[{target[1]}]"
    shown = f"{host}:{target[2]}" if target[2] != DEFAULT_PORTS.get(target[0]) else host
    usual = (origin(settings.base_url or entry.default_base_url) or ("", "its own API", 0))[1]
    return (f"would send your {entry.label} key to {shown} instead of {usual}, and a shared manifest must "
            f"not redirect a key: if you trust {host}, run with --allow-host {host}"
            + (f" (or set {entry.url_variable})" if entry.url_variable else ""))


def split_urls(text: str) -> list[str]:
    """A pool setting's URLs: comma-separated, blanks and repeats dropped, without a trailing slash."""
    return list(dict.fromkeys(u.strip().rstrip("/") for u in text.split(",") if u.strip()))


def endpoints_problem(name: str, text: str, with_key: bool) -> str | None:
    """`endpoint_problem` for backend `name`'s endpoint setting: each URL of a pool, or the one URL."""
    if not info(name).url_list:
        return endpoint_problem(text, with_key)
    urls = split_urls(text)
    if not urls:
        return "names no server (give one URL per server, separated by commas)"
    return next((p for p in (endpoint_problem(u, with_key) for u in urls) if p is not None), None)


def key_problem(key: str) -> str | None:
    """What makes an API key unusable in an HTTP header, said without showing it, or None. A key copied
    from a CRLF `.env` file ends in a `\\r`; requests would refuse the header and print it."""
    if "\r" in key or "\n" in key:
        return "contains a line break (a file saved with Windows line endings?); set it again on one line"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "contains a control character; set it again"
    if not key.isascii():
        return "contains a character that is not plain ASCII (a pasted quote or symbol?); set it again"
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
    problem = key_problem(settings.api_key)
    if problem is not None:
        raise BackendError("bad_key", f"The {entry.label} API key {problem}")
    if entry.needs_network:
        problem = endpoints_problem(name, settings.base_url, bool(settings.api_key))
        if problem is not None:
            raise BackendError("bad_endpoint", f"{entry.label} endpoint: {problem}")
    return entry.factory(settings, scratch_dir, online)
