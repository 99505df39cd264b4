"""The ``l2r`` command group. Each command group lives in its own module of this package."""

from __future__ import annotations

import click

from linegraph2road import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="l2r")
def cli() -> None:
    """linegraph2road: imagery -> routable road graphs, graph conversion and scoring.

    Run `l2r COMMAND --help` for a command's options and an example.
    """


def _register() -> None:
    from linegraph2road.cli.annotate import annotate
    from linegraph2road.cli.convert import convert
    from linegraph2road.cli.diff import diff
    from linegraph2road.cli.eval_interactive import eval_interactive
    from linegraph2road.cli.evaluate import evaluate
    from linegraph2road.cli.extract import extract
    from linegraph2road.cli.info import info
    from linegraph2road.cli.mask2graph import mask2graph
    from linegraph2road.cli.prep import prep
    from linegraph2road.cli.segment import segment
    from linegraph2road.cli.thresholds import thresholds
    from linegraph2road.cli.train import train

    commands = (
        annotate,
        convert,
        diff,
        evaluate,
        eval_interactive,
        extract,
        info,
        mask2graph,
        prep,
        segment,
        thresholds,
        train,
    )
    for command in commands:
        cli.add_command(command)


def main() -> None:
    """Console-script entry point (``l2r``)."""
    from linegraph2road.cli._errors import install_signal_handlers

    _register()
    install_signal_handlers()
    cli(prog_name="l2r")
