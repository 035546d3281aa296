"""The backend registry: one table for names, keys and endpoints; the environment wins; a key goes only
where it may; backends built from it work against the Tripo sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from addon.backends import registry
from addon.backends.base import BackendError
from addon.backends.registry import BackendSettings
from sandbox.tripo import SandboxState, TripoSandbox

REPO = Path(__file__).resolve().parents[2]
KEY = "tsk_registry_key_7"


@pytest.fixture
def sandbox() -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(valid_keys={KEY})) as server:
        yield server


def test_every_backend_is_listed_once_with_what_the_ui_needs() -> None:
    names = registry.names()
    assert names[:3] == ["local", "tripo", "meshy"] and len(names) == len(set(names))
    assert {"rodin", "stability", "hunyuan"} <= set(names)
    local, tripo = registry.info("local"), registry.info("tripo")
    assert not local.needs_network and not local.needs_key
    assert tripo.needs_network and tripo.needs_key and tripo.key_variable == "KILN_TRIPO_API_KEY"
    assert tripo.key_property == "tripo_api_key" and tripo.default_base_url.startswith("https://")
    assert registry.find("nosuch") is None
    meshy = registry.info("meshy")
    assert meshy.key_variable == "KILN_MESHY_API_KEY" and meshy.url_variable == "KILN_MESHY_BASE_URL"
    assert meshy.key_property == "meshy_api_key" and meshy.default_base_url == "https://api.meshy.ai"
    with pytest.raises(KeyError, match="unknown backend 'nosuch'"):
        registry.build("nosuch")


def test_capabilities_are_known_without_building() -> None:
    assert registry.capabilities("local").durable_tasks is False
    assert registry.capabilities("tripo").concurrency["generation"] == 10
    assert registry.capabilities("tripo").cancel is False


def test_the_environment_wins_then_the_given_value_then_the_default() -> None:
    env = {"KILN_TRIPO_API_KEY": "tsk_env", "KILN_TRIPO_BASE_URL": "https://proxy.example"}
    assert registry.resolve("tripo", api_key="tsk_pref", base_url="https://pref.example", environ=env) == \
        BackendSettings("tsk_env", "https://proxy.example", 30.0)
    assert registry.resolve("tripo", api_key="tsk_pref", base_url="https://pref.example", timeout_s=9,
                            environ={}) == BackendSettings("tsk_pref", "https://pref.example", 9)
    assert registry.resolve("tripo", environ={}) == BackendSettings("", "https://openapi.tripo3d.ai", 30.0)
    # The embedded engine has nothing to reach, so no preference edit can change how it is built.
    assert registry.resolve("local", api_key="x", timeout_s=5, environ=env) == BackendSettings()
    everything = registry.resolve_all({"tripo": {"api_key": "tsk_pref"}}, environ={})
    assert everything["tripo"].api_key == "tsk_pref" and set(everything) == set(registry.names())


def test_a_manifest_endpoint_applies_unless_the_environment_names_one() -> None:
    settings = registry.allow_hosts(BackendSettings("tsk_a", "https://openapi.tripo3d.ai"), ["127.0.0.1"])
    assert registry.with_endpoint("tripo", settings, "http://127.0.0.1:8000", environ={}).base_url == \
        "http://127.0.0.1:8000"
    env = {"KILN_TRIPO_BASE_URL": "http://127.0.0.1:9000"}
    assert registry.with_endpoint("tripo", settings, "http://127.0.0.1:8000", environ=env) is settings
    assert registry.with_endpoint("tripo", settings, "", environ={}) is settings


def test_the_key_never_shows_in_a_repr() -> None:
    assert KEY not in repr(BackendSettings(KEY, "https://x.example"))


def test_a_missing_key_says_where_to_put_it() -> None:
    with pytest.raises(BackendError, match=r"No Tripo API key: .*Preferences.*KILN_TRIPO_API_KEY") as caught:
        registry.build("tripo", BackendSettings("", "https://openapi.tripo3d.ai"))
    assert caught.value.code == "no_key"


def test_a_key_travels_only_over_https_or_to_this_machine() -> None:
    with pytest.raises(BackendError, match=r"unencrypted to gpu\.lan") as caught:
        registry.build("tripo", BackendSettings(KEY, "http://gpu.lan:8080"))
    assert caught.value.code == "bad_endpoint"
    for url in ("https://openapi.tripo3d.ai", "http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:8000"):
        assert registry.endpoint_problem(url, with_key=True) is None, url
    assert registry.endpoint_problem("http://gpu.lan:8080", with_key=False) is None, \
        "a keyless self-hosted server may use http"
    assert registry.endpoint_problem("ftp://x", with_key=False) == "'ftp://x' is not an http(s) URL"
    # The host is the parsed one: user-info before @ is refused (and its password never shown).
    assert registry.endpoint_problem("http://localhost@evil.example.com:80", with_key=True) == \
        "the URL must not contain a user name or password (the part before @)"
    assert registry.endpoint_problem("http://[::1", with_key=False) == \
        "'http://[::1' is not a valid URL (Invalid IPv6 URL)"


def test_a_built_backend_reaches_its_endpoint_with_its_key(sandbox: TripoSandbox, tmp_path: Path) -> None:
    tripo = registry.build("tripo", BackendSettings(KEY, sandbox.url, timeout_s=7.0))
    assert tripo.balance() == 1000.0
    assert sandbox.state.requests_seen[-1] == ("GET", "/v3/account/balance", f"Bearer {KEY}")
    offline = registry.build("tripo", BackendSettings(KEY, sandbox.url), online=lambda: False)
    with pytest.raises(BackendError, match="online access is off"):
        offline.balance()
    local = registry.build("local", scratch_dir=tmp_path / "scratch")
    try:
        assert local.name == "local" and local.balance() is None
    finally:
        local.close()


def test_key_variables_and_preference_names_are_written_only_in_the_registry() -> None:
    names = ("KILN_TRIPO_API_KEY", "KILN_TRIPO_BASE_URL", "tripo_api_key", "tripo_base_url")
    folders = ("addon", "operators", "ui", "scripts")
    shipped = [REPO / "__init__.py", *(p for folder in folders for p in (REPO / folder).rglob("*.py"))]
    writers = {p.relative_to(REPO).as_posix() for p in shipped for name in names if name in p.read_text()}
    assert writers == {"addon/backends/registry.py"}
