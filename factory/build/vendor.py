"""The Cargo driver's fetch phase: vendoring the workspace's crates and std's own into the cache
volume, once per Cargo.lock and builder, with the network on (the only phase that has it)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from factory.build.job import CARGO_CACHE, proxy_environment

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
    """The vendor directory's key: the workspace's Cargo.lock and the builder (std's lock)."""
    return short_hash(lockfile, builder_id)


def vendor_dir(key: str) -> str:
    return f"{CARGO_CACHE.path}/vendor/{key}"


def vendor_config(key: str) -> str:
    """The source-replacement config cargo vendor printed; present only once vendoring is done."""
    return f"{CARGO_CACHE.path}/vendor/{key}.toml"


# $1 std's manifest, $2 the vendor directory, $3 its config, $4 a token unique to this fetch.
# Vendors into a private directory, then moves it into place and writes the config last, so
# concurrent fetches of the same Cargo.lock cannot mix their files and a half-done one is redone.
_FETCH_SCRIPT: Final = """set -eu
tmp="$2.tmp-$4"
mkdir -p "$(dirname "$2")"
rm -rf "$tmp"
cargo vendor --locked --versioned-dirs --sync "$1" "$tmp" > "$tmp.toml"
if [ -f "$3" ]; then rm -rf "$tmp" "$tmp.toml"; exit 0; fi
rm -rf "$2"
mv -T "$tmp" "$2"
sed "s|$tmp|$2|g" "$tmp.toml" > "$3.partial-$4"
rm -f "$tmp.toml"
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
        vendor_dir(key),
        vendor_config(key),
        token,
    ]


def host_ca_bundle(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The host's CA bundle, for crate downloads through a TLS-inspecting proxy."""
    for candidate in (environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def fetch_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    env = proxy_environment(environ)
    if host_ca_bundle(environ) is not None:
        env["CARGO_HTTP_CAINFO"] = HOST_CA_TARGET
    return env
