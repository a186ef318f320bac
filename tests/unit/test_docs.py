"""The documentation stays current: its links and anchors resolve, the repository paths and tests
it names exist, the README stays short and leads to every page of docs/, and its test command is
the one CI runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
DOCUMENTS = (README, ROOT / "BENCHMARKS.md", *PAGES)
README_MAX_LINES = 200

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`\n]+)`")
_HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)
# top-level folders whose paths the prose names in backticks
_ROOTS = ("factory/", "tests/", "dockerfiles/", "bench/", "examples/", "docs/", ".ci/")
_TEST_FILE = re.compile(r"^(?:[\w/]+/)?test_\w+\.py(?:::\w+)*")


def _prose(path: Path) -> str:
    """The text of a Markdown file without its fenced code blocks."""
    return _FENCE.sub("", path.read_text(encoding="utf-8"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in _HEADING.findall(_prose(path)):
        base = slug(heading)
        anchor, n = base, 0
        while anchor in found:
            n += 1
            anchor = f"{base}-{n}"
        found.add(anchor)
    return found


def test_slug_follows_github() -> None:
    assert slug("The table stays the one source: `factory bazel sync`") == (
        "the-table-stays-the-one-source-factory-bazel-sync"
    )
    assert slug("The host: doctor, binfmt_misc, clean") == "the-host-doctor-binfmt_misc-clean"
    assert slug("Supply chain: SBOM, signatures, referrers") == (
        "supply-chain-sbom-signatures-referrers"
    )


def _links(path: Path) -> Iterator[str]:
    for target in _LINK.findall(_prose(path)):
        if not re.match(r"^[a-z]+:", target):  # not https:, mailto:, ...
            yield target


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_relative_links_and_anchors_resolve(document: Path) -> None:
    broken = []
    for target in _links(document):
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {_name(linked)}")
    assert not broken, f"{_name(document)}: " + "; ".join(broken)


def _named_paths(path: Path) -> Iterator[str]:
    for code in _CODE.findall(_prose(path)):
        for word in code.split():
            if word.startswith(_ROOTS) and not re.search(r"[<>*…{}|]", word):
                yield word.rstrip(".,;:)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_named_repository_paths_exist(document: Path) -> None:
    missing = [word for word in _named_paths(document) if not (ROOT / word.split("::")[0]).exists()]
    assert not missing, f"{_name(document)} names paths that do not exist: {missing}"


def _test_file(name: str) -> Path | None:
    """A test file named by path, or by its bare name when it is unique under tests/."""
    if "/" in name:
        return ROOT / name if (ROOT / name).is_file() else None
    found = sorted((ROOT / "tests").rglob(name))
    return found[0] if len(found) == 1 else None


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_cited_tests_exist(document: Path) -> None:
    wrong = []
    for code in _CODE.findall(_prose(document)):
        match = _TEST_FILE.match(code)
        if match is None:
            continue
        file_name, *names = match.group(0).split("::")
        test_file = _test_file(file_name)
        if test_file is None:
            wrong.append(f"{code}: no single file {file_name} under tests/")
            continue
        source = test_file.read_text(encoding="utf-8")
        wrong += [
            f"{code}: {_name(test_file)} defines no {name}"
            for name in names
            if not re.search(rf"^\s*(?:async )?(?:def|class) {name}\b", source, re.MULTILINE)
        ]
    assert not wrong, f"{_name(document)}: " + "; ".join(wrong)


def test_the_readme_is_short() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move reference to docs/"
    )


def test_the_readme_links_every_page_of_docs() -> None:
    assert PAGES, "docs/ has no page"
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in _links(README)}
    unlinked = [_name(page) for page in PAGES if page.resolve() not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_the_readme_test_command_is_what_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The two commands", 1)[1]
    block = re.search(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block is not None, "README.md: no sh block under 'The two commands'"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["uv run factory image --push", "uv run pytest"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "uv run pytest" in (line.strip() for line in ci), ".ci/run does not run uv run pytest"


def test_the_layout_table_names_modules_that_exist() -> None:
    """Each row of development.md's layout table names its folder, then modules of that folder."""
    missing = []
    for row in (DOCS / "development.md").read_text(encoding="utf-8").splitlines():
        folder = re.match(r"^\| `(factory/\w+/)` \|", row)
        if folder is None:
            continue
        for module in re.findall(r"`(\w+\.(?:py|json))`", row):
            if not (ROOT / folder.group(1) / module).is_file():
                missing.append(folder.group(1) + module)
    assert not missing, f"docs/development.md's layout names modules that do not exist: {missing}"
