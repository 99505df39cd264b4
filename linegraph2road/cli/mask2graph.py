"""``l2r mask2graph``."""

from __future__ import annotations

import click

from linegraph2road.cli._errors import handle_errors
from linegraph2road.cli.options import describe, like_raster, output_format, output_path


@click.command(
    epilog="""\b
Examples:
  l2r mask2graph road_prob.tif -o roads.geojson
  l2r mask2graph road_prob.png -o roads.geojson --like image.tif --threshold 0.4
  l2r mask2graph road_prob.tif -o roads.graphml --min-spur-length 40 --bridge-gap 30
"""
)
@click.argument("mask", type=click.Path(path_type=str))
@output_path
@output_format
@like_raster
@click.option("--band", default=1, show_default=True, help="1-based band holding the mask.")
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    help="Road where the probability is above this (masks are scaled to [0, 1]).",
)
@click.option(
    "--min-hole-area",
    default=64,
    show_default=True,
    help="Fill holes smaller than this many pixels before thinning.",
)
@click.option(
    "--min-object-area",
    default=32,
    show_default=True,
    help="Drop blobs smaller than this many pixels before thinning.",
)
@click.option(
    "--simplify-tolerance",
    default=1.5,
    show_default=True,
    help="Douglas-Peucker tolerance of the road polylines, pixels.",
)
@click.option(
    "--min-spur-length",
    default=15.0,
    show_default=True,
    help="Prune dead-end branches shorter than this, pixels.",
)
@click.option(
    "--min-component-length",
    default=20.0,
    show_default=True,
    help="Drop isolated pieces shorter than this, pixels.",
)
@click.option(
    "--bridge-gap",
    default=15.0,
    show_default=True,
    help="Join a dead end to the network within this distance, pixels (0: off).",
)
@click.option(
    "--bridge-max-angle",
    default=30.0,
    show_default=True,
    help="Largest turn between a dead end's direction and its bridge, degrees.",
)
@handle_errors
def mask2graph(
    mask: str,
    output: str,
    out_format: str | None,
    like: str | None,
    band: int,
    **params: float,
) -> None:
    """Vectorise a road mask (probabilities or binary) into a road graph.

    Threshold -> hole filling -> skeleton -> junctions and dead ends as nodes -> polyline
    simplification -> spur pruning -> small-gap bridging. Lengths are in pixels of the mask; a
    georeferenced mask (GeoTIFF with CRS) gives a georeferenced graph. An empty mask gives an
    empty graph.
    """
    from linegraph2road.pipelines.mask2graph import mask_file_to_graph

    graph = mask_file_to_graph(mask, output, out_format=out_format, band=band, like=like, **params)
    click.echo(describe(graph, output), err=True)
