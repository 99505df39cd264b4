from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from linegraph2road.cli.main import _register, cli


@pytest.fixture(scope="session")
def l2r() -> Callable[..., Result]:
    """Run ``l2r ARGS...`` in-process; returns click's Result (exit_code, stdout, stderr)."""
    _register()
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli, [str(a) for a in args], prog_name="l2r", catch_exceptions=False)

    return run


def one_line_error(result: Result) -> str:
    """The error line of a failed command; checks it is one line and exit code 2."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]
