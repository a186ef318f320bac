"""Sizes: per target the binary and the compressed image; musl vs glibc-static; scratch vs
debian:trixie-slim.

    uv run python bench/size.py

1. per target: the binary and the image as a registry stores it (compressed layers + config +
   manifest) from the benchmarks' pipeline layout (the default images' targets); binary sizes of
   all 21 targets come from bench/results/build_matrix.json when it exists;
2. the example (amd64) linked against musl (factory) vs glibc, both fully static, both with std
   compiled by -Zbuild-std and the same profile, clang-21 and lld;
3. the same amd64 binary in a FROM-scratch image vs on debian:trixie-slim (the bootstrapped base),
   both built by the engine: uncompressed size (docker) and gzip-compressed layers (docker save).
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker

from bench import common, rawbuild
from factory.build.job import CARGO_CACHE
from factory.engine import docker_engine as engine
from factory.model import targets as target_table

GREETING = "Hello, world from Tokio: [1, 2, 3]"


def image_sizes(oci: Path) -> list[dict[str, Any]]:
    """Per target manifest of an OCI layout: compressed bytes a registry stores for it."""

    def blob(digest: str) -> bytes:
        return (oci / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

    rows = []
    for entry in json.loads((oci / "index.json").read_text())["manifests"]:
        if "platform" not in entry:
            continue
        manifest = json.loads(blob(entry["digest"]))
        layers = sum(int(layer["size"]) for layer in manifest["layers"])
        rows.append(
            {
                "tag": entry["annotations"]["org.opencontainers.image.ref.name"],
                "platform": entry["platform"],
                "layers": layers,
                "total": layers + int(manifest["config"]["size"]) + int(entry["size"]),
            }
        )
    return rows


def glibc_static(client: docker.DockerClient, builder: Any, out: Path) -> tuple[int, int]:
    """(musl, glibc) sizes of the amd64 example, both static and built alike."""
    amd64 = target_table.get("amd64")
    with rawbuild.builder_box(client, builder, CARGO_CACHE.volume) as box:
        musl = rawbuild.compile_binary(box, amd64, out / "musl" / "hello_world")
        glibc = rawbuild.compile_binary(
            box,
            amd64,
            out / "glibc" / "hello_world",
            triple="x86_64-unknown-linux-gnu",
            directory=f"{CARGO_CACHE.path}/target/bench-glibc-static/amd64",
            environment={
                # glibc's targets link through clang's own driver (no -Clink-self-contained).
                "RUSTFLAGS": " ".join((*amd64.rustflags, "-Clink-arg=-fuse-ld=lld")),
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER": "clang-21",
                "CC_x86_64_unknown_linux_gnu": "clang-21",
                "AR_x86_64_unknown_linux_gnu": "llvm-ar-21",
                "CFLAGS_x86_64_unknown_linux_gnu": "-march=x86-64",
            },
        )
    for built in (musl, glibc):
        file = common.run(["file", str(built.path)]).stdout
        if "statically linked" not in file and "static-pie" not in file:
            raise RuntimeError(f"not a static binary: {file}")
        output = common.run([str(built.path)]).stdout.strip()
        if output != GREETING:
            raise RuntimeError(f"{built.path} printed {output!r}")
    return musl.path.stat().st_size, glibc.path.stat().st_size


def compressed_layers(client: docker.DockerClient, tag: str) -> int:
    """Sum of the gzip -6 sizes of an image's layer tarballs (from docker save)."""
    saved = b"".join(client.images.get(tag).save())
    total = 0
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        for member in archive.getmembers():
            if member.name.endswith("layer.tar") or member.name.startswith("blobs/"):
                data = archive.extractfile(member)
                if data is not None:
                    total += len(gzip.compress(data.read(), compresslevel=6))
    return total


def on_base(client: docker.DockerClient, binary: Path, work: Path) -> list[dict[str, Any]]:
    """The binary FROM scratch vs FROM debian:trixie-slim (the bootstrapped base)."""
    rows = []
    for name, base, target in (
        ("scratch", "scratch", "/hello_world"),
        (
            "debian:trixie-slim",
            "factory-bootstrap/debian:trixie-slim",
            "/usr/local/bin/hello_world",
        ),
    ):
        context = work / name.replace(":", "-")
        context.mkdir(parents=True, exist_ok=True)
        (context / "hello_world").write_bytes(binary.read_bytes())
        (context / "hello_world").chmod(0o755)
        (context / "Dockerfile").write_text(
            f'FROM {base}\nCOPY hello_world {target}\nENTRYPOINT ["{target}"]\n'
        )
        tag = f"factory-bench/size-{name.replace(':', '-')}:latest"
        client.images.build(path=str(context), tag=tag, labels={engine.LABEL: "true"}, rm=True)
        output = client.containers.run(tag, remove=True).decode().strip()
        if output != GREETING:
            raise RuntimeError(f"{tag} printed {output!r}")
        rows.append(
            {
                "base": name,
                "uncompressed": int(client.images.get(tag).attrs["Size"]),
                "compressed": compressed_layers(client, tag),
            }
        )
        client.images.remove(tag)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    start = common.environment()
    client = engine.client()
    builder = common.builder(client)
    config = common.pipeline_config()
    common.image_push(config, f"{common.REGISTRY}/bench-noop")
    images = image_sizes(common.layout(config))
    bins = config.parent / "dist" / "bin" / "hello-world"
    work = common.WORK / "size"
    musl, glibc = glibc_static(client, builder, work)
    bases = on_base(client, bins / "amd64" / "hello_world", work)
    matrix_path = common.RESULTS / "build_matrix.json"
    matrix = json.loads(matrix_path.read_text())["rows"] if matrix_path.exists() else []

    shrink = common.ratio(bases[1]["compressed"], bases[0]["compressed"])
    rows = []
    for image in images:
        name = next(
            t.name
            for t in target_table.TARGETS
            if t.tag_suffix == image["tag"].removeprefix("latest-")
        )
        rows.append(
            [name, (bins / name / "hello_world").stat().st_size, image["layers"], image["total"]]
        )
    parts = [
        "### Per target (the default images)\n",
        common.markdown_table(
            [
                "target",
                "binary (bytes)",
                "compressed layers (bytes)",
                "image in the registry (bytes)",
            ],
            rows,
        ),
    ]
    if matrix:
        sizes = [r["size"] for r in matrix if r.get("size")]
        parts.append(
            f"\nAll {len(sizes)} targets of the build matrix: binaries from "
            f"{min(sizes)} to {max(sizes)} bytes (see build_matrix).\n"
        )
    parts += [
        "\n### musl vs glibc, both static (amd64)\n",
        common.markdown_table(
            ["libc", "binary (bytes)", "binary"],
            [
                ["musl 1.2.5", musl, common.human_bytes(musl)],
                ["glibc 2.41 (static)", glibc, common.human_bytes(glibc)],
            ],
        ),
        f"\nglibc-static is {common.ratio(glibc, musl):.2f}x the musl binary.\n",
        "\n### The same binary FROM scratch vs on debian:trixie-slim\n",
        common.markdown_table(
            ["base", "uncompressed (bytes)", "gzip layers (bytes)"],
            [[b["base"], b["uncompressed"], b["compressed"]] for b in bases],
        ),
        f"\nThe scratch image is {shrink:.0f}x smaller compressed.\n",
    ]
    common.write_results(
        "size",
        {
            "environment": start,
            "images": images,
            "per_target": rows,
            "musl_bytes": musl,
            "glibc_static_bytes": glibc,
            "bases": bases,
        },
        "".join(parts),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
