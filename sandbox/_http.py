"""The HTTP plumbing every provider sandbox shares: a threaded server that can stop as a provider that
went away, a quiet JSON handler, signed expiring asset URLs, a request-rate window, and the command-line
entry that prints the base URL. Standard library only, like the sandboxes themselves."""

from __future__ import annotations

import contextlib
import email
import hashlib
import hmac
import json
import math
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class SandboxServer(ThreadingHTTPServer):
    """One thread per connection (cheap enough for a hundred open SSE streams), and a record of the open
    connections so `drop_all` can cut them as a provider that vanished would."""

    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when a batch of clients connects at once.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        return f"http://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection dropped on purpose (a drop knob, a stopped provider) is not news."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self.connections_lock:
            if is_open:
                self.connections.add(connection)
            else:
                self.connections.discard(connection)

    def drop_all(self) -> None:
        with self.connections_lock:
            open_now = list(self.connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no logging (tests count requests through the sandbox's state), and its
    connection registered while it is open when the server is a SandboxServer (tests may serve the
    handler from a server of their own, e.g. on IPv6)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the body would wait for the
    # client's delayed ACK (40 ms per answer), a cost no real provider's server adds.
    disable_nagle_algorithm = True
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        if isinstance(self.server, SandboxServer):
            self.server.track(self.connection, True)

    def finish(self) -> None:
        if isinstance(self.server, SandboxServer):
            self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    @property
    def base(self) -> str:
        address: Any = self.server.server_address  # (host, port, …) for every server these handlers run on
        return f"http://{address[0]}:{address[1]}"

    @property
    def bearer(self) -> str:
        """The key the request carries (empty if none)."""
        return str(self.headers.get("Authorization", "")).removeprefix("Bearer ").strip()

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def send_empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_file(self, data: bytes, content_type: str, *, cut: bool = False) -> None:
        """Send `data`; `cut` announces the full length, sends half and closes (a dropped download)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)


@dataclass
class UrlSigner:
    """Asset URLs that stop working after their lifetime, as a provider's CDN links do. The expiry on
    the wire is rounded down to `resolution_s`: whole seconds as CDNs write it, or finer for tests that
    want links living a fraction of a second."""

    secret: bytes = field(default_factory=lambda: uuid.uuid4().bytes)
    resolution_s: float = 1.0

    def _signature(self, name: str, expires: str) -> str:
        return hmac.new(self.secret, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def sign(self, prefix: str, name: str, lifetime_s: float) -> str:
        ticks = math.floor((time.time() + lifetime_s) / self.resolution_s)
        expires = str(ticks) if self.resolution_s == 1.0 else f"{ticks * self.resolution_s:.6f}"
        return f"{prefix}{name}?expires={expires}&sig={self._signature(name, expires)}"

    def valid(self, name: str, query: dict[str, list[str]]) -> bool:
        """Signed for `name` and not yet expired."""
        expires = query.get("expires", ["0"])[0]
        try:
            deadline = float(expires)
        except ValueError:
            return False
        expected = self._signature(name, expires)
        return hmac.compare_digest(query.get("sig", [""])[0], expected) and time.time() <= deadline


@dataclass
class RateWindow:
    """A sliding one-second window of requests: `allow` is False past `per_s` (0: no limit)."""

    per_s: float = 0.0
    _times: list[float] = field(default_factory=list)

    def allow(self, now: float) -> bool:
        if not self.per_s:
            return True
        self._times[:] = [t for t in self._times if now - t < 1.0] + [now]
        return len(self._times) <= self.per_s


class BackgroundServer:
    """A sandbox server in a background thread: `with Sandbox() as sandbox: sandbox.url …`. Subclasses
    may run more servers (an asset host) by listing them in `servers`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0, name: str = "sandbox") -> None:
        self.server = SandboxServer(("127.0.0.1", port), handler)
        self.servers: list[SandboxServer] = [self.server]
        self.name = name
        self.threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        for index, server in enumerate(self.servers):
            # A short poll interval, so stopping (which waits for the serve loop to notice) is quick.
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=f"{self.name}-{index}",
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        """Stop as a provider that went away: no new connections, and the open ones dropped."""
        for server in self.servers:
            if self.threads:
                server.shutdown()
            server.server_close()
            server.drop_all()
        self.threads.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_from_command_line(self) -> None:
        """Print the base URL (what `--port 0` callers read) and serve until interrupted."""
        print(self.url, flush=True)
        self.start()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


def form_parts(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, list[bytes]]]:
    """A multipart body: its plain fields, and its file parts by field name, in order."""
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    files: dict[str, list[bytes]] = {}
    for part in message.walk():
        name = part.get_param("name", header="content-disposition")
        if part.is_multipart() or not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            files.setdefault(name, []).append(data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files
