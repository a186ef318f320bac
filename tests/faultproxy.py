"""A fault-injecting HTTP proxy on loopback, in front of a real registry (integration tests).

Every request is forwarded to the upstream registry unchanged (its Host header too, so the
upload locations the registry hands out point back at the proxy), unless a `Fault` matches it:

- ``status``: answer ``status`` (with ``headers``, e.g. Retry-After) without forwarding;
- ``delay``: wait ``seconds`` before forwarding (a slow registry, or one slower than the
  client's timeout);
- ``drop_body``: forward the request line, the headers and half of the body, then close both
  connections: the registry sees a blob upload cut off in the middle, the client a reset;
- ``drop_reply``: forward the whole request, let the registry act on it, then close the client's
  connection without the answer (a reply lost on the way back);
- ``kill``: call ``on_kill`` (the test kills the registry container) and then forward, which
  fails: the client's connection is closed, as the registry's would be.

A fault applies ``times`` times to requests whose method is ``method`` (any when empty) and
whose path matches the regular expression ``path``. `requests` records what passed, so tests
can count retries and uploaded bytes.
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from tests.fake_http import serving

Action = Literal["status", "delay", "drop_body", "drop_reply", "kill"]
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection"})


@dataclass(kw_only=True)
class Fault:
    action: Action
    method: str = ""
    path: str = ""
    times: int = 1
    status: int = 503
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.hits < self.times
            and (not self.method or self.method == method)
            and re.search(self.path, path) is not None
        )


@dataclass(frozen=True, kw_only=True)
class Seen:
    """One request the proxy received, and what became of it."""

    method: str
    path: str
    body_bytes: int
    fault: Action | None
    status: int | None
    """What the client got (None: its connection was closed)."""
    at: float


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    faults: list[Fault] = field(default_factory=list)
    on_kill: Callable[[], None] = lambda: None
    requests: list[Seen] = field(default_factory=list)
    address: tuple[str, int] = ("127.0.0.1", 0)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def seen(self, method: str = "", path: str = "") -> list[Seen]:
        with self._lock:
            return [
                s
                for s in self.requests
                if (not method or s.method == method) and re.search(path, s.path)
            ]


def _abort(connection: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0): what a crashed peer looks like."""
    try:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
    except OSError:
        pass


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def _body(self, limit: int | None = None) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length if limit is None else min(limit, length))

        def _seen(self, size: int, fault: Fault | None, status: int | None) -> None:
            proxy.record(
                Seen(
                    method=self.command,
                    path=self.path,
                    body_bytes=size,
                    fault=fault.action if fault else None,
                    status=status,
                    at=time.monotonic(),
                )
            )

        def _drop(self, size: int, fault: Fault | None) -> None:
            self._seen(size, fault, None)
            self.close_connection = True
            _abort(self.connection)

        def _handle(self) -> None:
            fault = proxy.take(self.command, self.path)
            if fault is not None and fault.action == "status":
                size = len(self._body())
                self._seen(size, fault, fault.status)
                body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
                self.send_response(fault.status)
                for key, value in fault.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if fault is not None and fault.action == "delay":
                time.sleep(fault.seconds)
            if fault is not None and fault.action == "kill":
                proxy.on_kill()
            if fault is not None and fault.action == "drop_body":
                length = int(self.headers.get("Content-Length") or 0)
                half = self._body(length // 2)
                self._forward_partial(half)
                self._drop(len(half), fault)
                return
            body = self._body()
            try:
                status, headers, data = self._forward(body)
            except OSError:
                self._drop(len(body), fault)
                return
            if fault is not None and fault.action == "drop_reply":
                self._drop(len(body), fault)
                return
            self._seen(len(body), fault, status)
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            announced = dict((k.lower(), v) for k, v in headers).get("content-length")
            if self.command == "HEAD" and announced is not None:
                self.send_header("Content-Length", announced)
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=120)
            try:
                upstream.putrequest(self.command, self.path, skip_host=True)
                for key, value in self.headers.items():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        upstream.putheader(key, value)
                upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders(body)
                response = upstream.getresponse()
                data = response.read()
                return response.status, response.getheaders(), data
            finally:
                upstream.close()

        def _forward_partial(self, part: bytes) -> None:
            """Send the headers and ``part`` of the body upstream, then vanish."""
            try:
                upstream = socket.create_connection(proxy.upstream, timeout=10)
            except OSError:
                return
            lines = [f"{self.command} {self.path} HTTP/1.1"]
            lines += [f"{k}: {v}" for k, v in self.headers.items() if k.lower() != "connection"]
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            try:
                upstream.sendall(head + part)
                time.sleep(0.2)  # let the registry read what came before the cut
            finally:
                _abort(upstream)

        def do_GET(self) -> None:
            self._handle()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    return Handler


@contextmanager
def running(proxy: FaultProxy) -> Iterator[FaultProxy]:
    """Serve ``proxy`` on a free loopback port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.address = ("127.0.0.1", int(server.server_address[1]))
    with serving(server):
        yield proxy
