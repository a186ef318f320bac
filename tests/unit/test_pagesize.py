"""Smoke runs under a 16K-page kernel, without an engine or QEMU: the initramfs factory writes,
the result read back from a console with kernel noise, and how a boot is judged.

The console texts in tests/unit/data/ are real: the guest's serial output, as qemu-system-aarch64
printed it in the page-size image, booting Debian's 16K-page kernel with factory's /init.
"""

from __future__ import annotations

import base64
import dataclasses
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from factory.build.binary import Binary
from factory.engine import pagesize_image
from factory.model import targets
from factory.model.config import SmokeConfig
from factory.model.targets import Arch
from factory.validate import elf as elfcheck
from factory.validate import guest, initramfs, pagesize
from factory.validate.pagesize import PageSizeResult, QemuGuest
from factory.validate.report import TargetResult
from factory.validate.smoke import RunResult
from factory.validate.stage import GuestOnDemand, Subject, validate, validate_one
from tests.elfbin import static_executable

DATA = Path(__file__).parent / "data"
ARM64 = targets.get("arm64")
AMD64 = targets.get("amd64")
PAGES = SmokeConfig(args=("x",), stdout=r"^hello", page_sizes=(4096, 16384), timeout=20)


# --- the newc writer ----------------------------------------------------------------------


def read_newc(data: bytes) -> list[tuple[str, int, int, tuple[int, int], bytes]]:
    """(name, inode, mode, (rdev major, minor), data) of each member, read as the kernel does."""
    members: list[tuple[str, int, int, tuple[int, int], bytes]] = []
    at = 0
    while True:
        assert data[at : at + 6] == b"070701", at
        fields = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        inode, mode, size, namesize = fields[0], fields[1], fields[6], fields[11]
        name_at = at + 110
        name = data[name_at : name_at + namesize - 1].decode()
        assert data[name_at + namesize - 1] == 0
        body_at = (name_at + namesize + 3) & ~3
        body = data[body_at : body_at + size]
        at = (body_at + size + 3) & ~3
        if name == "TRAILER!!!":
            assert at == len(data)
            return members
        members.append((name, inode, mode, (fields[9], fields[10]), body))


def test_newc_is_what_the_kernel_reads_and_the_same_every_time() -> None:
    entries = [
        initramfs.Entry.file("init", b"\x7fELF12345", executable=True),
        initramfs.Entry.directory("dev"),
        initramfs.Entry.char_device("dev/console", 5, 1),
        initramfs.Entry.file("a/odd", b"xyz"),
    ]
    data = initramfs.newc(entries)
    assert data == initramfs.newc(entries)
    assert len(data) % 4 == 0
    assert read_newc(data) == [
        ("init", 1, stat.S_IFREG | 0o755, (0, 0), b"\x7fELF12345"),
        ("dev", 2, stat.S_IFDIR | 0o755, (0, 0), b""),
        ("dev/console", 3, stat.S_IFCHR | 0o600, (5, 1), b""),
        ("a/odd", 4, stat.S_IFREG | 0o644, (0, 0), b"xyz"),
    ]
    assert b"00000000" * 2 in data  # uid, gid and mtime are 0


@pytest.mark.parametrize(
    "entries",
    [
        [initramfs.Entry.file("/init", b"")],
        [initramfs.Entry.file("x", b""), initramfs.Entry.file("x", b"")],
        [initramfs.Entry(path="d", mode=stat.S_IFDIR | 0o755, data=b"no")],
    ],
    ids=["absolute", "twice", "data in a directory"],
)
def test_newc_refuses_what_the_kernel_would_misread(entries: list[initramfs.Entry]) -> None:
    with pytest.raises(ValueError):
        initramfs.newc(entries)


def test_the_guest_initramfs_holds_init_the_binary_and_its_argv() -> None:
    data = guest.initramfs(b"INIT", b"BINARY", "hello", ["x", "two words", ""])
    members = {name: (mode, rdev, body) for name, _, mode, rdev, body in read_newc(data)}
    assert list(members) == [
        "init",
        "dev",
        "dev/console",
        "proc",
        "tmp",
        "smoke",
        "smoke/argv",
        "smoke/hello",
    ]
    assert members["init"] == (stat.S_IFREG | 0o755, (0, 0), b"INIT")
    assert members["dev/console"][:2] == (stat.S_IFCHR | 0o600, (5, 1))
    assert members["smoke/argv"][2] == b"/smoke/hello\0x\0two words\0\0"
    assert members["smoke/hello"] == (stat.S_IFREG | 0o755, (0, 0), b"BINARY")


@pytest.mark.parametrize(
    ("name", "args", "words"),
    [
        ("hello", ["a\0b"], "NUL"),
        ("hello", ["x"] * 300, "too long"),
        ("hello", ["x" * 70000], "too long"),
        ("a/b", [], "not a file name"),
    ],
)
def test_the_guest_initramfs_refuses_what_init_cannot_read(
    name: str, args: list[str], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        guest.initramfs(b"INIT", b"BINARY", name, args)


# --- reading the result back --------------------------------------------------------------


def line(key: str, value: str) -> str:
    return f"{guest.MARKER}{key} {value} {guest.checksum(key, value)}"


def record(status: str = "exited:0", stdout: bytes = b"hello\n", stderr: bytes = b"") -> str:
    values = [
        ("begin", "1"),
        ("kernel", "6.12.118+deb13-arm64-16k"),
        ("page_size", "16384"),
        ("status", status),
        ("stdout", base64.b64encode(stdout).decode()),
        ("stderr", base64.b64encode(stderr).decode()),
        ("stdout_dropped", "0"),
        ("stderr_dropped", "0"),
        ("run_ns", "36312031"),
        ("end", "1"),
    ]
    return "\r\n".join(line(k, v) for k, v in values) + "\r\n"


def test_a_real_console_with_kernel_messages_is_read() -> None:
    """A boot without `quiet`: 250 lines of kernel messages before the record."""
    ran = guest.parse((DATA / "pagesize-console-noisy.txt").read_text())
    assert isinstance(ran, guest.GuestRun), ran
    assert ran.page_size == 16384
    assert ran.kernel.endswith("-arm64-16k")
    assert (ran.exit_code, ran.signal) == (134, 6)
    assert ran.stderr == "pagesize4k: page size is not 4096 (16384)\n"
    assert ran.stdout == ""
    assert 0 < ran.run_seconds < 5


def test_a_real_quiet_console_is_read() -> None:
    ran = guest.parse((DATA / "pagesize-console-quiet.txt").read_text())
    assert isinstance(ran, guest.GuestRun), ran
    assert (ran.exit_code, ran.signal, ran.page_size) == (0, None, 16384)
    assert ran.stdout == "hello from 1 args\n"


def test_kernel_messages_before_between_and_inside_the_record_do_not_change_it() -> None:
    lines = record(stderr=b"<jemalloc>: Unsupported system page size\n").splitlines()
    noisy = (
        "[    0.000000] Booting Linux on physical CPU 0x0000000000\n"
        + "\n".join(lines[:3])
        + "\n[    2.01] random: crng init done\n"
        + "[    2.02] some driver: "
        + "\n".join(lines[3:])
        + "\n[    2.08] reboot: Power down\n"
    )
    ran = guest.parse(noisy)
    assert isinstance(ran, guest.GuestRun), ran
    assert ran.stderr == "<jemalloc>: Unsupported system page size\n"
    assert ran.stdout == "hello\n"


def test_a_line_a_kernel_message_broke_into_is_garbled_not_misread() -> None:
    text = record(stdout=b"a long enough output to be broken into\n")
    value = base64.b64encode(b"a long enough output to be broken into\n").decode()
    broken = text.replace(value, value[:10] + "[    3.1] oops\r\n" + value[10:])
    assert (
        guest.parse(broken) == "the guest's result lacks stdout (1 line(s) failed their checksum)"
    )


@pytest.mark.parametrize(
    ("console", "reason"),
    [
        ("", "the guest printed no result"),
        ("[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\n", "no result"),
        (line("begin", "1") + "\n" + line("status", "error:no-argv") + "\n", "(no-argv)"),
        (record(status="stopped:3"), "cannot be read"),
        (record().replace(line("run_ns", "36312031"), ""), "lacks run_ns"),
    ],
)
def test_what_is_not_a_result_says_why(console: str, reason: str) -> None:
    found = guest.parse(console)
    assert isinstance(found, str)
    assert reason in found


def test_a_signal_is_a_shell_style_exit_code() -> None:
    ran = guest.parse(record(status="signaled:11"))
    assert isinstance(ran, guest.GuestRun)
    assert (ran.exit_code, ran.signal) == (139, 11)


def test_output_init_did_not_keep_is_counted() -> None:
    ran = guest.parse(record().replace(line("stdout_dropped", "0"), line("stdout_dropped", "7")))
    assert isinstance(ran, guest.GuestRun)
    assert ran.stdout == "hello\n\n[7 more bytes not kept]"


# --- judging a boot -----------------------------------------------------------------------


def booted(console: str, *, code: int = 0, timed_out: bool = False) -> RunResult:
    return RunResult(exit_code=code, stdout=console, stderr="", timed_out=timed_out, seconds=3.2)


def test_a_passing_boot() -> None:
    result = pagesize.judge_boot(16384, booted(record()), PAGES, 80)
    assert result.status == "passed", result.reason
    assert (result.cpu, result.kernel, result.guest_page_size) == (
        "max",
        "6.12.118+deb13-arm64-16k",
        16384,
    )
    assert (
        result.reason == "exit code 0, stdout matches (16384-byte pages, 6.12.118+deb13-arm64-16k)"
    )
    assert (result.seconds, result.run_seconds) == (3.2, 0.036312031)


def test_a_failing_binary_fails_with_its_own_message() -> None:
    console = record(
        status="signaled:6", stdout=b"", stderr=b"<jemalloc>: Unsupported system page size\n"
    )
    result = pagesize.judge_boot(16384, booted(console), PAGES, 80)
    assert result.status == "failed"
    assert result.reason.startswith(
        "exit code 134 (killed by SIGABRT), expected 0: <jemalloc>: Unsupported system page size"
    )
    assert result.exit_code == 134
    assert result.stderr == "<jemalloc>: Unsupported system page size\n"


def test_a_guest_without_16k_pages_fails() -> None:
    console = record().replace(line("page_size", "16384"), line("page_size", "4096"))
    result = pagesize.judge_boot(16384, booted(console), PAGES, 80)
    assert result.status == "failed"
    assert "the guest gave it 4096-byte pages, not 16384" in result.reason


def test_a_guest_that_never_powers_off_fails_with_its_last_words() -> None:
    result = pagesize.judge_boot(16384, booted("[ 1.0] a\n[ 2.0] b\n", timed_out=True), PAGES, 80)
    assert result.status == "failed"
    assert result.reason == (
        "the guest did not power off within 80 s (boot included); last output: [ 1.0] a | [ 2.0] b"
    )
    silent = pagesize.judge_boot(16384, booted("", timed_out=True), PAGES, 80)
    assert silent.reason.endswith("last output: nothing on its console")


def test_a_guest_that_panics_fails_with_the_panic() -> None:
    console = "[    1.9] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n"
    result = pagesize.judge_boot(16384, booted(console), PAGES, 80)
    assert result.status == "failed"
    assert result.reason.startswith("the guest printed no result; QEMU exited 0: ")
    assert "Attempted to kill init" in result.reason


def test_qemu_boots_the_16k_kernel_on_a_cpu_with_16k_granules() -> None:
    argv = pagesize.qemu_command(pagesize_image.KERNEL_16K, "/binaries/initramfs-0.cpio")
    assert argv[0] == "qemu-system-aarch64"
    assert argv[argv.index("-cpu") + 1] == "max"
    assert argv[argv.index("-kernel") + 1] == "/opt/factory/pagesize/vmlinuz-16k"
    assert argv[argv.index("-initrd") + 1] == "/binaries/initramfs-0.cpio"
    assert {"-no-reboot", "-nographic"} <= set(argv)
    assert "panic=-1" in argv[argv.index("-append") + 1]


# --- running, with a fake guest -----------------------------------------------------------


class FakeGuest:
    """Answers each boot with `answer(initramfs)`; records the boots."""

    def __init__(self, answer: Callable[[bytes], RunResult]) -> None:
        self.answer = answer
        self.boots: list[tuple[int, bytes, float]] = []

    def init(self) -> bytes:
        return b"INIT"

    def boot(self, page_size: int, initramfs: bytes, *, timeout: float) -> RunResult:
        self.boots.append((page_size, initramfs, timeout))
        return self.answer(initramfs)


def arm64_binary(tmp_path: Path) -> Path:
    path = tmp_path / "hello"
    path.write_bytes(static_executable(Arch.ARM64, b"hello\n"))
    return path


def test_each_extra_page_size_boots_once_with_the_binary(tmp_path: Path) -> None:
    binary = arm64_binary(tmp_path)
    fake = FakeGuest(lambda initramfs: booted(record()))
    results = pagesize.page_sizes(fake, ARM64, binary, PAGES)
    assert [(r.page_size, r.status) for r in results] == [(16384, "passed")]
    [(size, data, timeout)] = fake.boots
    assert (size, timeout) == (16384, 20 + pagesize.BOOT_SECONDS)
    assert data == guest.initramfs(b"INIT", binary.read_bytes(), "hello", ["x"])


def test_4096_alone_is_the_normal_run_and_boots_nothing(tmp_path: Path) -> None:
    fake = FakeGuest(lambda initramfs: booted(record()))
    smoke = SmokeConfig(page_sizes=(4096,))
    assert pagesize.page_sizes(fake, ARM64, arm64_binary(tmp_path), smoke) == ()
    assert fake.boots == []


def test_an_amd64_target_is_not_run(tmp_path: Path) -> None:
    fake = FakeGuest(lambda initramfs: booted(record()))
    [result] = pagesize.page_sizes(fake, AMD64, arm64_binary(tmp_path), PAGES)
    assert (result.status, result.reason) == ("not run", pagesize.NOT_ARM64)
    assert fake.boots == []


class ScriptedRunner:
    def __init__(self, answer: Callable[[Sequence[str]], RunResult]) -> None:
        self.answer = answer
        self.calls: list[list[str]] = []

    def path_of(self, host_path: Path) -> str:
        return f"/binaries/{host_path.name}"

    def run(self, argv: Sequence[str], *, timeout: float) -> RunResult:
        self.calls.append(list(argv))
        return self.answer(argv)


def test_the_qemu_guest_reads_init_once_and_writes_each_initramfs_for_its_boot(
    tmp_path: Path,
) -> None:
    seen: list[bytes] = []

    def answer(argv: Sequence[str]) -> RunResult:
        if argv[0] == "base64":
            return RunResult(
                exit_code=0, stdout="SU5JVA==", stderr="", timed_out=False, seconds=0.1
            )
        seen.append((tmp_path / Path(argv[argv.index("-initrd") + 1]).name).read_bytes())
        return booted(record())

    runner = ScriptedRunner(answer)
    qemu = QemuGuest(runner, tmp_path)
    assert qemu.init() == qemu.init() == b"INIT"
    qemu.boot(16384, b"first", timeout=80)
    qemu.boot(16384, b"second", timeout=80)
    assert seen == [b"first", b"second"]
    assert [c[0] for c in runner.calls] == ["base64", "qemu-system-aarch64", "qemu-system-aarch64"]
    assert list(tmp_path.iterdir()) == []  # each initramfs is removed after its boot


# --- in the stage: the result, and a guest started only when needed -----------------------


def subject(path: Path, target: str, smoke: SmokeConfig = PAGES) -> Subject:
    binary = Binary.from_disk(path, image="hello", target=target, profile="opt")
    return Subject(binary=binary, target=targets.get(target), smoke=smoke)


def normal_run(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, stdout="hello\n", stderr="", timed_out=False, seconds=0.1)


def never(*_: object) -> pagesize.Guest:
    raise AssertionError("the guest was started")


@pytest.fixture()
def audit_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ELF audit without its one error on the hand-made binaries (no PT_GNU_STACK)."""
    real = elfcheck.check

    def check(path: Path, target: targets.Target, *, profile: str) -> elfcheck.ElfReport:
        report = real(path, target, profile=profile)
        kept = tuple(f for f in report.findings if f.code != "exec-stack")
        return dataclasses.replace(report, findings=kept)

    monkeypatch.setattr(elfcheck, "check", check)


@pytest.mark.usefixtures("audit_passes")
def test_a_failing_16k_run_fails_the_binary_with_its_output(tmp_path: Path) -> None:
    console = record(status="signaled:6", stdout=b"", stderr=b"page size is not 4096\n")
    fake = FakeGuest(lambda initramfs: booted(console))
    result = validate_one(
        subject(arm64_binary(tmp_path), "arm64"), ScriptedRunner(normal_run), frozenset(), fake
    )
    assert result.smoke.status == "passed"
    assert not result.passed
    assert result.problems == [
        "smoke with 16K pages: exit code 134 (killed by SIGABRT), expected 0: page size is not "
        "4096 (16384-byte pages, 6.12.118+deb13-arm64-16k)"
    ]
    assert result.row()[-2] == "16K failed"
    assert result.to_json()["page_sizes"][0]["stderr"] == "page size is not 4096\n"


@pytest.mark.usefixtures("audit_passes")
def test_no_guest_is_started_for_amd64_targets_or_without_page_sizes(tmp_path: Path) -> None:
    path = tmp_path / "hello"
    path.write_bytes(static_executable(Arch.AMD64, b"hello\n"))
    lazy = GuestOnDemand(never)
    result = validate_one(subject(path, "amd64"), ScriptedRunner(normal_run), frozenset(), lazy)
    assert [(r.status, r.reason) for r in result.page_sizes] == [("not run", pagesize.NOT_ARM64)]
    assert result.passed, result.problems
    plain = subject(arm64_binary(tmp_path), "arm64", SmokeConfig())
    result = validate_one(plain, ScriptedRunner(normal_run), frozenset(), lazy)
    assert result.page_sizes == ()
    assert result.to_json()["page_sizes"] == []
    assert result.row()[-2] == "-"


def test_a_16k_result_to_json() -> None:
    result = PageSizeResult(page_size=16384, status="not run", reason=pagesize.NOT_ARM64)
    assert result.to_json() == {
        "page_size": 16384,
        "status": "not run",
        "reason": pagesize.NOT_ARM64,
        "cpu": None,
        "kernel": None,
        "guest_page_size": None,
        "exit_code": None,
        "stdout": "",
        "stderr": "",
        "seconds": 0.0,
        "run_seconds": None,
    }
    assert TargetResult.__dataclass_fields__["page_sizes"].default == ()


def test_a_binary_that_failed_its_elf_audit_is_not_booted(tmp_path: Path) -> None:
    fake = FakeGuest(lambda initramfs: booted(record()))
    broken = tmp_path / "hello"
    broken.write_bytes(b"not an ELF file")
    result = validate_one(subject(broken, "arm64"), ScriptedRunner(normal_run), frozenset(), fake)
    [run] = result.page_sizes
    assert (run.status, run.reason) == ("not run", "the ELF audit failed (not-elf)")
    assert fake.boots == []


@pytest.mark.usefixtures("audit_passes")
def test_the_guest_is_started_once_for_every_binary_that_needs_it(tmp_path: Path) -> None:
    started: list[FakeGuest] = []

    def start() -> pagesize.Guest:
        started.append(FakeGuest(lambda initramfs: booted(record())))
        return started[-1]

    binary = arm64_binary(tmp_path)
    subjects = [subject(binary, "arm64"), subject(binary, "arm64_v9a")]
    report = validate(
        subjects, ScriptedRunner(normal_run), guest=GuestOnDemand(start), progress=lambda _: None
    )
    assert report.passed, [r.problems for r in report.results]
    assert len(started) == 1
    assert len(started[0].boots) == 2
