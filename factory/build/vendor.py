"""The Cargo driver's fetch phase: vendoring the workspace's crates and std's own into the cache
volume, once per Cargo.lock and builder, with the network on (the only phase that has it)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Final

from factory.build.job import CARGO_CACHE, proxy_environment
from factory.engine.docker_engine import Container
from factory.engine.transfer import copy_file_in

STD_LIBRARY: Final = "lib/rustlib/src/rust/library/Cargo.toml"
"""std's workspace manifest, relative to `rustc --print sysroot`."""
HOST_CA_TARGET: Final = "/etc/factory/host-ca.crt"


def short_hash(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def vendor_key(lockfile: bytes, builder_id: str) -> str:
    """The key of one vendoring: the workspace's Cargo.lock and the builder (std's lock)."""
    return short_hash(lockfile, builder_id)


VENDOR: Final = f"{CARGO_CACHE.path}/vendor"
CRATES: Final = f"{VENDOR}/crates"
"""Every crate ever vendored into this cache, one directory per name and version
(``--versioned-dirs``), never rewritten: one path for a crate whatever the workspace, so that
what is compiled from it (std's own dependencies above all) is the same unit for cargo in every
workspace (factory.build.warm_start), and the paths compiled into binaries (panic locations) do
not depend on the workspace, its Cargo.lock or the builder's image id."""


def vendor_config(key: str) -> str:
    """The source-replacement config for one vendoring; present only once it is done."""
    return f"{VENDOR}/lock-{key}.toml"


# $1 std's manifest, $2 the shared crates directory, $3 the config, $4 a token unique to this
# fetch. Vendors into a private directory, moves the crate directories the shared one lacks into
# it (a rename each: a reader never sees a half-copied crate, and one already there is never
# touched), then writes the config last, so a half-done fetch is redone. Directories of the
# layout before the shared one (one per Cargo.lock) are removed.
_FETCH_SCRIPT: Final = """set -eu
root="$(dirname "$2")"
tmp="$root/.tmp-$4"
trap 'rm -rf "$tmp" "$tmp.toml"' EXIT
mkdir -p "$2"
for old in "$root"/*; do
  case "${old##*/}" in crates|lock-*) ;; *) rm -rf "$old" ;; esac
done
cargo vendor --locked --versioned-dirs --sync "$1" "$tmp" > "$tmp.toml"
for crate in "$tmp"/*/; do
  name="$(basename "$crate")"
  [ -e "$2/$name" ] || mv -T "$crate" "$2/$name" 2>/dev/null || true
done
[ -f "$3" ] && exit 0
sed "s|$tmp|$2|g" "$tmp.toml" > "$3.partial-$4"
mv "$3.partial-$4" "$3"
"""


def fetch_command(std_manifest: str, key: str, token: str) -> list[str]:
    """Vendor the workspace's and std's crates; the config appears last (atomically)."""
    return [
        "sh",
        "-c",
        _FETCH_SCRIPT,
        "fetch",
        std_manifest,
        CRATES,
        vendor_config(key),
        token,
    ]


def host_ca_bundle(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The host's CA bundle, for crate downloads through a TLS-inspecting proxy."""
    for candidate in (environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def copy_ca_bundle(box: Container, environ: Mapping[str, str] = os.environ) -> None:
    """The host's CA bundle (if any) to HOST_CA_TARGET in the fetch container, copied through
    the engine's API (a remote engine has no path of this host to mount)."""
    ca = host_ca_bundle(environ)
    if ca is not None:
        copy_file_in(box, ca, PurePosixPath(HOST_CA_TARGET))


def fetch_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    env = proxy_environment(environ)
    if host_ca_bundle(environ) is not None:
        env["CARGO_HTTP_CAINFO"] = HOST_CA_TARGET
    return env
