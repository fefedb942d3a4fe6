"""What every command shares: the --config and --debug options, and running one job with
its errors turned into exit statuses (one red line and 1; 2 is Typer's, for usage)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.context import App

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="config.toml to use (default: ./config.toml, or $DIGEST_CONFIG).",
        show_default=False,
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
YesOpt = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]
PendingOpt = Annotated[bool, typer.Option(help="Make them confirm first.")]


@contextmanager
def errors_as_exit(debug: bool) -> Iterator[None]:
    """DigestError: one red line and exit 1. Anything else: a short line unless --debug."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s: %(message)s"
    )
    try:
        yield
    except DigestError as exc:
        if debug:
            raise
        _fail(f"error: {exc}")
    except KeyboardInterrupt:
        _fail("interrupted: nothing half-written was kept", code=130)
    except (typer.Exit, typer.Abort):
        raise
    except BrokenPipeError:
        _quietly_stop_writing()
    except Exception as exc:
        if debug:
            raise
        _fail(
            f"error: unexpected {type(exc).__name__}: {exc} (run again with --debug for "
            "the details, and report it)"
        )


# The reader of our output went away (``digest build | head``): stop without a word, with
# the status other Unix tools give when SIGPIPE ends them (128 + 13). What was stored
# before stays stored; only the rest of the output is lost.
CLOSED_OUTPUT = 141


def _quietly_stop_writing() -> NoReturn:
    # Python would flush stdout again at exit and complain; point it at /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(CLOSED_OUTPUT)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def run(config: Path | None, debug: bool, job: Callable[[App], object]) -> None:
    """Build the application context (settings, database, secrets) and run one job, errors
    turned into exit statuses. A job that returns a line has it printed."""
    with errors_as_exit(debug):
        from digest.context import open_app  # the renderers load only for a command

        said = job(open_app(config))
        if isinstance(said, str):
            typer.echo(said)
