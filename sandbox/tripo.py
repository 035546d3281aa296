"""A Tripo API v3 sandbox: the routes and shapes Kiln uses, on 127.0.0.1, with results made by Kiln's
local engine (built through the backend registry and driven through the Backend interface, as any
caller would). Standard library only (http.server), so it runs anywhere Kiln's tests run.

    python -m sandbox.tripo --port 0 [--latency 2] [--limit 10] [--url-lifetime 300] [--balance 1000]

prints its base URL. Point Kiln at it with KILN_TRIPO_BASE_URL=<url> and any key starting with tsk_.
Knobs (command line, or attributes of `SandboxState` in tests): latency per mode/texture, the
concurrency limit (code 2000 with Retry-After), a request-rate limit (1007), failure rates per error
code, URL lifetime, starting balance, dropped connections and truncated downloads, statuses Kiln may
not expect (the SDK's banned/expired/unknown, garbage) per task or at a rate, and a delay before a
create's answer (the task exists, its id is not yet back: the moment a crash makes a job uncertain),
`running_left_time` on running tasks, and another client of the same account holding N slots for S
seconds (`hold_slots`). Tasks belong to the key that created them: another key gets `missed` / 404 code
2001, as on Tripo. `timeline` (creates, refusals, finishes, with the slots in use) and `status_log` (what
each status request answered) let tests count who waited for whom without reading a clock.
"""

from __future__ import annotations

import argparse
import datetime
import email
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from addon.jobs import JobKind, JobSpec, Mode  # noqa: E402
from sandbox._http import BackgroundServer, QuietHandler, RateWindow, UrlSigner  # noqa: E402
from sandbox._results import ResultCache, image_spec, retextured, run_local_engine  # noqa: E402

CREDIT_TABLE = {"text": (10, 20), "image": (20, 30), "multiview": (20, 30), "texture": (10, 10),
                "decimate": (30, 30)}


@dataclass
class SandboxTask:
    task_id: str
    kind: str
    request: dict[str, Any]
    created: float
    duration: float
    credits: int
    fail_code: int = 0
    status: str = "queued"
    output: dict[str, Any] = field(default_factory=dict)
    completed: float = 0.0
    result_ready: threading.Event = field(default_factory=threading.Event)
    result_time: float = 0.0
    owner: str = ""
    """The API key that created it; other keys are told it does not exist."""
    override: dict[str, Any] = field(default_factory=dict)
    """Fields served instead of the real ones (e.g. {"status": "banned"}), to try odd answers."""


@dataclass
class SandboxState:
    latency_s: dict[str, float] = field(default_factory=lambda: {"draft": 1.0, "textured": 2.0})
    limit: int = 10
    rate_limit_per_s: float = 0.0
    """Requests per second per key before 1007 (0: no limit)."""
    failure_rates: dict[int, float] = field(default_factory=dict)
    """Task failure probability per error code, e.g. {2008: 0.1}."""
    create_errors: list[int] = field(default_factory=list)
    """Error codes the next creates answer with (consumed in order)."""
    url_lifetime_s: float = 300.0
    result_route: str = "/cdn/"
    """Where result files are served, on this same host: "/cdn/" as a CDN would, or a route that looks
    like the API's (e.g. "/v3/results/") to check that a download never carries the key anyway."""
    balance: float = 1000.0
    frozen: float = 0.0
    drop_connections: int = 0
    """The next N downloads close the connection half-way."""
    truncate_downloads: int = 0
    """The next N downloads announce the full length but send half."""
    valid_keys: set[str] | None = None
    """If set, only these keys are accepted (others: 401, code 1002)."""
    odd_statuses: dict[str, Any] = field(default_factory=dict)
    """Status value → probability that a new task is served with it forever, e.g. {"banned": 0.1,
    "unknown": 0.05, "???": 0.05} (its real life goes on underneath, unseen)."""
    task_overrides: list[dict[str, Any]] = field(default_factory=list)
    """Fields served instead of the real ones by the next created tasks, consumed in order, e.g.
    [{"status": "expired"}, {"status": "failed", "error_code": 2018}]."""
    create_response_delay_s: float = 0.0
    """Hold each create's answer this long after the task was made (and charged)."""
    make_results: bool = True
    """False: no result is ever made, so tasks stay running (for tests that read only the requests)."""
    left_time: bool = False
    """Serve `running_left_time` (seconds left) on running tasks, as v2 and the SDK's Task know it."""
    held: tuple[int, float] = (0, 0.0)
    """(slots, until epoch time) another client of the same account holds: see `hold_slots`."""
    timeline: list[tuple[float, str, str, int]] = field(default_factory=list)
    """(time, "create" | "refused" | "done" | "failed", task id, slots in use after it, other client's included)."""
    status_log: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    """(time, task id → status answered) per status request, in order."""
    tasks: dict[str, SandboxTask] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    creates: int = 0
    status_requests: int = 0
    requests_seen: list[tuple[str, str, str]] = field(default_factory=list)
    """(method, path, Authorization header) of every request, to check where the key went."""
    seed: int = 0
    reuse_results: bool = True
    """Serve one generated result per (kind, prompt, texture) instead of generating per seed: the
    sandbox shares two cores with Kiln, and a real provider's GPUs would not slow Kiln down."""
    _result_cache: ResultCache = field(default_factory=ResultCache)
    lock: threading.Lock = field(default_factory=threading.Lock)
    signer: UrlSigner = field(default_factory=UrlSigner)
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tripo-sandbox-")))
    _rate_window: RateWindow = field(default_factory=RateWindow)

    def hold_slots(self, slots: int, seconds: float) -> None:
        """Another client of the same account takes `slots` of the concurrency limit for `seconds`."""
        self.held = (slots, time.time() + seconds)

    def in_flight(self) -> int:
        """Slots in use on the account: our tasks queued or running, and another client's."""
        held = self.held[0] if time.time() < self.held[1] else 0
        return held + sum(1 for t in self.tasks.values() if t.status in ("queued", "running"))

    def advance(self) -> None:
        """Move tasks along by the clock; results are made when a task first counts as done."""
        now = time.time()
        for task in self.tasks.values():
            if task.status in ("queued", "running"):
                elapsed = now - task.created
                if elapsed >= task.duration:
                    self._complete(task)
                elif elapsed > 0.1 * task.duration:
                    task.status = "running"

    def _complete(self, task: SandboxTask) -> None:
        if not task.fail_code and not task.result_ready.is_set():
            return  # the (simulated) provider is still rendering: it stays running a little longer
        # Done at its scheduled time (if the result was ready by then), not when someone next asks.
        task.completed = max(task.created + task.duration, min(time.time(), task.result_time or time.time()))
        self.frozen -= task.credits
        if task.fail_code:
            task.status = "failed"
            self.balance += task.credits  # failed tasks are refunded
        else:
            task.status = "success"
        self.timeline.append((task.completed, "done" if task.status == "success" else "failed", task.task_id,
                              self.in_flight()))

    def start_generation(self, task: SandboxTask) -> None:
        """Make the result in the background from the moment the task is created, as a provider's GPUs
        would, so finishing a task is instant and never holds the server's lock."""
        def work() -> None:
            try:
                self._make_result(task)
            finally:
                task.result_time = time.time()
                task.result_ready.set()

        threading.Thread(target=work, name=f"sandbox-gen-{task.task_id[:8]}", daemon=True).start()

    def _make_result(self, task: SandboxTask) -> None:
        textured = bool(task.request.get("texture", True) or task.request.get("pbr", True))
        if task.kind in ("texture", "decimate"):
            source = source_task(task.request)
            source_task_done = self.tasks[source].result_ready
            source_task_done.wait(60)
            with self.lock:
                model = self.files[f"{source}_model"]
                if task.kind == "texture":
                    model = retextured(model, str(task.request.get("texture_prompt", {}).get("text", "")))
                self.files[f"{task.task_id}_model"] = model
                self.files[f"{task.task_id}_preview"] = self.files[f"{source}_preview"]
            return

        def make() -> tuple[bytes, bytes]:
            mode = Mode.PRODUCTION if textured else Mode.DRAFT
            if task.kind == "text":
                spec = JobSpec(kind=JobKind.TEXT, backend="local", mode=mode, prompt=task.request.get("prompt", "x"),
                               seed=int(task.request.get("model_seed", 1) or 1))
            else:
                token = task.request.get("input") or next(t for t in task.request["inputs"] if t)
                spec = image_spec(self.files.get(token), self.work / f"{task.task_id}_input.npy", mode)
            files = run_local_engine(spec, self.work / task.task_id, self.work / f"engine_{task.task_id}")
            model, preview = (Path(files[role]).read_bytes() for role in ("model", "preview"))
            return model, preview

        cache_key = (task.kind, str(task.request.get("prompt", task.request.get("input", ""))), textured)
        model, preview = self._result_cache.made(cache_key, make) if self.reuse_results else make()
        with self.lock:
            self.files[f"{task.task_id}_model"] = model
            self.files[f"{task.task_id}_preview"] = preview

    def signed_url(self, base: str, name: str) -> str:
        return self.signer.sign(f"{base}{self.result_route}", name, self.url_lifetime_s)

    def task_json(self, task: SandboxTask, base: str) -> dict[str, Any]:
        body: dict[str, Any] = {"task_id": task.task_id, "type": f"{task.kind}_to_model", "status": task.status,
                                "progress": 100 if task.status == "success" else
                                min(99, int(100 * (time.time() - task.created) / task.duration))
                                if task.status == "running" else 0,
                                "input": task.request, "created_at": iso(task.created)}
        if self.left_time and task.status == "running":
            body["running_left_time"] = max(0, round(task.created + task.duration - time.time()))
        if task.status == "success":
            body["output"] = {"model_url": self.signed_url(base, f"{task.task_id}_model"),
                              "rendered_image_url": self.signed_url(base, f"{task.task_id}_preview")}
            body["credits_consumed"] = task.credits
            body["completed_at"] = iso(task.completed)
        if task.status == "failed":
            body["error_code"] = task.fail_code
            body["error_message"] = {2008: "content policy", 2018: "model too complex"}.get(task.fail_code, "failed")
            body["credits_consumed"] = 0
        body.update(task.override)
        return body

    def visible(self, task_id: str, key: str) -> SandboxTask | None:
        """The task as `key` may see it: only its creator knows it exists."""
        task = self.tasks.get(task_id)
        return task if task is not None and (not task.owner or task.owner == key) else None


def make_handler(state: SandboxState) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        _send = QuietHandler.send_json

        def _error(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
            self._send(status, {"code": code, "status": "error", "message": message, "suggestion": "",
                                "request_id": uuid.uuid4().hex}, headers)

        def _ok(self, data: Any) -> None:
            self._send(200, {"code": 0, "status": "success", "data": data})

        @property
        def _key(self) -> str:
            return self.bearer

        def _authorised(self) -> bool:
            key = self._key
            if not key.startswith("tsk_") or (state.valid_keys is not None and key not in state.valid_keys):
                self._error(401, 1002, "Authentication failed")
                return False
            state._rate_window.per_s = state.rate_limit_per_s
            if not state._rate_window.allow(time.time()):
                self._error(429, 1007, "Too many requests", {"Retry-After": "1"})
                return False
            return True

        def do_GET(self) -> None:
            path = urlsplit(self.path)
            with state.lock:
                state.requests_seen.append(("GET", path.path, self.headers.get("Authorization", "")))
            if path.path.startswith(state.result_route):
                self._cdn(path.path.removeprefix(state.result_route), parse_qs(path.query))
                return
            if not self._authorised():
                return
            with state.lock:
                state.advance()
                if path.path == "/v3/account/balance":
                    self._ok({"balance": round(state.balance, 2), "frozen": round(state.frozen, 2)})
                elif path.path.startswith("/v3/tasks/"):
                    state.status_requests += 1
                    task = state.visible(path.path.rsplit("/", 1)[-1], self._key)
                    if task is None:
                        self._error(404, 2001, "task not found")
                    else:
                        self._ok(state.task_json(task, self.base))
                else:
                    self._error(404, 1003, "no such route")

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            body = self.read_body()
            created: dict[str, Any] | None = None
            with state.lock:
                state.requests_seen.append(("POST", path, self.headers.get("Authorization", "")))
            if not self._authorised():
                return
            with state.lock:
                state.advance()
                if path == "/v3/files":
                    self._upload(body)
                elif path == "/v3/tasks/list":
                    state.status_requests += 1
                    ids = json.loads(body or b"{}").get("task_ids", [])
                    found = {i: state.visible(i, self._key) for i in ids}
                    tasks = {i: state.task_json(task, self.base) for i, task in found.items() if task is not None}
                    state.status_log.append((time.time(), {i: str(t["status"]) for i, t in tasks.items()}))
                    # A map by task id, as the SDK reads it (BatchTaskResult), and the ids it does not know.
                    self._ok({"tasks": tasks, "missed": [i for i, task in found.items() if task is None]})
                elif path.startswith("/v3/generation/") and path.endswith("-to-model"):
                    created = self._create(path.removeprefix("/v3/generation/").removesuffix("-to-model"), body)
                elif path in ("/v3/models/texture", "/v3/mesh/decimate"):
                    created = self._create("texture" if path.endswith("texture") else "decimate", body)
                else:
                    self._error(404, 1003, "no such route")
            if created is not None:
                # Made and charged, but the answer is late: a client killed now never learns the id.
                if state.create_response_delay_s:
                    time.sleep(state.create_response_delay_s)
                self._ok(created)

        def _upload(self, body: bytes) -> None:
            message = email.message_from_bytes(
                b"Content-Type: " + self.headers.get("Content-Type", "").encode() + b"\r\n\r\n" + body)
            parts = [p for p in message.walk() if p.get_filename()]
            data = parts[0].get_payload(decode=True) if parts else b""
            if not data:
                self._error(400, 2003, "empty file")
                return
            token = f"file_{uuid.uuid4()}"
            state.files[token] = data if isinstance(data, bytes) else b""
            self._ok({"file_token": token})

        def _create(self, kind: str, body: bytes) -> dict[str, Any] | None:
            """Make the task, or answer the error; returns the success answer for the caller to send."""
            try:
                request = json.loads(body or b"{}")
            except json.JSONDecodeError:
                self._error(400, 1003, "malformed JSON")
                return None
            if kind not in CREDIT_TABLE:
                self._error(400, 2002, "unsupported task type")
                return None
            if state.create_errors:
                code = state.create_errors.pop(0)
                status = {2000: 429, 1007: 429, 2010: 403, 1002: 401, 1000: 500, 1001: 500, 2014: 500}.get(code, 400)
                extra = {"Retry-After": "0.2"} if code in (2000, 1007) else None
                self._error(status, code, f"sandbox error {code}", extra)
                return None
            if kind in ("texture", "decimate"):
                source = state.tasks.get(source_task(request))
                if source is None:
                    self._error(400, 2006, "invalid source task")
                    return None
                if source.status != "success":
                    self._error(400, 2007, "source task has not succeeded")
                    return None
            elif "model" not in request:
                self._error(400, 1004, "model is required")
                return None
            if kind == "text" and not str(request.get("prompt", "")).strip():
                self._error(400, 1004, "prompt is required")
                return None
            if kind == "multiview" and not (isinstance(request.get("inputs"), list) and request["inputs"]
                                            and request["inputs"][0]):
                self._error(400, 1004, "inputs [front, left, back, right] with a front view are required")
                return None
            if kind == "image" and not request.get("input"):
                self._error(400, 1004, "input is required")
                return None
            if state.in_flight() >= state.limit:
                state.timeline.append((time.time(), "refused", "", state.in_flight()))
                self._error(429, 2000, "concurrency limit reached", {"Retry-After": "0.2"})
                return None
            textured = bool(request.get("texture", True) or request.get("pbr", True))
            credits = CREDIT_TABLE[kind][1 if textured else 0]
            if state.balance < credits:
                self._error(403, 2010, "insufficient credit", None)
                return None
            state.balance -= credits
            state.frozen += credits  # frozen at create; consumed on success, refunded on failure
            fail_code = next((code for code, rate in state.failure_rates.items() if random.random() < rate), 0)
            task = SandboxTask(task_id=str(uuid.uuid4()), kind=kind, request=request, created=time.time(),
                               duration=state.latency_s["textured" if textured else "draft"], credits=credits,
                               fail_code=fail_code)
            state.tasks[task.task_id] = task
            state.creates += 1
            state.timeline.append((task.created, "create", task.task_id, state.in_flight()))
            task.owner = self._key
            odd = next((status for status, rate in state.odd_statuses.items() if random.random() < rate), None)
            if odd is not None:
                task.override["status"] = odd
            if state.task_overrides:
                task.override.update(state.task_overrides.pop(0))
            if not fail_code and state.make_results:
                state.start_generation(task)
            return {"task_id": task.task_id, "type": f"{kind}_to_model", "status": "queued"}

        def _cdn(self, name: str, query: dict[str, list[str]]) -> None:
            if not state.signer.valid(name, query):
                self.send_empty(403)
                return
            with state.lock:
                data = state.files.get(name)
                drop = state.drop_connections > 0
                truncate = state.truncate_downloads > 0
                state.drop_connections -= int(drop)
                state.truncate_downloads -= int(truncate and not drop)
            if data is None:
                self.send_empty(404)
                return
            self.send_file(data, "application/octet-stream", cut=drop or truncate)

    return Handler


def iso(moment: float) -> str:
    """A v3 timestamp: ISO 8601 in UTC, to the microsecond."""
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).isoformat().replace("+00:00", "Z")


def source_task(request: dict[str, Any]) -> str:
    """The model a post-processing request works on: v3's `input`, or the v2 name apiv3 still accepts."""
    return str(request.get("input") or request.get("original_model_task_id") or "")


class TripoSandbox(BackgroundServer):
    """The server in a background thread: `with TripoSandbox() as sandbox: sandbox.url …`."""

    def __init__(self, state: SandboxState | None = None, port: int = 0) -> None:
        self.state = state or SandboxState()
        super().__init__(make_handler(self.state), port, "tripo-sandbox")


def main() -> None:
    parser = argparse.ArgumentParser(description="Tripo API v3 sandbox on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds for a textured task (draft: half)")
    parser.add_argument("--limit", type=int, default=10, help="tasks in flight before code 2000")
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second before code 1007 (0: none)")
    parser.add_argument("--fail", action="append", default=[], help="CODE=RATE, e.g. 2008=0.1 (repeatable)")
    parser.add_argument("--url-lifetime", type=float, default=300.0)
    parser.add_argument("--balance", type=float, default=1000.0)
    parser.add_argument("--odd-status", action="append", default=[],
                        help="STATUS=RATE: serve new tasks with this status forever, e.g. banned=0.1 (repeatable)")
    parser.add_argument("--create-delay", type=float, default=0.0, help="seconds before a create's answer")
    parser.add_argument("--left-time", action="store_true", help="serve running_left_time on running tasks")
    parser.add_argument("--hold", default="", help="N:S: another client holds N slots for S seconds from the start")
    args = parser.parse_args()
    state = SandboxState(latency_s={"draft": args.latency / 2, "textured": args.latency}, limit=args.limit,
                         rate_limit_per_s=args.rate, url_lifetime_s=args.url_lifetime, balance=args.balance,
                         failure_rates={int(c): float(r) for c, r in (f.split("=") for f in args.fail)},
                         odd_statuses={s: float(r) for s, r in (f.rsplit("=", 1) for f in args.odd_status)},
                         create_response_delay_s=args.create_delay, left_time=args.left_time)
    if args.hold:
        slots, seconds = args.hold.split(":")
        state.hold_slots(int(slots), float(seconds))
    TripoSandbox(state, args.port).serve_from_command_line()


if __name__ == "__main__":
    main()
