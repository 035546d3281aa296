"""Where an API key may go (issue 12, item 9), over real HTTP against Tripo sandboxes on 127.0.0.1.

- The host is the parsed one: user-info, backslashes, odd ports and non-ASCII names are refused, and plain
  http carries a key only to 127.0.0.1, ::1 or localhost.
- A manifest cannot send the key to a host the user did not choose: refused (exit 2, naming
  `[backends.tripo] base_url` and the fix) unless --allow-host or the environment says so.
- The key goes to API routes only: result files served by the API host itself get no key.
- A key with a line break is refused everywhere it can enter, and never printed.

A second sandbox plays the attacker ("evil"): the tests assert it never saw a request, let alone a key.
"""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import drain

from addon.backends import registry
from addon.backends.base import BackendError
from addon.backends.registry import BackendSettings
from addon.backends.tripo import TripoBackend
from addon.batch import cli
from addon.batch.manifest import Manifest, PlannedAsset
from addon.batch.plan import BatchOptions, Plan
from addon.http import HttpClient
from addon.jobs import BatchSpec, JobKind, JobSpec, JobState, Mode
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.tripo import SandboxState, TripoSandbox, make_handler

KEY = "tsk_keys_test_key_do_not_show_4711"
ENV_KEY = {"KILN_TRIPO_API_KEY": KEY}


@pytest.fixture
def api() -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 0.2, "textured": 0.2}, valid_keys={KEY})) as server:
        yield server


@pytest.fixture
def evil() -> Iterator[TripoSandbox]:
    """A server that would love to receive the key."""
    with TripoSandbox(SandboxState()) as server:
        yield server


def port(server: TripoSandbox) -> int:
    return int(server.url.rsplit(":", 1)[1])


# ------------------------------------------------------------------------------------ parsed hosts
@pytest.mark.parametrize(("url", "why"), [
    ("http://localhost@evil.example:8000", "user name or password"),
    ("http://localhost:x@evil.example", "user name or password"),
    ("https://user:pw@api.example.com", "user name or password"),
    ("http://127.0.0.1.evil.example", "unencrypted to 127.0.0.1.evil.example"),
    ("http://localhost.evil.example:80", "unencrypted to localhost.evil.example"),
    ("http://127.1:8000", "unencrypted to 127.1"),
    ("http://127.0.0.1\\@evil.example", "backslash"),
    ("http://127.0.0.1\\.evil.example", "backslash"),
    ("http://127.0.0.1:+80", "malformed host or port"),
    ("http://127.0.0.1:\u0668\u0660", "malformed host or port"),
    ("http://127.0.0.1:0", "outside 1-65535"),
    ("https://api.example.com:65536", "outside 1-65535"),
    ("http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:80", "non-ASCII"),
    ("https://api.ex\u0430mple.com", "non-ASCII"),
    ("http://[::1%25lo]:80", "IPv6 zone"),
    ("http://[::1]x:80", "malformed host or port"),
    ("https://api..example.com", "malformed host name"),
    ("https://api.example.com.", "malformed host name"),
    ("https://api.example.com?", "?query"),
    ("https://", "no host name"),
    ("http:///127.0.0.1", "no host name"),
])
def test_a_key_goes_only_where_the_parsed_host_allows(url: str, why: str) -> None:
    problem = registry.endpoint_problem(url, with_key=True)
    assert problem is not None and why in problem, problem
    assert "pw" not in problem, "user-info may hold a password: never shown"
    with pytest.raises(BackendError) as refused:
        registry.build("tripo", BackendSettings(KEY, url))
    assert refused.value.code == "bad_endpoint" and KEY not in refused.value.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://[::1]", "http://[::1]:9000/v", "http://localhost",
                                 "http://LOCALHOST:1/", "https://openapi.tripo3d.ai", "https://xn--bcher-kva.example"])
def test_this_machine_may_use_plain_http_and_everyone_https(url: str) -> None:
    assert registry.endpoint_problem(url, with_key=True) is None


def test_a_keyless_server_on_the_lan_may_use_plain_http() -> None:
    assert registry.endpoint_problem("http://gpu.lan:8080", with_key=False) is None
    assert "user name" in str(registry.endpoint_problem("http://a@gpu.lan:8080", with_key=False))


def test_a_user_info_url_never_reaches_the_host_it_names(api: TripoSandbox, evil: TripoSandbox) -> None:
    """`http://localhost@HOST:PORT` is a request to HOST: refused before any byte is sent to either."""
    sneaky = f"http://localhost@127.0.0.1:{port(evil)}"
    with pytest.raises(BackendError, match="user name or password"):
        registry.build("tripo", BackendSettings(KEY, sneaky))
    assert evil.state.requests_seen == [] and api.state.requests_seen == []


def test_plain_http_to_ipv6_loopback_carries_the_key() -> None:
    """[::1] counts as this machine: the key goes there over plain http (the sandbox's handler on ::1)."""

    class V6Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    state = SandboxState(valid_keys={KEY})
    try:
        server = V6Server(("::1", 0), make_handler(state))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://[::1]:{server.server_address[1]}"
        assert registry.build("tripo", BackendSettings(KEY, url)).balance() == 1000.0
    finally:
        server.shutdown()
        server.server_close()
    assert state.requests_seen == [("GET", "/v3/account/balance", f"Bearer {KEY}")]


# ------------------------------------------------------------------------------ manifest redirects
class BackendRunner:
    """The part of the Blender runner that matters here: point the backend at the manifest's endpoint the
    way `batch_run.prepare` does (`registry.with_endpoint`), build it and check the key (a balance)."""

    def __init__(self) -> None:
        self.balance: float | None = None

    def prepare(self, manifest: Manifest, assets: list[PlannedAsset], options: BatchOptions,
                backend: Any = None, settings: BackendSettings | None = None) -> Plan:
        url = manifest.backend_settings.get(manifest.backend, {}).get("base_url", "")
        chosen = registry.with_endpoint(manifest.backend, settings or registry.resolve(manifest.backend), url)
        built = registry.build(manifest.backend, chosen)
        self.balance = built.balance()
        return Plan([], 0.0, built, options.out, options.out, None)

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("not reached: --dry-run")


def manifest(folder: Path, base_url: str) -> Path:
    path = folder / "batch.toml"
    path.write_text(f'[batch]\nname = "env_keys_01"\nbackend = "tripo"\nmode = "draft"\n\n'
                    f'[[asset]]\nprompt = "crate"\n\n[backends.tripo]\nbase_url = "{base_url}"\n')
    return path


def run(folder: Path, base_url: str, *flags: str, environ: dict[str, str] | None = None,
        runner: BackendRunner | None = None) -> int:
    return cli.main([str(manifest(folder, base_url)), "--out", str(folder / "out"), "--dry-run", "--quiet", *flags],
                    runner=runner or BackendRunner(), online_access=True,
                    environ=ENV_KEY if environ is None else environ)


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_a_shared_manifest_cannot_redirect_the_key(tmp_path: Path, evil: TripoSandbox,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, evil.url) == 2
    line = error_line(capsys)
    assert line.startswith("kiln batch: error: [backends.tripo] base_url: would send your Tripo key to "
                           f"127.0.0.1:{port(evil)} instead of openapi.tripo3d.ai"), line
    assert "--allow-host 127.0.0.1" in line and "KILN_TRIPO_BASE_URL" in line
    assert evil.state.requests_seen == []
    # Another port on an allowed host is another server: HOST:PORT allows that port only.
    assert run(tmp_path, evil.url, "--allow-host", f"127.0.0.1:{port(evil) + 1}") == 2
    assert "[backends.tripo] base_url" in error_line(capsys)
    assert evil.state.requests_seen == []


def test_allow_host_on_the_command_line_lets_the_manifest_point_the_key(tmp_path: Path, api: TripoSandbox,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for allowed in ("127.0.0.1", f"127.0.0.1:{port(api)}"):
        runner = BackendRunner()
        assert run(tmp_path, api.url, "--allow-host", "other.example", "--allow-host", allowed,
                   runner=runner) == 0, capsys.readouterr().err
        assert runner.balance == 1000.0
    assert api.state.requests_seen[-1] == ("GET", "/v3/account/balance", f"Bearer {KEY}")


def test_the_environments_endpoint_wins_over_the_manifest(tmp_path: Path, api: TripoSandbox, evil: TripoSandbox,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_TRIPO_BASE_URL", api.url)  # the runner, like batch_run, reads the real environment
    runner = BackendRunner()
    assert run(tmp_path, evil.url, environ={**ENV_KEY, "KILN_TRIPO_BASE_URL": api.url}, runner=runner) == 0, \
        capsys.readouterr().err
    assert runner.balance == 1000.0 and len(api.state.requests_seen) == 1
    assert evil.state.requests_seen == []


def test_the_users_own_endpoint_in_a_manifest_needs_no_flag(tmp_path: Path, api: TripoSandbox,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest naming the endpoint the preferences already use redirects nothing."""
    runner = BackendRunner()
    preferences = {"tripo": registry.resolve("tripo", api_key=KEY, base_url=api.url, environ={})}
    code = cli.main([str(manifest(tmp_path, api.url + "/")), "--out", str(tmp_path / "out"), "--dry-run",
                     "--quiet"], runner=runner, online_access=True, backends=preferences, environ={})
    assert code == 0, capsys.readouterr().err
    assert runner.balance == 1000.0


@pytest.mark.parametrize("value", ["", "a b", "x@127.0.0.1", "https://127.0.0.1", "127.0.0.1:0", "127.0.0.1/x",
                                   "h\\x"])
def test_a_bad_allow_host_is_exit_2_naming_the_flag(tmp_path: Path, value: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "https://openapi.tripo3d.ai", f"--allow-host={value}") == 2
    assert error_line(capsys).startswith("kiln batch: error: --allow-host: ")


def test_the_registry_itself_refuses_a_redirect_nobody_allowed(evil: TripoSandbox) -> None:
    """The lock behind the command line's check: whoever applies a manifest's endpoint goes through it."""
    settings = registry.resolve("tripo", api_key=KEY, environ={})
    with pytest.raises(BackendError) as refused:
        registry.with_endpoint("tripo", settings, evil.url, environ={})
    assert refused.value.code == "untrusted_endpoint"
    allowed = registry.allow_hosts(settings, ["127.0.0.1"])
    assert registry.with_endpoint("tripo", allowed, evil.url, environ={}).base_url == evil.url
    assert registry.with_endpoint("tripo", settings, "https://openapi.tripo3d.ai/", environ={}).api_key == KEY
    assert evil.state.requests_seen == []


# -------------------------------------------------------------------------------- routes, not hosts
def finished_job(server: TripoSandbox, tmp_path: Path) -> None:
    backend = TripoBackend(KEY, server.url, timeout_s=5)
    scheduler = Scheduler([backend], journal=Journal(tmp_path / "journal"),
                          config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    try:
        scheduler.add_batch(BatchSpec("b"))
        job = scheduler.add(JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.DRAFT, prompt="crate", batch="b"))
        drain(scheduler)
        assert job.state is JobState.FINISHED and Path(job.files["model"]).stat().st_size > 0
    finally:
        scheduler.shutdown()


@pytest.mark.parametrize("route", ["/cdn/", "/v3/results/"])
def test_results_served_by_the_api_host_get_no_key(tmp_path: Path, route: str) -> None:
    """Same host, same port, even a route under /v3/: a result link is a download and never carries the key."""
    state = SandboxState(latency_s={"draft": 0.2, "textured": 0.2}, valid_keys={KEY}, result_route=route)
    with TripoSandbox(state) as server:
        finished_job(server, tmp_path)
    downloads = [(path, auth) for _, path, auth in state.requests_seen if path.startswith(route)]
    api_calls = [(path, auth) for _, path, auth in state.requests_seen if not path.startswith(route)]
    assert len(downloads) == 2, state.requests_seen  # the model and its preview
    assert all(auth == "" for _, auth in downloads), downloads
    assert api_calls and all(auth == f"Bearer {KEY}" for _, auth in api_calls), api_calls


def test_the_http_layer_decides_by_origin_and_route(api: TripoSandbox, tmp_path: Path) -> None:
    """Absolute URLs handed to `request` (a provider's links) get the key only on an API route of the
    API's own scheme, host and port."""
    client = HttpClient(api.url, KEY, key_routes=("/v3/",), timeout_s=5)
    host = f"127.0.0.1:{port(api)}"
    for url, keyed in [(f"{api.url}/v3/account/balance", True),
                       (f"http://LOCALHOST:{port(api)}/v3/account/balance", False),  # another name: another origin
                       (f"{api.url}/cdn/x", False), (f"{api.url}/v3/../cdn/x", False),
                       (f"{api.url}/v3/%2E%2E/cdn/x", False), (f"http://{host}.evil.example/v3/x", False),
                       (f"https://{host}/v3/x", False), (f"http://localhost@{host}/v3/x", False),
                       (f"{api.url}/v3x/account/balance", False)]:
        assert bool(client._auth(url)) is keyed, url
    with pytest.raises(BackendError, match="HTTP 401"):  # the API refuses a request without the key
        client.download(f"{api.url}/v3/account/balance", tmp_path / "balance.json")
    assert api.state.requests_seen[-1] == ("GET", "/v3/account/balance", ""), "a download never carries the key"
    response = client.request("GET", "/v3/account/balance")
    assert response.status_code == 200 and api.state.requests_seen[-1][2] == f"Bearer {KEY}"


# --------------------------------------------------------------------------------- keys with a \r
BAD_KEYS = [KEY + "\r", KEY + "\r\n", "tsk_ab\r\ncd" + KEY, KEY + "\x00", "\u201c" + KEY + "\u201d"]


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_a_key_with_a_line_break_is_refused_and_never_shown(bad: str, api: TripoSandbox, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    # The backend is built from what `resolve` returns (preferences and environment alike).
    settings = registry.resolve("tripo", api_key=bad, base_url=api.url, environ={})
    if settings.api_key != KEY:  # a trailing CR/LF is only whitespace around the key: stripped, and it works
        with pytest.raises(BackendError) as refused:
            registry.build("tripo", settings)
        assert refused.value.code == "bad_key" and KEY not in str(refused.value)
    with pytest.raises(BackendError) as refused:
        HttpClient(api.url, bad)
    assert refused.value.code == "bad_key" and KEY not in str(refused.value)
    # The headless run: from the environment, and from the preferences.
    assert run(tmp_path, api.url, environ={"KILN_TRIPO_API_KEY": bad, "KILN_TRIPO_BASE_URL": api.url}) == 2
    assert error_line(capsys).startswith("kiln batch: error: KILN_TRIPO_API_KEY: the key in KILN_TRIPO_API_KEY ")
    if settings.api_key != KEY:
        code = cli.main([str(manifest(tmp_path, api.url)), "--out", str(tmp_path / "out"), "--dry-run"],
                        runner=BackendRunner(), online_access=True, backends={"tripo": settings}, environ={})
        assert code == 2
        assert error_line(capsys).startswith("kiln batch: error: [batch] backend: the key in Kiln's preferences ")
    assert KEY not in caplog.text
    assert all(auth in ("", f"Bearer {KEY}") for _, _, auth in api.state.requests_seen)


# ----------------------------------------------------------------------------------------------- TLS
def test_tls_is_verified_so_an_untrusted_certificate_gets_nothing(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox behind TLS with a self-signed certificate: refused before any request (so before the
    key) is sent; trusted through the standard CA-bundle variable, the same server then works."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    state = SandboxState(valid_keys={KEY})
    with TripoSandbox(state) as server:
        server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
        url = server.url.replace("http://", "https://")
        with pytest.raises(BackendError, match="could not reach"):
            registry.build("tripo", BackendSettings(KEY, url, timeout_s=5)).balance()
        assert state.requests_seen == [], "no request, no key, to a server whose certificate is not trusted"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        assert registry.build("tripo", BackendSettings(KEY, url, timeout_s=5)).balance() == 1000.0
        assert state.requests_seen == [("GET", "/v3/account/balance", f"Bearer {KEY}")]
