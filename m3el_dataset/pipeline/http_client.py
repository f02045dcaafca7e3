"""The one HTTP client of the pipeline: User-Agent, per-host rate limits and concurrency, retries, cache.

Standard library only (``urllib.request``). Redirects are followed by hand so that every hop goes through the
per-host gate, stays on ``http``/``https`` and counts against ``max_redirects``.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json, read_json
from .config import HttpSettings

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_CHUNK = 64 * 1024


class HttpError(Exception):
    """A request failed; ``retryable`` says whether trying again later may help."""

    def __init__(self, url: str, reason: str, *, status: int | None = None, retryable: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{reason} ({url})")
        self.url = url
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class HttpResponse:
    """A successful answer, after redirects: ``url`` is the final address."""

    url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise HttpError(self.url, f"answer is not JSON: {err}") from err


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401 - urllib hook
        return None  # surface 3xx as HTTPError so that the client follows it itself


class _Deadline:
    """Cuts a request off once ``seconds`` have passed, however its server sends: when the time is up, it shuts down
    the request's connections, which ends any read blocked on them (``timeout_s`` only bounds each wait for a
    byte, so a server trickling one byte at a time would otherwise hold the request forever)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets = []

    def watch(self, sock: socket.socket) -> None:
        """Cut ``sock`` off with the request. It is watched through a duplicate descriptor: shutting that down
        ends the connection, and it stays valid when TLS takes the original socket object over."""
        with self._lock:
            self._sockets.append(socket.socket(fileno=os.dup(sock.fileno())))
            if self.expired:
                _shutdown(self._sockets[-1])

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by the peer
        pass


class _DeadlineHandler:
    """Mixed into urllib's HTTP(S) handlers: every connection opened for a request that carries a `_Deadline`
    (``request.deadline``) is watched by it from the moment it connects."""

    def do_open(self, http_class: type, req: urllib.request.Request, **kwargs: Any):  # noqa: D401 - urllib hook
        deadline = getattr(req, "deadline", None)
        if deadline is None:
            return super().do_open(http_class, req, **kwargs)

        def watched_connection(*args: Any, **conn_kwargs: Any) -> http.client.HTTPConnection:
            connection = http_class(*args, **conn_kwargs)
            connect = connection.connect

            def connect_and_watch() -> None:
                connect()
                deadline.watch(connection.sock)

            connection.connect = connect_and_watch
            return connection

        return super().do_open(watched_connection, req, **kwargs)


class _HTTPHandler(_DeadlineHandler, urllib.request.HTTPHandler):
    pass


class _HTTPSHandler(_DeadlineHandler, urllib.request.HTTPSHandler):
    pass


class _HostGate:
    """Per-host concurrency limit and minimum spacing between request starts; ``defer`` pauses the host."""

    def __init__(self, concurrency: int, interval: float, sleep: Callable[[float], None]) -> None:
        self.slots = threading.BoundedSemaphore(concurrency)
        self.interval = interval
        self.sleep = sleep
        self.lock = threading.Lock()
        self.next_start = 0.0

    def __enter__(self) -> _HostGate:
        self.slots.acquire()
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        if start > now:
            self.sleep(start - now)
        return self

    def __exit__(self, *exc: object) -> None:
        self.slots.release()

    def defer(self, seconds: float) -> None:
        with self.lock:
            self.next_start = max(self.next_start, time.monotonic() + seconds)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); `None` when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class PipelineHttpClient:
    """HTTP client shared by all stages and threads.

    Args:
        settings (`HttpSettings`): User-Agent, timeouts, retries, rate limits, cache.
        sleep (`Callable[[float], None]`, *optional*): the sleep function (tests may record the delays).
    """

    def __init__(self, settings: HttpSettings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect(), _HTTPHandler(), _HTTPSHandler())
        self._gates: dict[str, _HostGate] = {}
        self._gates_lock = threading.Lock()

    # -- public API -------------------------------------------------------------------------------------------
    def get(self, url: str, *, params: Mapping[str, Any] | None = None, cache: bool = False,
            max_bytes: int | None = None, validate: Callable[[HttpResponse], None] | None = None) -> HttpResponse:
        """GET ``url`` (with query ``params``), from the disk cache when ``cache`` and cached.

        ``validate`` may raise `HttpError` on a 200 answer that is an error in disguise (an API error object):
        a retryable one is retried like a 503, and an answer that fails validation is never cached.
        """
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params)}"
        use_cache = cache and self.settings.use_cache and self.settings.cache_dir is not None
        if use_cache and (hit := self._cache_read(url)) is not None:
            return hit
        response = self._with_retries("GET", url, None, {}, max_bytes, validate)
        if use_cache:
            self._cache_write(url, response)
        return response

    def post_json(self, url: str, payload: Any, *, headers: Mapping[str, str] | None = None) -> HttpResponse:
        """POST ``payload`` as JSON (never cached)."""
        body = json.dumps(payload).encode("utf-8")
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        return self._with_retries("POST", url, body, all_headers, None)

    # -- retries ----------------------------------------------------------------------------------------------
    def _with_retries(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str],
                      max_bytes: int | None, validate: Callable[[HttpResponse], None] | None = None) -> HttpResponse:
        attempt = 0
        while True:
            try:
                response = self._follow(method, url, body, headers, max_bytes)
                if validate is not None:
                    validate(response)
                return response
            except HttpError as err:
                if not err.retryable or attempt >= self.settings.max_retries:
                    raise
                attempt += 1
                if err.retry_after is not None:
                    # The host asked for a pause: every thread waits in the host's gate, not only this one.
                    delay = min(self.settings.max_retry_after_s, err.retry_after)
                    self._gate(err.url).defer(delay)
                else:
                    delay = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2 ** (attempt - 1))
                    self.sleep(delay)
                logger.debug("Retry %d/%d of %s in %.2fs: %s", attempt, self.settings.max_retries, url, delay, err)

    def _follow(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str],
                max_bytes: int | None) -> HttpResponse:
        for _ in range(self.settings.max_redirects + 1):
            response = self._fetch(method, url, body, headers, max_bytes)
            if not isinstance(response, str):
                return response
            url = urllib.parse.urljoin(url, response)
            method, body = ("GET", None) if method == "POST" else (method, body)
        raise HttpError(url, f"more than {self.settings.max_redirects} redirects")

    # -- one hop ----------------------------------------------------------------------------------------------
    def _fetch(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str],
               max_bytes: int | None) -> HttpResponse | str:
        """One request without redirects: the response, or the redirect target as a string."""
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise HttpError(url, f"refusing URL scheme {scheme!r}; only http and https are fetched")
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"User-Agent": self.settings.user_agent, **headers})
        with self._gate(url), _Deadline(self.settings.deadline_s) as deadline:
            request.deadline = deadline
            try:
                with self._opener.open(request, timeout=self.settings.timeout_s) as raw:
                    data = _read_limited(raw, url, max_bytes)
                    response = HttpResponse(raw.geturl(), raw.status, {k.lower(): v for k, v in raw.headers.items()},
                                            data)
            except urllib.error.HTTPError as err:
                err.close()
                if 300 <= err.code < 400 and err.headers.get("Location"):
                    return err.headers["Location"]
                raise HttpError(url, f"HTTP {err.code} {err.reason}", status=err.code,
                                retryable=err.code in RETRYABLE_STATUSES,
                                retry_after=parse_retry_after(err.headers.get("Retry-After"))) from err
            except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, resets, TLS errors
                if deadline.expired:
                    raise self._too_slow(url) from err
                reason = getattr(err, "reason", err)
                raise HttpError(url, f"network error: {type(reason).__name__}: {reason}", retryable=True) from err
            if deadline.expired:  # a body cut off by the deadline can look complete (no Content-Length)
                raise self._too_slow(url)
            return response

    def _too_slow(self, url: str) -> HttpError:
        return HttpError(url, f"no complete answer within {self.settings.deadline_s:g} s (deadline_s): the server "
                         "sends too slowly", retryable=True)  # fmt: skip

    def _gate(self, url: str) -> _HostGate:
        host = urllib.parse.urlsplit(url).netloc.lower()
        with self._gates_lock:
            if host not in self._gates:
                interval = self.settings.host_min_interval_s.get(host, self.settings.min_interval_s)
                self._gates[host] = _HostGate(self.settings.max_concurrency, interval, self.sleep)
            return self._gates[host]

    # -- cache ------------------------------------------------------------------------------------------------
    def _cache_path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return Path(self.settings.cache_dir) / digest[:2] / f"{digest}.json"

    def _cache_read(self, url: str) -> HttpResponse | None:
        path = self._cache_path(url)
        if not path.exists():
            return None
        try:
            entry = read_json(path)
            if time.time() - entry.get("time", 0) > self.settings.cache_ttl_s:
                return None
            return HttpResponse(entry["url"], entry["status"], entry["headers"], base64.b64decode(entry["body"]))
        except (ValueError, KeyError) as err:
            logger.warning("Ignoring a broken cache entry %s (%s); fetching again.", path, err)
            return None

    def _cache_write(self, url: str, response: HttpResponse) -> None:
        entry = {"time": time.time(), "url": response.url, "status": response.status, "headers": response.headers,
                 "body": base64.b64encode(response.body).decode("ascii")}
        atomic_write_json(self._cache_path(url), entry)


def _read_limited(raw: Any, url: str, max_bytes: int | None) -> bytes:
    """Read a body, refusing it (without reading it whole) when it is larger than ``max_bytes``."""
    if max_bytes is None:
        return raw.read()
    declared = raw.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HttpError(url, f"body of {declared} bytes exceeds the limit of {max_bytes}")
    chunks, size = [], 0
    while chunk := raw.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise HttpError(url, f"body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
