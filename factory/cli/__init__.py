"""The `factory` command line: `main` maps every FactoryError to its exit code."""

from __future__ import annotations

import signal
import sys
import threading

import typer

from factory.cli import (  # noqa: F401  (each module registers its command, in this order)
    bazel_cmd,
    build_cmd,
    builder_cmd,
    clean_cmd,
    config_cmd,
    doctor_cmd,
    image_cmd,
    index_cmd,
    init_cmd,
    inspect_cmd,
    registry_cmd,
    supply_cmd,
    targets_cmd,
    validate_cmd,
)
from factory.cli.app import app
from factory.errors import ExitCode, FactoryError
from factory.util import console

_GLOBAL_FLAGS = {"--json", "--debug", "--quiet", "-q", "--verbose", "-v", "-vv", "-vvv"}
_GLOBAL_VALUED = {"--config", "-C"}


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options written after the command (`factory targets --json`) before it.

    Every command accepts the global options anywhere before a `--`.
    """
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in _GLOBAL_FLAGS:
            hoisted.append(arg)
        elif arg in _GLOBAL_VALUED and i + 1 < len(args):
            hoisted.extend(args[i : i + 2])
            i += 1
        elif arg.startswith("--config="):
            hoisted.append(arg)
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


def _terminate(signum: int, _frame: object) -> None:
    """The first SIGINT/SIGTERM unwinds the run, so every `finally` runs (containers are
    removed, partial files deleted); further signals during that clean-up are ignored."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _cleaning_up)
    raise KeyboardInterrupt(f"signal {signum}")


def _cleaning_up(_signum: int, _frame: object) -> None:
    console.warn("still cleaning up after the interrupt; please wait")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, as a console script, exit with) the exit code."""
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    if argv is None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGINT, _terminate)
    interrupted_reported = False
    try:
        code = app(args=args, prog_name="factory", standalone_mode=False)
    except FactoryError as err:
        if console.options().debug:
            console.print_exception()
        console.error(str(err))
        code = int(err.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        console.error("interrupted.")
        code = int(ExitCode.INTERRUPTED)
        interrupted_reported = True
    except typer.TyperException as err:  # a usage error found by the parser
        show = getattr(err, "show", None)
        if callable(show):
            show()
        else:
            console.error(err.format_message())
        code = int(ExitCode.USAGE)
    except typer.Exit as err:
        code = err.exit_code
    except Exception as err:  # a bug: say so plainly, traceback only with --debug
        if console.options().debug or "--debug" in args:
            console.print_exception()
        console.error(
            f"internal error: {type(err).__name__}: {err}. This is a bug in factory; "
            "run again with --debug for the traceback and report it."
        )
        code = int(ExitCode.FAILURE)
    code = int(code or 0)
    if code == ExitCode.INTERRUPTED and not interrupted_reported:
        # Typer turns a KeyboardInterrupt inside a command into a silent return of 130.
        console.error("interrupted.")
    if argv is None:
        sys.exit(code)
    return code
