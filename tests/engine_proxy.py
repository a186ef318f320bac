"""The Docker engine on a loopback TCP port, refusing every container that mounts a host path.

factory treats an engine reached over ``tcp://`` as remote (factory.engine.locality): nothing of
this host may be mounted into its containers. The engine of these tests is this host's, so a bind
mount would work and a bug would pass unnoticed; through this proxy it cannot. Each connection is
relayed to the engine's unix socket; requests are parsed (their bodies by Content-Length or
chunked) and ``POST /containers/create`` is answered 403 with a JSON ``message``, without reaching
the engine, when its ``HostConfig.Binds`` is not empty or a ``HostConfig.Mounts`` entry has
``Type: bind``. Responses are relayed byte for byte (streamed build output, logs, events), and a
request with an ``Upgrade`` header (exec and attach hijack the connection after ``101``) turns
the connection into a raw two-way relay. ``creates`` records every container asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import re
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fake_http import serving

ENGINE_SOCKET = "/var/run/docker.sock"
_CREATE = re.compile(r"^/(?:v[\d.]+/)?containers/create(?:\?|$)")


@dataclass(frozen=True, kw_only=True)
class Create:
    """One `POST /containers/create` the proxy saw."""

    image: str
    mounts: tuple[tuple[str, str], ...]
    """(type, source) of each mount, binds included."""
    refused: str | None
    """Why it was refused, or None when it was forwarded."""


def mounts(body: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(type, source) of each mount a container-create body asks for, its Binds as `bind`."""
    host = body.get("HostConfig") or {}
    binds = [("bind", str(b).split(":", 1)[0]) for b in host.get("Binds") or []]
    listed = [(str(m.get("Type")), str(m.get("Source"))) for m in host.get("Mounts") or []]
    return tuple(binds + listed)


def _read_head(reader: IO[bytes]) -> bytes | None:
    lines = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _headers(head: bytes) -> dict[str, str]:
    found = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return found


def _read_body(reader: IO[bytes], headers: dict[str, str]) -> bytes:
    """The raw body as sent (chunk framing kept)."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = reader.readline()
            parts.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = reader.readline()
                    parts.append(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
            parts.append(reader.read(size + 2))
    return reader.read(int(headers.get("content-length") or 0))


def _dechunk(raw: bytes) -> bytes:
    out, rest = [], raw
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


@dataclass
class EngineProxy:
    upstream: str = ENGINE_SOCKET
    creates: list[Create] = field(default_factory=list)
    address: tuple[str, int] = ("127.0.0.1", 0)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"tcp://{self.address[0]}:{self.address[1]}"

    def refused(self) -> list[Create]:
        return [c for c in self.creates if c.refused is not None]

    def _judge(self, path: str, headers: dict[str, str], body: bytes) -> str | None:
        if not _CREATE.match(path):
            return None
        chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        try:
            document = json.loads(_dechunk(body) if chunked else body or b"{}")
        except ValueError:
            document = {}
        asked = mounts(document)
        paths = [source for kind, source in asked if kind == "bind"]
        refusal = (
            f"refused by the test's engine proxy: this container mounts host paths {paths}, "
            "which a remote engine does not have"
            if paths
            else None
        )
        with self._lock:
            self.creates.append(
                Create(image=str(document.get("Image")), mounts=asked, refused=refusal)
            )
        return refusal

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve(self, client: socket.socket) -> None:
        engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        engine.connect(self.upstream)
        replies = threading.Thread(target=self._pump, args=(engine, client), daemon=True)
        replies.start()
        reader = client.makefile("rb")
        try:
            while (head := _read_head(reader)) is not None:
                method, path = head.split(b" ", 2)[:2]
                headers = _headers(head)
                body = _read_body(reader, headers)
                refusal = self._judge(path.decode("latin-1"), headers, body)
                if method == b"POST" and refusal is not None:
                    message = json.dumps({"message": refusal}).encode()
                    client.sendall(
                        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(message)}\r\nConnection: close\r\n\r\n".encode()
                        + message
                    )
                    return
                engine.sendall(head + body)
                if "upgrade" in headers:  # hijacked from here on: raw bytes both ways
                    while data := reader.read1(65536):
                        engine.sendall(data)
                    break
            with contextlib.suppress(OSError):
                engine.shutdown(socket.SHUT_WR)
            replies.join()
        except OSError:
            pass
        finally:
            reader.close()
            for end in (engine, client):
                with contextlib.suppress(OSError):
                    end.close()


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.proxy.serve(self.request)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: EngineProxy) -> None:
        self.proxy = proxy
        super().__init__(proxy.address, _Handler)


@contextlib.contextmanager
def running(upstream: str = ENGINE_SOCKET) -> Iterator[EngineProxy]:
    """The proxy on a free loopback port until the block ends."""
    proxy = EngineProxy(upstream=upstream)
    server = _Server(proxy)
    proxy.address = ("127.0.0.1", int(server.server_address[1]))
    with serving(server):
        yield proxy


def write_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as DOCKER_CERT_PATH
    wants them (ca.pem, cert.pem, key.pem) plus the server's (server-cert.pem, server-key.pem)."""
    now = datetime.datetime.now(datetime.UTC)

    def issue(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        issuer: x509.Name | None,
        extensions: list[x509.ExtensionType],
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        ca = issuer is None
        usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
            encipher_only=False, decipher_only=False,
        )  # fmt: skip
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(signer, hashes.SHA256())

    def pem(name: str, item: x509.Certificate | ec.EllipticCurvePrivateKey) -> None:
        data = (
            item.public_bytes(serialization.Encoding.PEM)
            if isinstance(item, x509.Certificate)
            else item.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (directory / name).write_bytes(data)

    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("ca", "server", "client")}
    ca = issue("factory test CA", keys["ca"], keys["ca"], None, [])
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    serves = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    server = issue("127.0.0.1", keys["server"], keys["ca"], ca.subject, [loopback, serves])
    connects = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    client = issue("factory", keys["client"], keys["ca"], ca.subject, [connects])
    written: dict[str, x509.Certificate | ec.EllipticCurvePrivateKey] = {
        "ca.pem": ca,
        "cert.pem": client,
        "key.pem": keys["client"],
        "server-cert.pem": server,
        "server-key.pem": keys["server"],
    }
    for name, item in written.items():
        pem(name, item)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def tls_front(upstream: tuple[str, int], certificates: Path) -> Iterator[str]:
    """A TLS endpoint on loopback that requires a client certificate of the CA in
    ``certificates`` and relays each connection, as plain TCP, to ``upstream`` (the proxy
    above); one asyncio loop in one thread, so no TLS object is used by two threads. Yields the
    ``tcp://`` URL for DOCKER_HOST (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "server-cert.pem", certificates / "server-key.pem")
    context.load_verify_locations(certificates / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    loop = asyncio.new_event_loop()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = loop.run_until_complete(asyncio.start_server(relay, "127.0.0.1", 0, ssl=context))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def stop() -> None:
        server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
