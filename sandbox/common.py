"""Pieces every provider sandbox shares: the quiet threaded server, results made by Kiln's local engine
(the simulated provider's GPUs), and signed, expiring result links. Standard library and Kiln only."""

from __future__ import annotations

import email
import hashlib
import hmac
import sys
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from addon.backends import registry  # noqa: E402
from addon.backends.base import BackendError, TaskStatus  # noqa: E402
from addon.jobs import JobSpec  # noqa: E402


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection dropped on purpose (a truncated download, a stopped provider) is not news."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def local_result(spec: JobSpec, work: Path, folder: Path) -> dict[str, str]:
    """Run `spec` on Kiln's local engine; returns role → file in `folder` ("model", "preview"). One engine
    per task: a provider's GPUs do not queue behind each other the way the add-on's own local workers do."""
    engine = registry.build("local", scratch_dir=work / f"engine_{folder.name}")
    try:
        task_id = engine.submit(spec, folder.name)
        while True:
            update = next((u for u in engine.watch([task_id], 60.0) if u.task_id == task_id), None)
            if update is not None and update.status is TaskStatus.SUCCESS:
                return engine.download(task_id, folder)
            if update is not None and update.status.is_terminal:
                raise BackendError(update.error_code, update.error_message)
    finally:
        engine.close()


def signature(secret: bytes, name: str, expires: int) -> str:
    return hmac.new(secret, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def signed_query(secret: bytes, name: str, lifetime_s: float) -> str:
    """The query of a result link to `name` that works for `lifetime_s` seconds, as a CDN signs it."""
    expires = int(time.time() + lifetime_s)
    return f"expires={expires}&sig={signature(secret, name, expires)}"


def link_valid(secret: bytes, name: str, query: dict[str, list[str]]) -> bool:
    """Whether a result link's query (parse_qs) is signed for `name` and not expired."""
    try:
        expires = int(query.get("expires", ["0"])[0])
    except ValueError:
        return False
    return hmac.compare_digest(query.get("sig", [""])[0], signature(secret, name, expires)) and time.time() <= expires


def form_parts(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, list[bytes]]]:
    """A multipart body: its plain fields, and its file parts by field name, in order."""
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    files: dict[str, list[bytes]] = {}
    for part in message.walk():
        if part.is_multipart():
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if not isinstance(name, str):
            continue
        if part.get_filename() is not None:
            files.setdefault(name, []).append(data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files
