"""A Stability AI sandbox for Stable Fast 3D: the synchronous `POST /v2beta/3d/stable-fast-3d` answering
GLB bytes (made by Kiln's local engine from the uploaded image), the `{"id","name","errors"}` error
shape, and `GET /v1/user/balance`. Standard library only.

    python -m sandbox.stability --port 0 [--model-time 0.5] [--balance 1000]

prints its base URL. Point Kiln at it with KILN_STABILITY_BASE_URL=<url> and any key starting with sk-.
Knobs (attributes of `StabilityState` in tests): the simulated model time, errors the next calls answer
with (`next_errors`: "content_moderation", or an HTTP status), answers cut off mid-GLB (`cut_answers`),
starting balance. `served` records when
each call arrived and was answered, so a benchmark can tell Kiln's overhead from the server's time;
`calls` records each call's form fields.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from addon.jobs import Mode  # noqa: E402
from sandbox._http import BackgroundServer, QuietHandler, form_parts  # noqa: E402
from sandbox._results import ResultCache, image_spec, run_local_engine  # noqa: E402

ROUTE = "/v2beta/3d/stable-fast-3d"
CREDITS = 10.0
ERRORS = {400: "bad_request", 401: "unauthorized", 402: "payment_required", 403: "content_moderation",
          413: "payload_too_large", 422: "invalid_parameters", 429: "rate_limit_exceeded", 500: "server_error"}


@dataclass
class StabilityState:
    model_time_s: float = 0.0
    """Extra seconds each call spends on top of making the model (a real GPU's 0.5 s, when wanted)."""
    next_errors: list[str | int] = field(default_factory=list)
    balance: float = 1000.0
    cut_answers: int = 0
    """The next N calls that succeed (and are charged) announce the whole GLB, send half of it and close,
    as a connection lost mid-answer does."""
    valid_keys: set[str] | None = None
    calls: list[dict[str, str]] = field(default_factory=list)
    served: list[tuple[float, float]] = field(default_factory=list)
    """(received, answered) wall times of each successful call: the server's own share of a request."""
    requests_seen: list[tuple[str, str, str]] = field(default_factory=list)
    reuse_results: bool = True
    """One model per (image, draft or not): the sandbox shares the cores with Kiln."""
    results: ResultCache = field(default_factory=ResultCache)
    lock: threading.Lock = field(default_factory=threading.Lock)
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="stability-sandbox-")))

    def model(self, image: bytes, fields: dict[str, str]) -> bytes:
        look = "draft" if fields.get("texture_resolution") == "512" else "production"
        name = uuid.uuid4().hex

        def make() -> tuple[bytes, bytes]:
            spec = image_spec(image, self.work / f"{name}.npy", Mode.DRAFT if look == "draft" else Mode.PRODUCTION)
            made = run_local_engine(spec, self.work / name, self.work / f"engine_{name}")
            return Path(made["model"]).read_bytes(), b""

        key = (hashlib.sha256(image).hexdigest(), look)
        return (self.results.made(key, make) if self.reuse_results else make())[0]


def problems(fields: dict[str, str], images: list[bytes]) -> list[str]:
    """What a real SF3D call would reject, in its own words."""
    found = [] if images else ["image: required"]
    if fields.get("texture_resolution", "1024") not in ("512", "1024", "2048"):
        found.append("texture_resolution: must be one of 512, 1024, 2048")
    if fields.get("remesh", "none") not in ("none", "triangle", "quad"):
        found.append("remesh: must be one of none, triangle, quad")
    try:
        if not 0.1 <= float(fields.get("foreground_ratio", "0.85")) <= 1.0:
            found.append("foreground_ratio: must be within 0.1-1")
        if not -1 <= int(fields.get("vertex_count", "-1")) <= 20000:
            found.append("vertex_count: must be within -1..20000")
    except ValueError:
        found.append("foreground_ratio / vertex_count: must be numbers")
    return found


def make_handler(state: StabilityState) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self.send_json(status, body, headers)

        def _error(self, status: int, errors: list[str], name: str = "") -> None:
            headers = {"Retry-After": "0.2"} if status == 429 else None
            self._json(status, {"id": uuid.uuid4().hex, "name": name or ERRORS.get(status, "error"),
                                "errors": errors}, headers)

        def _authorised(self) -> bool:
            key = self.bearer
            if not key.startswith("sk-") or (state.valid_keys is not None and key not in state.valid_keys):
                self._error(401, ["authorization: missing or invalid API key"])
                return False
            return True

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            with state.lock:
                state.requests_seen.append(("GET", path, self.headers.get("Authorization", "")))
            if not self._authorised():
                return
            if path == "/v1/user/balance":
                self._json(200, {"credits": state.balance})
            else:
                self._error(404, [f"{path}: not found"], "not_found")

        def do_POST(self) -> None:
            received = time.time()
            path = urlsplit(self.path).path
            body = self.read_body()
            with state.lock:
                state.requests_seen.append(("POST", path, self.headers.get("Authorization", "")))
            if not self._authorised():
                return
            if path != ROUTE:
                self._error(404, [f"{path}: not found"], "not_found")
                return
            fields, files = form_parts(self.headers.get("Content-Type", ""), body)
            images = files.get("image", [])
            with state.lock:
                state.calls.append(fields)
                error = state.next_errors.pop(0) if state.next_errors else None
            if error == "content_moderation":
                self._error(403, ["Your request was flagged by our content moderation system, as a result "
                                  "your request was denied and you were not charged."], "content_moderation")
                return
            if isinstance(error, int):
                self._error(error, [f"sandbox error {error}"])
                return
            found = problems(fields, images)
            if found:
                self._error(400, found)
                return
            if state.balance < CREDITS:
                self._error(402, ["You lack sufficient credits to make this request."])
                return
            model = state.model(images[0], fields)
            if state.model_time_s:
                time.sleep(state.model_time_s)
            with state.lock:
                state.balance -= CREDITS
                cut = state.cut_answers > 0
                state.cut_answers -= int(cut)
            self.send_file(model, "model/gltf-binary", cut=cut)
            with state.lock:
                state.served.append((received, time.time()))

    return Handler


class StabilitySandbox(BackgroundServer):
    """The server in a background thread: `with StabilitySandbox() as sandbox: sandbox.url …`."""

    def __init__(self, state: StabilityState | None = None, port: int = 0) -> None:
        self.state = state or StabilityState()
        super().__init__(make_handler(self.state), port, name="stability-sandbox")


def main() -> None:
    parser = argparse.ArgumentParser(description="Stability AI Stable Fast 3D sandbox on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model-time", type=float, default=0.0, help="extra seconds per call (a GPU's time)")
    parser.add_argument("--balance", type=float, default=1000.0)
    args = parser.parse_args()
    StabilitySandbox(StabilityState(model_time_s=args.model_time, balance=args.balance),
                     args.port).serve_from_command_line()


if __name__ == "__main__":
    main()
