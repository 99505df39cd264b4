"""``l2r info``."""

from __future__ import annotations

import click
import numpy as np

from linegraph2road.cli._errors import handle_errors
from linegraph2road.io import GRAPH_FORMATS


@click.command(
    epilog="""\b
Example:
  l2r info ../shared/fixtures/cityscale_example/gt.p
"""
)
@click.argument("src", type=click.Path(path_type=str))
@click.option(
    "--in-format",
    type=click.Choice(GRAPH_FORMATS),
    default=None,
    help="Input graph format (default: guessed).",
)
@handle_errors
def info(src: str, in_format: str | None) -> None:
    """Print a graph's size, extent, georeference and total length."""
    from linegraph2road.io import guess_format, read_graph

    fmt = in_format or guess_format(src)
    g = read_graph(src, fmt)
    deg = g.degrees()
    click.echo(f"file:        {src} ({fmt})")
    click.echo(f"nodes:       {g.num_nodes}")
    click.echo(f"edges:       {g.num_edges}")
    if g.num_nodes:
        lo, hi = g.nodes.min(axis=0), g.nodes.max(axis=0)
        click.echo(f"extent px:   x {lo[0]:.1f}..{hi[0]:.1f}, y {lo[1]:.1f}..{hi[1]:.1f}")
        counts = np.bincount(deg)
        click.echo("degrees:     " + ", ".join(f"{d}: {c}" for d, c in enumerate(counts) if c))
    click.echo(f"length px:   {g.total_length():.1f}")
    if g.georef is None:
        click.echo("georef:      none (pixel coordinates)")
    else:
        click.echo(f"georef:      {g.georef.crs.name}, {g.georef.gsd():.3f} m/px")
    if g.edge_prob is not None:
        click.echo(f"edge_prob:   min {g.edge_prob.min():.3f}, mean {g.edge_prob.mean():.3f}")
