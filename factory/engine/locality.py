"""Where the Docker engine runs: on this host, or on another one (a remote engine).

An engine is on this host when DOCKER_HOST is unset (the default socket), a ``unix://`` socket
or a Windows ``npipe://``; it is remote for ``tcp://`` (also on loopback: what it sees as a host
path is not ours to assume), ``ssh://`` and ``http(s)://``. ``FACTORY_REMOTE_ENGINE=1`` makes
factory treat any engine as remote (a unix socket forwarded from another host, or a test that
must prove no host path is mounted); ``=0`` as local (a TCP engine known to share this host's
filesystem).

With a remote engine nothing of this host is mounted into a container: the workspace is
uploaded into a volume through the engine's API (factory.engine.transfer), binaries for smoke
runs are copied in, outputs are copied out; the things that only make sense on the engine's own
host (the local registry it would start, binfmt_misc) are refused with a message that says why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from factory.errors import EngineError

HOST_VARIABLE: Final = "DOCKER_HOST"
FORCE_VARIABLE: Final = "FACTORY_REMOTE_ENGINE"
DEFAULT_SOCKET: Final = "unix:///var/run/docker.sock"
_LOCAL_SCHEMES: Final = frozenset({"unix", "npipe"})
_YES: Final = frozenset({"1", "true", "yes", "on"})
_NO: Final = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, kw_only=True)
class Locality:
    """The engine's address and whether it is on another host than this process."""

    url: str
    remote: bool
    tls: bool
    """DOCKER_TLS_VERIFY is on: the engine's certificate is checked against DOCKER_CERT_PATH."""

    @property
    def plain_tcp(self) -> bool:
        """A ``tcp://`` engine without TLS: whoever reaches its port is root on its host."""
        return self.scheme == "tcp" and not self.tls

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        """The engine's host as DOCKER_HOST names it (``this host`` for a local socket)."""
        return urlsplit(self.url).hostname or "this host"


def locality(environ: Mapping[str, str] = os.environ) -> Locality:
    url = environ.get(HOST_VARIABLE, "").strip() or DEFAULT_SOCKET
    scheme = urlsplit(url).scheme or "unix"
    forced = environ.get(FORCE_VARIABLE, "").strip().lower()
    if forced in _YES:
        remote = True
    elif forced in _NO:
        remote = False
    else:
        remote = scheme not in _LOCAL_SCHEMES
    tls = environ.get("DOCKER_TLS_VERIFY", "").strip() not in ("", "0")
    return Locality(url=url, remote=remote, tls=tls)


def plain_tcp_warning(where: Locality) -> str:
    return (
        f"DOCKER_HOST={where.url} is plain TCP: anyone who can reach that port has root on "
        f"{where.host}. Use TLS (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH with ca.pem, cert.pem, "
        "key.pem) or ssh://user@host (docs/remote-engines.md)."
    )


CA_BUNDLE_VARIABLES: Final = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def tls_hint(where: Locality, environ: Mapping[str, str] = os.environ) -> str:
    """What to check when a TLS engine does not answer: requests lets REQUESTS_CA_BUNDLE (or
    CURL_CA_BUNDLE) replace the CA that docker-py takes from DOCKER_CERT_PATH."""
    if not where.tls:
        return ""
    hint = "Check DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) against the engine's certificates."
    bundles = [name for name in CA_BUNDLE_VARIABLES if environ.get(name)]
    if bundles:
        hint += (
            f" {' and '.join(bundles)} is set, and replaces DOCKER_CERT_PATH's ca.pem for the "
            "engine's TLS (a behaviour of requests, which docker-py uses): add the engine's CA "
            "to that bundle, or unset it for factory."
        )
    return hint


def refuse_when_remote(what: str, why: str, *, hint: str) -> None:
    """Raise EngineError when the engine is remote: ``what`` needs the engine on this host.
    ``why`` may name the engine's host as ``{host}``."""
    where = locality()
    if where.remote:
        raise EngineError(
            f"{what} is not possible with a remote engine ({where.url}): "
            f"{why.format(host=where.host)}",
            hint=hint,
        )
