"""factory.image.assemble: validated binaries in, reproducible OCI layouts out."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from factory.distribution import media_types
from factory.errors import ConfigError, UsageError, ValidationError
from factory.image import assemble as asm
from factory.image import oci, provenance
from factory.model import config as cfg
from factory.model.targets import BY_NAME, select
from tests.imagekit import Project, make_project, write_ca_bundle, write_report

EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}
SCRAMBLED = ("arm64_v9a", "amd64_v3", "arm64", "amd64", "amd64_v2")


def _assemble(
    project: Project, out: Path, *, environ: dict[str, str] | None = None, **kw: Any
) -> asm.LayoutResult:
    ca = write_ca_bundle(project.root / "ca.crt")
    [result] = asm.assemble(
        project.config,
        project.config.image,
        kw.pop("targets", None),
        out,
        ca_bundle=ca,
        environ=EPOCH if environ is None else environ,
        **kw,
    )
    return result


def _blob(layout: Path, digest: str) -> Any:
    return json.loads(oci.read_blob(layout, digest))


def _tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def test_two_assemblies_give_the_same_bytes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SCRAMBLED)
    first = _assemble(project, tmp_path / "one")
    second = _assemble(project, tmp_path / "two")
    assert first.index.digest == second.index.digest
    assert _tree(first.path) == _tree(second.path)
    assert len(_tree(first.path)) == 2 + 1 + 3 * len(SCRAMBLED)  # oci-layout, index.json, blobs


def test_the_time_changes_the_digests(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    first = _assemble(project, tmp_path / "one")
    later = _assemble(project, tmp_path / "two", environ={"SOURCE_DATE_EPOCH": "1700000001"})
    assert first.index.digest != later.index.digest


def test_the_index_lists_baselines_first_then_variants_in_table_order(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SCRAMBLED)
    result = _assemble(project, tmp_path / "oci")
    index = _blob(result.path, result.index.digest)
    platforms = [
        "/".join(
            filter(
                None,
                [m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")],
            )
        )
        for m in index["manifests"]
    ]
    assert platforms == [
        "linux/amd64",
        "linux/arm64",
        "linux/amd64/v2",
        "linux/amd64/v3",
        "linux/arm64/v9",
    ]
    assert [i.target.name for i in result.images] == [
        "amd64",
        "arm64",
        "amd64_v2",
        "amd64_v3",
        "arm64_v9a",
    ]
    assert asm.index_order(select(["all"]))[:2] == (BY_NAME["amd64"], BY_NAME["arm64"])


def test_the_layout_names_per_target_manifests_then_index_tags(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("arm64", "amd64_v3", "amd64"))
    result = _assemble(project, tmp_path / "oci")
    refs = json.loads((result.path / "index.json").read_text())["manifests"]
    names = [r["annotations"][media_types.REF_NAME] for r in refs]
    assert names == [
        "latest-amd64",
        "latest-arm64",
        "latest-amd64-v3",
        "1.0-amd64",
        "1.0-arm64",
        "1.0-amd64-v3",
        "latest",
        "1.0",
    ]
    by_name = {r["annotations"][media_types.REF_NAME]: r for r in refs}
    assert by_name["latest"]["digest"] == by_name["1.0"]["digest"] == result.index.digest
    assert by_name["latest"]["mediaType"] == media_types.MEDIA_INDEX
    v3 = next(i for i in result.images if i.target.name == "amd64_v3")
    assert by_name["1.0-amd64-v3"]["digest"] == v3.manifest.digest
    assert by_name["1.0-amd64-v3"]["platform"]["variant"] == "v3"
    # every blob the layout names is there and matches its digest
    for ref in refs:
        oci.read_blob(result.path, ref["digest"])


def test_tags_from_the_command_line_replace_the_images_tags(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    result = _assemble(project, tmp_path / "oci", tags=["v1"])
    refs = json.loads((result.path / "index.json").read_text())["manifests"]
    assert [r["annotations"][media_types.REF_NAME] for r in refs] == ["v1-amd64", "v1"]
    with pytest.raises(UsageError, match="cannot be a tag"):
        _assemble(project, tmp_path / "oci", tags=["-bad"])


def test_the_layer_holds_the_binary_certificates_and_users(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    result = _assemble(project, tmp_path / "oci")
    [image] = result.images
    layer = gzip.decompress(oci.read_blob(result.path, image.layer.digest))
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        passwd = tar.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
        greet = tar.extractfile("greet").read()  # type: ignore[union-attr]
    assert sorted(members) == [
        "etc",
        "etc/group",
        "etc/passwd",
        "etc/ssl",
        "etc/ssl/certs",
        "etc/ssl/certs/ca-certificates.crt",
        "greet",
    ]
    assert members["greet"].mode == 0o755
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, 1700000000)}
    assert "nonroot:x:65532:65532:" in passwd
    assert greet == project.binary("amd64").read_bytes()


def test_config_and_annotations(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("arm64_v9a", "arm64"))
    result = _assemble(project, tmp_path / "oci")
    v9 = next(i for i in result.images if i.target.name == "arm64_v9a")
    manifest = _blob(result.path, v9.manifest.digest)
    config = _blob(result.path, manifest["config"]["digest"])
    layer = gzip.decompress(oci.read_blob(result.path, manifest["layers"][0]["digest"]))
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm64", "v9")
    assert config["rootfs"]["diff_ids"] == [media_types.sha256_digest(layer)]
    assert config["config"]["Entrypoint"] == ["/greet"]
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Env"] == ["GREETING=hello"]
    assert config["config"]["Labels"]["org.example.team"] == "tools"
    assert config["created"] == "2023-11-14T22:13:20Z"
    [history] = config["history"]
    assert "/greet" in history["created_by"]
    assert "arm64_v9a" in history["created_by"]
    assert str(project.root / "ca.crt") in history["comment"]
    assert manifest["annotations"] == {
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
        "org.opencontainers.image.title": "greeter",
        "org.opencontainers.image.base.name": "scratch",
        "org.opencontainers.image.source": "https://example.org/greet",
        "org.opencontainers.image.version": "2.3.4",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.factory.builder": provenance.builder_digest(
            project.config.dockerfile_path, project.config.builder.base
        ),
    }
    assert re.fullmatch(r"[0-9a-f]{16}", manifest["annotations"]["org.factory.builder"])
    assert result.ca_certificates is not None
    assert hashlib.sha256((project.root / "ca.crt").read_bytes()).hexdigest() in (
        result.ca_certificates
    )


def test_the_commit_time_and_revision_when_there_is_no_source_date_epoch(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": "@1600000000 +0000",
        "GIT_COMMITTER_DATE": "@1600000000 +0000",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    for args in (["init", "-q"], ["add", "ws"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *args], cwd=project.root, env=env, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True, check=True
    ).stdout.strip()
    # a later commit outside the workspace changes neither the time nor the revision
    later = {**env, "GIT_COMMITTER_DATE": "@1650000000 +0000"}
    for args in (["add", "images.toml"], ["commit", "-q", "-m", "y"]):
        subprocess.run(["git", *args], cwd=project.root, env=later, check=True)
    result = _assemble(project, tmp_path / "oci", environ={})
    assert result.provenance.created == 1600000000
    assert result.provenance.revision == head
    manifest = _blob(result.path, result.images[0].manifest.digest)
    assert manifest["annotations"]["org.opencontainers.image.revision"] == head
    assert manifest["annotations"]["org.opencontainers.image.created"] == "2020-09-13T12:26:40Z"


def test_an_unvalidated_binary_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64", "arm64"), validated=False)
    with pytest.raises(ValidationError) as caught:
        _assemble(project, tmp_path / "oci")
    assert caught.value.exit_code == 5
    assert "greeter/amd64" in caught.value.message
    assert "factory validate -t amd64 -t arm64" in caught.value.message
    assert not (tmp_path / "oci").exists()


def test_a_binary_rebuilt_after_validation_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64", "arm64"))
    project.binary("arm64").write_bytes(b"\x7fELF changed")
    with pytest.raises(ValidationError, match=r"greeter/arm64 .*rebuilt since") as caught:
        _assemble(project, tmp_path / "oci")
    assert "greeter/amd64" not in caught.value.message


def test_a_failed_entry_does_not_count_even_with_the_right_digest(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    data = project.binary("amd64").read_bytes()
    write_report(
        project,
        [
            {
                "image": "other",
                "target": "amd64",
                "sha256": hashlib.sha256(data).hexdigest(),
                "passed": True,
            },
            {
                "image": "greeter",
                "target": "amd64",
                "sha256": hashlib.sha256(data).hexdigest(),
                "passed": False,
            },
        ],
    )
    with pytest.raises(ValidationError, match="has not passed validation"):
        _assemble(project, tmp_path / "oci")


def test_missing_report_and_binaries_name_the_commands_to_run(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    (project.dist / "report.json").unlink()
    with pytest.raises(ValidationError, match="run `factory build` and `factory validate` first"):
        _assemble(project, tmp_path / "oci")
    with pytest.raises(UsageError, match=r"no built binary for arm64 .*factory build -t arm64"):
        _assemble(project, tmp_path / "oci", targets=select(["arm64"]))
    (project.dist / "report.json").write_text('{"schema": "something/v9"}')
    with pytest.raises(ValidationError, match=r"is not a factory\.report/v1 report"):
        _assemble(project, tmp_path / "oci")


def _with_image(project: Project, **changes: Any) -> cfg.Config:
    import dataclasses

    image = dataclasses.replace(project.config.image[0], **changes)
    return dataclasses.replace(project.config, image=(image,))


def test_image_settings_that_cannot_work_are_config_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    ca = write_ca_bundle(tmp_path / "ca.crt")
    for changes, problem in (
        ({"user": "nonroot"}, None),
        ({"entrypoint": ("greet",)}, "`entrypoint` .greet. must start with the absolute path"),
        ({"entrypoint": ("/etc/passwd",)}, "given twice"),
        ({"user": "nonroot", "files": cfg.FilesConfig(passwd=False)}, "no /etc/passwd"),
        ({"user": "65532:staff"}, "names 'staff', but it knows only root and nonroot"),
    ):
        config = _with_image(project, **changes)
        if problem is None:
            asm.assemble(config, config.image, None, tmp_path / "oci", ca_bundle=ca, environ=EPOCH)
            continue
        with pytest.raises(ConfigError, match=problem):
            asm.assemble(config, config.image, None, tmp_path / "oci", ca_bundle=ca, environ=EPOCH)
    config = _with_image(project, files=cfg.FilesConfig(ca_certificates=True))
    with pytest.raises(ConfigError, match=r"nowhere.crt cannot be read.*ca-certificates"):
        asm.assemble(
            config, config.image, None, tmp_path / "oci", ca_bundle=tmp_path / "nowhere.crt"
        )


def test_an_entrypoint_elsewhere_puts_the_binary_there(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    config = _with_image(
        project, entrypoint=("/app/bin/greet", "--loud"), files=cfg.FilesConfig(), user=None
    )
    [result] = asm.assemble(config, config.image, None, tmp_path / "oci", environ=EPOCH)
    layer = gzip.decompress(oci.read_blob(result.path, result.images[0].layer.digest))
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        assert tar.getnames() == ["app", "app/bin", "app/bin/greet"]
    assert result.ca_certificates is None
    config_doc = _blob(result.path, result.images[0].config.digest)
    assert config_doc["config"]["Entrypoint"] == ["/app/bin/greet", "--loud"]
    assert "User" not in config_doc["config"]
