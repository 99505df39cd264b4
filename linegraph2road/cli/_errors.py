"""Turning domain errors into one clear line and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from linegraph2road.errors import L2RError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2


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
        return None

    return wrapper  # type: ignore[return-value]
