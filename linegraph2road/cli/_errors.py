"""Turning domain errors into one clear line and exit code 2, and interrupts into 130 / 143.

An interrupt (Ctrl-C: SIGINT; ``kill``: SIGTERM, which :func:`install_signal_handlers` turns into
a :class:`Terminated` exception) unwinds the command like any error, so every ``finally`` and
context manager on the way cleans up (temporary files, staging folders, partial manifests), then
the process exits with the code shells expect: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from linegraph2road.errors import L2RError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated(f"received signal {signum}")


def install_signal_handlers() -> None:
    """SIGTERM raises :class:`Terminated` (so cleanups run) instead of killing the process."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def fail(message: str) -> None:
    """Print ``l2r: error: message`` on stderr and exit with code 2."""
    ctx = click.get_current_context(silent=True)
    name = ctx.command_path if ctx is not None else "l2r"
    first = " ".join(str(message).split())
    click.echo(f"{name}: error: {first}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def handle_errors(func: F) -> F:
    """Decorator for command callbacks: L2RError and OS errors on input become exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except L2RError as exc:
            fail(str(exc))
        except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError) as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        except KeyboardInterrupt as exc:
            ctx = click.get_current_context(silent=True)
            name = ctx.command_path if ctx is not None else "l2r"
            term = isinstance(exc, Terminated)
            click.echo(
                f"{name}: {'terminated' if term else 'interrupted'}; finished outputs were kept, "
                "unfinished ones were not written",
                err=True,
            )
            sys.exit(EXIT_SIGTERM if term else EXIT_SIGINT)
        return None

    return wrapper  # type: ignore[return-value]
