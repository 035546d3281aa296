"""One HTTP layer for every remote backend: timeouts, read retries, capped streaming downloads, and
the API key kept where it belongs.

- The key goes only to the provider's API routes (`_auth`, the one place that decides): the same
  scheme, host and port as the base URL, and a path under one of the backend's `key_routes`. File
  downloads never carry it, even from the API host, and neither does a redirect (not followed).
- TLS is always verified (requests' default; nothing here can turn it off).
- GETs (and other reads) retry on 429/502/503/504 and connection errors with capped, jittered
  backoff that honours Retry-After. Creates are never retried here: the backend decides from the
  provider's answer whether a resend is safe (DESIGN invariant 3).
- The key never reaches logs or error messages: a logging filter masks it everywhere.
- No request is made while Blender's online access is off.
- One streaming call, `events`, reads a Server-Sent Events stream (Meshy's live task status) with
  the same key rule, TLS and redaction; `close` ends the streams still open, so no reader outlives
  its backend.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import requests

from .backends.base import BackendError
from .backends.registry import key_problem, origin
from .imaging.png import encode_png
from .retry import backoff_delay

_log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 502, 503, 504}
BROKEN_BODY = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
"""An answer whose body broke off (fewer bytes than its Content-Length, a cut chunked stream) or cannot be
decoded: requests raises these, not ConnectionError, while it reads the body of a non-streamed answer."""
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
"""Image files every provider's upload accepts as they are (by suffix)."""
DOWNLOAD_CHUNK = 1 << 16
DEFAULT_MAX_DOWNLOAD = 512 * 1024 * 1024


@dataclass(frozen=True)
class SseEvent:
    """One Server-Sent Event: its `event:` name ("message" when the server named none) and its data
    lines joined by newlines."""

    event: str
    data: str


def sse_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of an event stream as its bytes arrive. The SSE spec ends a line with CRLF, LF or CR
    alone; a CRLF split across two reads is one line end. (requests' `iter_lines` makes an empty line of
    that split "\n", and an empty line ends an event: with CRLF framing an `error` event became a
    `message` and multi-line data fell apart.) An unterminated last line is dropped, as the spec says."""
    line = bytearray()
    after_cr = False
    for chunk in chunks:
        for byte in chunk:
            if after_cr and byte == 0x0A:  # the LF of a CRLF
                after_cr = False
                continue
            after_cr = byte == 0x0D
            if byte in (0x0A, 0x0D):
                yield line.decode("utf-8", "replace")
                line = bytearray()
            else:
                line.append(byte)


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """text/event-stream framing (WHATWG HTML, "Server-sent events"): `field: value` lines, one leading
    space stripped from the value, `:` comment lines ignored, an event dispatched at each blank line
    (and none for a block without data). Fields other than event and data (id, retry) are not needed."""
    name, data = "", list[str]()
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield SseEvent(name or "message", "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field_name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field_name == "event":
            name = value
        elif field_name == "data":
            data.append(value)


class KeyRedactor(logging.Filter):
    """Masks the given secrets in every record that passes through the handlers it is attached to."""

    secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                if secret and secret in message:
                    message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


_REDACTOR = KeyRedactor()


def protect_secret(secret: str) -> None:
    """Register a key to be masked in all logging output (root handlers and the kiln loggers)."""
    if not secret:
        return
    KeyRedactor.secrets.add(secret)
    for logger in (logging.getLogger(), logging.getLogger("kiln"), logging.getLogger(__name__.split(".")[0])):
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
        for handler in logger.handlers:
            if _REDACTOR not in handler.filters:
                handler.addFilter(_REDACTOR)


class HttpClient:
    """`key_routes` are the API's path prefixes below the base URL (Tripo: "/v3/"): only requests there
    carry the key."""

    def __init__(self, base_url: str, api_key: str, *, key_routes: tuple[str, ...] = ("/",),
                 timeout_s: float = 30.0, max_read_retries: int = 3, online: Callable[[], bool] = lambda: True,
                 user_agent: str = "Kiln-Blender/0.1") -> None:
        problem = key_problem(api_key)
        if problem is not None:  # requests would refuse the header and quote it in the exception
            raise BackendError("bad_key", f"the API key {problem}")
        self.base_url = base_url.rstrip("/")
        self.api_host = urlsplit(self.base_url).netloc
        self._origin = origin(self.base_url)
        self._key_prefixes = tuple(urlsplit(self.base_url).path + "/" + r.lstrip("/") for r in key_routes)
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.max_read_retries = max_read_retries
        self.online = online
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self._streams: set[requests.Response] = set()
        self._streams_lock = threading.Lock()
        self._closed = False
        protect_secret(api_key)

    def _check_online(self) -> None:
        if not self.online():
            raise BackendError("offline", "Blender's online access is off; Kiln makes no network requests")

    def _auth(self, url: str) -> dict[str, str]:
        """The key's header for `url`, or none: only an API route of the API's own origin gets it. Decided
        on the parsed URL (a prefix test on the text would let `https://api.host.evil` through)."""
        if not self._api_key or self._origin is None or origin(url) != self._origin:
            return {}
        path = urlsplit(url).path
        if not path.startswith(self._key_prefixes) or "%2e" in path.lower() \
                or any(part in (".", "..") for part in path.split("/")):
            return {}  # not an API route, or one whose dots a server would resolve to another
        return {"Authorization": f"Bearer {self._api_key}"}

    def request(self, method: str, path: str, *, json: Any = None, files: Any = None,
                retry: bool | None = None) -> requests.Response:
        """A request to the API host. Reads retry by default; writes only when `retry=True`."""
        self._check_online()
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        retry = method in ("GET", "HEAD") if retry is None else retry
        attempt = 0
        while True:
            try:
                response = self.session.request(method, url, json=json, files=files, headers=self._auth(url),
                                                timeout=self.timeout_s, allow_redirects=False)
            except (*BROKEN_BODY, requests.ConnectionError, requests.Timeout) as exc:
                if retry and attempt < self.max_read_retries:
                    attempt += 1
                    time.sleep(backoff_delay(attempt, base_s=0.2))
                    continue
                raise self._no_answer(exc) from None
            if retry and response.status_code in RETRY_STATUSES and attempt < self.max_read_retries:
                attempt += 1
                time.sleep(backoff_delay(attempt, base_s=0.2, retry_after_s=retry_after(response)))
                continue
            return response

    def _no_answer(self, exc: Exception) -> BackendError:
        """What a request that got no usable answer means, above all whether a create can have been made."""
        if isinstance(exc, BROKEN_BODY):
            # The server had the whole request and began to answer: a create may have been made (and
            # charged), so this is never `nothing_created`.
            return BackendError("answer_broken", f"the answer from {self.api_host} broke off before its end",
                                retryable=True)
        if isinstance(exc, requests.ConnectionError):  # first: a connect timeout is both kinds
            # Before any byte was sent (refused), nothing can have been created.
            refused = "refused" in str(exc).lower()
            return BackendError("connection_failed", f"could not reach {self.api_host}", retryable=True,
                                nothing_created=refused)
        return BackendError("timeout", f"{self.api_host} did not answer within {self.timeout_s:g}s", retryable=True)

    def download(self, url: str, dest: Path, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD) -> int:
        """Stream `url` to `dest` via a temp file with a size cap; rename atomically. Never with the API
        key: a result file is not an API route, whichever host serves it.
        Raises BackendError with code `url_expired` on 403/404 (the caller refreshes the URL),
        `download_truncated` when fewer bytes arrive than announced, `download_too_large` past the cap."""
        self._check_online()
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        received = 0
        try:
            with self.session.get(url, stream=True, timeout=self.timeout_s) as response:
                if response.status_code in (403, 404):
                    raise BackendError("url_expired", "the result link has expired", retryable=True)
                if response.status_code >= 400:
                    raise BackendError("download_failed", f"download failed with HTTP {response.status_code}",
                                       retryable=response.status_code >= 500)
                announced = int(response.headers.get("Content-Length", "0") or 0)
                if announced > max_bytes:
                    raise BackendError("download_too_large", f"the result is {announced / 2**20:.0f} MB, over "
                                       f"the {max_bytes / 2**20:.0f} MB cap")
                with open(tmp, "wb") as handle:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK):
                        received += len(chunk)
                        if received > max_bytes:
                            raise BackendError("download_too_large",
                                               f"the result is over the {max_bytes / 2**20:.0f} MB cap")
                        handle.write(chunk)
                # Content-Length counts the bytes on the wire: with a Content-Encoding (gzip, which requests
                # asks for) they are fewer than the decoded bytes written, so compare the wire's count.
                wire = response.raw.tell() if response.headers.get("Content-Encoding") else received
                if announced and wire != announced:
                    raise BackendError("download_truncated",
                                       f"the download stopped after {wire} of {announced} bytes", retryable=True)
        except (requests.ConnectionError, requests.Timeout, *BROKEN_BODY) as exc:
            tmp.unlink(missing_ok=True)
            raise BackendError("download_truncated", f"the download was interrupted ({type(exc).__name__})",
                               retryable=True) from None
        except BackendError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, dest)
        return received


    def events(self, path: str, error: Callable[[requests.Response], BackendError], *,
               read_timeout_s: float | None = None) -> Iterator[SseEvent]:
        """Read the Server-Sent Events stream at `path` (an API route: it carries the key) until the
        server ends it or the caller stops iterating. An answer other than 200 is turned into the
        backend's own error by `error`; a connection that breaks (before or during the stream) raises
        BackendError "stream_dropped", retryable: the caller polls instead and may connect again.
        `read_timeout_s` bounds the silence between two lines (the server's heartbeat)."""
        self._check_online()
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        headers = {**self._auth(url), "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        try:
            response = self.session.get(url, headers=headers, stream=True, allow_redirects=False,
                                        timeout=(self.timeout_s, read_timeout_s or self.timeout_s))
        except (requests.ConnectionError, requests.Timeout):
            raise BackendError("stream_dropped", f"could not open a status stream on {self.api_host}",
                               retryable=True) from None
        with self._streams_lock:
            if self._closed:
                response.close()
                raise BackendError("stream_dropped", "the backend was closed", retryable=True)
            self._streams.add(response)
        try:
            if response.status_code != 200:
                raise error(response)
            # Byte by byte: a status stream is a few small events, and none may wait for a fuller buffer.
            yield from parse_sse(sse_lines(response.iter_content(chunk_size=1)))
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                AttributeError, OSError, ValueError):
            # AttributeError / ValueError: urllib3 reading a response that `close` shut from another thread.
            raise BackendError("stream_dropped", f"the status stream from {self.api_host} broke",
                               retryable=True) from None
        finally:
            with self._streams_lock:
                self._streams.discard(response)
            response.close()

    def close(self) -> None:
        """End every open stream (a reader blocked on one wakes with "stream_dropped") and the session."""
        with self._streams_lock:
            self._closed = True
            streams = list(self._streams)
        for response in streams:
            _shut(response)
        self.session.close()


def _shut(response: requests.Response) -> None:
    """Wake a thread blocked reading `response`: shut its socket down (closing alone may not wake a
    blocked recv), then close it."""
    with contextlib.suppress(Exception):
        connection: Any = response.raw._connection  # urllib3's connection of a streamed response
        sock = connection.sock if connection is not None else None
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        response.close()


def retry_after(response: requests.Response) -> float | None:
    """The answer's Retry-After in seconds, or None. HTTP lets it be delay-seconds or an HTTP-date (RFC 9110
    §10.2.3; no provider in backends.md narrows that): a date is counted from the answer's own `Date`
    (clock skew between Kiln and the server cancels out), else from now."""
    value = str(response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        until, sent = _http_date(value), _http_date(str(response.headers.get("Date") or ""))
        if until is None:
            return None
        return max(0.0, until - (sent if sent is not None else time.time()))  # a date past: now
    return seconds if math.isfinite(seconds) and seconds >= 0 else None  # a negative delay is no delay asked


def _http_date(value: str) -> float | None:
    """Epoch seconds of an HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms), or None."""
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.timestamp() if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC).timestamp()


def image_part(path: str, *, limit_bytes: int, provider: str) -> tuple[bytes, str, str]:
    """An input image as (bytes, file name, MIME type) for a multipart upload, within `limit_bytes`.
    Kiln's prepared arrays (.npy) are encoded as PNG; files already in an accepted format go as they are.
    Raises BackendError "unsupported_image" or "upload_too_large" (nothing was sent)."""
    source = Path(path)
    if source.suffix.lower() == ".npy":
        data, name, mime = encode_png(np.load(source)), source.stem + ".png", "image/png"
    else:
        mime_type = IMAGE_TYPES.get(source.suffix.lower())
        if mime_type is None:
            raise BackendError("unsupported_image", f"'{source.name}' is not a PNG, JPEG or WebP image")
        data, name, mime = source.read_bytes(), source.name, mime_type
    if len(data) > limit_bytes:
        raise BackendError("upload_too_large",
                           f"'{source.name}' is over {provider}'s {limit_bytes / 2**20:g} MB upload limit")
    return data, name, mime
