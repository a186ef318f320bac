"""A Docker token service (the distribution spec's Bearer token flow) in the test process.

It answers ``GET /token?service=...&scope=...`` with a JWT that distribution's registry (Debian's
docker-registry 2.8) verifies against the root certificate it is configured with
(``auth.token.rootcertbundle``). What that registry checks, read in its
``registry/auth/token/token.go`` and ``accesscontroller.go``:

- the header carries the signing key: ``x5c`` (the certificate chain, leaf first, each DER in
  standard base64), verified up to a certificate of the bundle; ``alg`` is the JOSE name
  (``ES256``: the signature is ``r || s``, 32 bytes each, not DER);
- ``iss`` must equal ``issuer`` and ``aud`` (one string) must equal ``service``;
- ``exp`` and ``nbf`` are checked with 60 s of leeway either way (a token is taken up to 60 s
  after it expired), so a token meant to expire after ``lifetime`` seconds says
  ``exp = now + lifetime - 60``;
- ``access`` lists ``{"type", "name", "actions"}``: a request needs every action it implies
  (a blob mount needs ``pull`` on its source too); a token without them gets 401 with
  ``error="insufficient_scope"``, a bad or expired one 401 with ``error="invalid_token"``.

As the spec says, the service grants the intersection of what was asked and what the account
may do (a scope that is not allowed is left out, not refused); a wrong password gets 401.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.fake_http import threaded

LEEWAY = 60
"""Seconds distribution's registry adds to ``exp`` (and takes from ``nbf``)."""
SERVICE = "factory-test-registry"
ISSUER = "factory-test-issuer"
ROOT_NAME = "factory test token root"

Policy = Callable[[str, str, str], bool]
"""(user or "" when anonymous, repository, action) -> whether the account may do it."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None = None,
) -> x509.Certificate:
    """A certificate for ``key``: self-signed (a root) unless ``issuer`` (name, key) signs it."""
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signer = issuer if issuer else (subject, key)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


@dataclass(frozen=True, kw_only=True)
class Issued:
    """One answer of the token service."""

    user: str
    scopes: tuple[str, ...]
    """The scopes asked for."""
    granted: tuple[str, ...]
    """``repository:<name>:<actions>`` put in the token."""
    expires: float
    """When the registry stops taking the token (``exp`` plus its leeway), on the
    ``time.monotonic()`` clock."""


@dataclass
class TokenIssuer:
    """Signs tokens with a leaf key certified by ``root`` (the registry's root bundle)."""

    users: Mapping[str, str]
    """user -> password."""
    policy: Policy = lambda user, repository, action: bool(user)
    lifetimes: list[float] = field(default_factory=list)
    """Seconds each next token is good for (then ``default_lifetime``)."""
    default_lifetime: float = 300.0
    issued: list[Issued] = field(default_factory=list)
    address: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        root_key = ec.generate_private_key(ec.SECP256R1())
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.root = _certificate(ROOT_NAME, root_key)
        leaf = _certificate("factory test token signer", self._key, issuer=(ROOT_NAME, root_key))
        self._x5c = [base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()]

    @property
    def realm(self) -> str:
        return f"http://{self.address}/token"

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def sign(self, access: list[dict[str, object]], *, user: str = "", lifetime: float) -> str:
        """A JWT for ``access`` that the registry takes for ``lifetime`` seconds from now."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": self._x5c}
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": now + round(lifetime) - LEEWAY,
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def admin_token(self, repository: str) -> str:
        """A token for everything on ``repository``, for the tests' own checks."""
        access: list[dict[str, object]] = [
            {"type": "repository", "name": repository, "actions": ["pull", "push", "delete"]}
        ]
        return self.sign(access, user="test-admin", lifetime=600)

    def answer(self, user: str, scopes: list[str]) -> str:
        """The token for ``user`` asking ``scopes``: what the policy allows of them."""
        granted: dict[str, list[str]] = {}
        for scope in scopes:
            for one in scope.split():
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                if kind != "repository":
                    continue
                allowed = [a for a in actions.split(",") if a and self.policy(user, name, a)]
                if allowed:
                    granted.setdefault(name, [])
                    granted[name] += [a for a in allowed if a not in granted[name]]
        with self._lock:
            lifetime = self.lifetimes.pop(0) if self.lifetimes else self.default_lifetime
            self.issued.append(
                Issued(
                    user=user,
                    scopes=tuple(scopes),
                    granted=tuple(f"repository:{n}:{','.join(a)}" for n, a in granted.items()),
                    expires=time.monotonic() + lifetime,
                )
            )
        access: list[dict[str, object]] = [
            {"type": "repository", "name": n, "actions": a} for n, a in granted.items()
        ]
        return self.sign(access, user=user, lifetime=lifetime)


def _handler(issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def _reply(self, status: int, document: Mapping[str, object]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if parts.path != "/token" or query.get("service") != [SERVICE]:
                self._reply(400, {"errors": [{"code": "UNSUPPORTED", "message": "bad request"}]})
                return
            user = ""
            given = self.headers.get("Authorization", "")
            if given:
                scheme, _, value = given.partition(" ")
                name, _, password = base64.b64decode(value).decode().partition(":")
                if scheme.lower() != "basic" or issuer.users.get(name) != password:
                    self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "denied"}]})
                    return
                user = name
            token = issuer.answer(user, query.get("scope", []))
            self._reply(200, {"token": token, "access_token": token, "expires_in": 300})

    return Handler


@contextmanager
def running(issuer: TokenIssuer) -> Iterator[TokenIssuer]:
    """Serve ``issuer`` on a free loopback port for the duration of the block."""
    with threaded(_handler(issuer)) as port:
        issuer.address = f"127.0.0.1:{port}"
        yield issuer
