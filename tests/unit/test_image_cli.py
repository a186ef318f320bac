"""`factory image` through main(): results, JSON and exit codes (no engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.cli import main
from factory.errors import ExitCode
from factory.image import assemble as asm
from tests.imagekit import make_project, write_ca_bundle


@pytest.fixture(autouse=True)
def _fixed_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.setattr(asm, "CA_BUNDLE", write_ca_bundle(tmp_path / "ca.crt"))


def test_image_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path / "p", ("amd64", "arm64"))
    code = main(["image", "--no-build", "--config", str(project.root / "images.toml"), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    document = json.loads(out)
    assert document["schema"] == "factory.image/v1"
    assert document["loaded"] == []
    [image] = document["images"]
    assert image["layout"] == str(project.dist / "oci" / "greeter")
    assert image["repository"] == "127.0.0.1:5000/factory-test/greeter"
    assert image["index_digest"].startswith("sha256:")
    assert [t["target"] for t in image["targets"]] == ["amd64", "arm64"]
    # the keys of factory.image/v1 are locked: scripts read them
    assert list(document) == ["schema", "images", "loaded", "pushed", "attached", "stages"]
    assert document["stages"]["note"] == "skipped (--no-build)"
    assert list(image) == [
        "image",
        "layout",
        "repository",
        "tags",
        "index_digest",
        "index_size",
        "size",
        "targets",
        "provenance",
        "ca_certificates",
    ]
    assert list(image["targets"][0]) == [
        "target",
        "platform",
        "tag_suffix",
        "manifest_digest",
        "manifest_size",
        "config_digest",
        "layer_digest",
        "layer_size",
        "binary_sha256",
        "binary_size",
    ]
    assert list(image["provenance"]) == [
        "created",
        "created_from",
        "revision",
        "source",
        "version",
        "cargo_lock",
        "builder",
    ]
    assert image["ca_certificates"].startswith(str(tmp_path / "ca.crt"))


def test_image_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path / "p", ("amd64", "arm64"))
    code = main(
        [
            "image",
            "--no-build",
            "-C",
            str(project.root / "images.toml"),
            "-t",
            "arm64",
            "--tag",
            "edge",
            "--registry",
            "registry.example:5000/team",
            "--oci-layout",
            str(tmp_path / "elsewhere"),
            "--image",
            "greeter",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "greeter  arm64   linux/arm64" in out
    assert "registry.example:5000/team/greeter:edge" in out
    index = json.loads((tmp_path / "elsewhere" / "greeter" / "index.json").read_text())
    refs = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert refs == ["edge-arm64", "edge"]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--registry", "Not A Repo"], ExitCode.USAGE, "--registry 'Not A Repo'"),
        (["--image", "nope"], ExitCode.USAGE, "no [[image]] is named 'nope'"),
        (["-t", "amd65"], ExitCode.USAGE, "Did you mean 'amd64'?"),
    ],
)
def test_image_usage_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: ExitCode,
    words: str,
) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    assert main(["image", "--no-build", "-C", str(project.root / "images.toml"), *args]) == code
    assert words in capsys.readouterr().err


def test_unvalidated_binaries_exit_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path / "p", ("amd64",), validated=False)
    assert (
        main(["image", "--no-build", "-C", str(project.root / "images.toml")])
        == ExitCode.VALIDATION
    )
    err = capsys.readouterr().err
    assert "greeter/amd64" in err
    assert "factory validate -t amd64" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, "does not exist: no binary has been validated. run `factory build` and"),
        ("{", "cannot be read (Expecting property name"),
        ('{"schema": "factory.report/v0", "results": []}', "schema 'factory.report/v0'"),
        ('{"schema": "factory.report/v1"}', "is not a factory.report/v1 report (no results list)"),
    ],
)
def test_a_missing_unreadable_or_foreign_report_refuses_every_binary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, words: str
) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    report_path = project.dist / "report.json"
    report_path.unlink()
    if text is not None:
        report_path.write_text(text)
    code = main(["image", "--no-build", "-C", str(project.root / "images.toml")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == ExitCode.VALIDATION
    assert f"{report_path} " in err
    assert words in err
    if text is not None:
        assert "Run `factory validate` again to rewrite it." in err
    assert not (project.root / "dist" / "oci" / "greeter").exists()
    assert "Traceback" not in err


def test_the_readme_documents_factory_image() -> None:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for words in ("factory image", "--load", "--oci-layout DIR", "--registry REPO", "--tag T"):
        assert words in readme, words


def test_push_sends_each_layout_to_its_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from factory.distribution import results
    from factory.distribution.transport import Transport
    from factory.publish import publisher

    calls: list[tuple[Path, str, bool]] = []

    def fake_push(
        layout: Path, repository: str, *, transport: Transport, index: bool = True
    ) -> results.PushResult:
        calls.append((layout, repository, transport.insecure))
        return results.PushResult(
            repository=repository,
            indexes=(
                results.PushedIndex(
                    tag="latest", digest="sha256:ab", size=9, reference=f"{repository}@sha256:ab"
                ),
            ),
            manifests=(),
            bytes_uploaded=2048,
            blobs_uploaded=3,
            blobs_skipped=0,
            blobs_mounted=0,
            manifests_written=4,
        )

    monkeypatch.setattr(publisher, "push_layout", fake_push)
    # the SBOM and signature attachments have their own tests (test_supply_chain.py)
    monkeypatch.setattr(
        publisher.Referring, "publish", lambda self, layout, to: self.inner.publish(layout, to)
    )
    started: list[str] = []
    monkeypatch.setattr(publisher, "ensure_local_registry", started.append)
    project = make_project(tmp_path / "p", ("amd64",))
    config = str(project.root / "images.toml")
    assert (
        main(["image", "--no-build", "-C", config, "--push", "--registry", "reg.example/team"]) == 0
    )
    out = capsys.readouterr().out
    assert calls == [(project.dist / "oci" / "greeter", "reg.example/team/greeter", False)]
    assert (
        "pushed reg.example/team/greeter (2.0 KiB uploaded, 4 manifest(s) or tag(s) written):"
        in out
    )
    assert "reg.example/team/greeter:latest = reg.example/team/greeter@sha256:ab" in out

    assert main(["image", "--no-build", "-C", config, "--push", "--insecure", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert calls[-1][1:] == ("127.0.0.1:5000/factory-test/greeter", True)
    assert started == ["reg.example/team/greeter", "127.0.0.1:5000/factory-test/greeter"]
    [pushed] = document["pushed"]
    assert pushed["bytes_uploaded"] == 2048
    assert pushed["indexes"][0]["reference"].endswith("@sha256:ab")


def test_the_pipeline_composes_the_publishers_from_the_options(tmp_path: Path) -> None:
    """--load, then the push wrapped by the SBOM and then by the signature; each publisher runs
    over every layout before the next one starts."""
    from factory.pipeline import publishing
    from factory.publish import publisher, signing, supply

    config = make_project(tmp_path / "p", ("amd64",)).config
    shared = publisher.Transports()
    assert publishing.publishers(config, publishing.PublishOptions(), shared) == []
    keys = signing.generate(tmp_path / "cosign", environ={})
    options = publishing.PublishOptions(load=True, push=True, sign_key=keys.private)
    load, push = publishing.publishers(config, options, shared)
    assert load == publisher.DockerLoad()
    assert isinstance(push, publisher.Referring)
    assert isinstance(push.attachment, supply.SignatureAttachment)
    assert isinstance(push.inner, publisher.Referring)
    assert push.inner.attachment == supply.SbomAttachment(config=config)
    assert push.inner.inner == publisher.RegistryPush(insecure=False, transports=shared)
    assert push.transports is push.inner.transports is shared, "one probe and token per run"
    unsigned = publishing.PublishOptions(push=True, sbom=False, insecure=True)
    assert publishing.publishers(config, unsigned, shared) == [
        publisher.RegistryPush(insecure=True, transports=shared)
    ]

    calls: list[tuple[str, str]] = []

    class Recording:
        def __init__(self, name: str) -> None:
            self.name = name

        def publish(self, layout: asm.LayoutResult, destination: str) -> publisher.Published:
            calls.append((self.name, layout.image))
            return publisher.Published()

    layouts = [
        asm.assemble(
            config, config.image, None, tmp_path / name, environ={"SOURCE_DATE_EPOCH": "0"}
        )[0]
        for name in ("a", "b")
    ]
    publishing.publish_all([Recording("load"), Recording("push")], layouts)
    assert [name for name, _ in calls] == ["load", "load", "push", "push"]


def test_a_second_image_push_writes_nothing_to_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`factory image --push` twice into the in-process registry: the second run (the no-op)
    sends no PUT, POST, PATCH or DELETE, for the image or its SBOM, and says what it skipped."""
    from factory.distribution import push as registry
    from tests.fake_http import serve
    from tests.fake_registry import FakeRegistry

    project = make_project(tmp_path / "p", ("amd64", "arm64"))
    config = str(project.root / "images.toml")
    with serve(FakeRegistry()) as server:
        repository = f"{server.address}/team"
        argv = ["image", "--no-build", "-C", config, "--push", "--registry", repository]
        assert main([*argv, "--json"]) == 0
        first = json.loads(capsys.readouterr().out)
        registry._KNOWN_BLOBS.clear()
        start = len(server.requests)
        assert main([*argv, "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        second = server.requests[start:]
        writes = [
            (r.method, r.path) for r in second if r.method in ("PUT", "POST", "PATCH", "DELETE")
        ]
        assert main(argv) == 0
        human = capsys.readouterr().out
    assert writes == []
    # /v2/ is asked twice: whether a registry answers there at all (else factory would start
    # one), and the probe of the one transport the push and the SBOM share
    assert len([r for r in second if r.path == "/v2/"]) == 2
    [pushed] = again["pushed"]
    written = first["pushed"][0]["manifests_written"]
    assert written == 8  # 2 manifests by digest, 2 targets x 2 tags, the index's 2 tags
    assert (pushed["manifests_written"], pushed["manifests_skipped"]) == (0, written)
    [attached] = again["attached"]
    assert (attached["manifests_written"], attached["manifests_skipped"]) == (0, 1)
    assert attached["digest"] == first["attached"][0]["digest"]
    assert f"pushed {repository}/greeter (nothing uploaded, nothing written):" in human
