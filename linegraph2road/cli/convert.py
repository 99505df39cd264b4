"""``l2r convert``."""

from __future__ import annotations

import click

from linegraph2road.cli._errors import handle_errors
from linegraph2road.cli.options import describe, like_raster, output_format, output_path
from linegraph2road.io import GRAPH_FORMATS


@click.command(
    epilog="""\b
Examples:
  l2r convert region_9_graph_gt.pickle -o region_9.graphml
  l2r convert gt.p -o gt.geojson --like region_9_sat.tif
  l2r convert AOI_2_Vegas_img0_gt.gpickle -o vegas.geojson
"""
)
@click.argument("src", type=click.Path(path_type=str))
@output_path
@click.option(
    "--in-format",
    type=click.Choice(GRAPH_FORMATS),
    default=None,
    help="Input graph format (default: guessed from the extension and content).",
)
@output_format
@like_raster
@handle_errors
def convert(
    src: str, output: str, in_format: str | None, out_format: str | None, like: str | None
) -> None:
    """Convert a road graph between formats.

    \b
    Formats: geojson (RFC 7946 lon/lat when georeferenced, pixels otherwise), graphml (osmnx
    conventions), cityscale (Sat2Graph/City-scale/Global-scale pickle {(row, col): [...]}),
    samroad-spacenet (SAM-Road's flipped SpaceNet pickle), sat2graph-json (Go APLS input),
    gpickle (CosmiQ networkx pickle), gpkg (GeoPackage: edges and nodes layers in the graph's
    CRS; any LineString layer is read).
    """
    from linegraph2road.pipelines.convert import convert_graph

    graph = convert_graph(src, output, in_format=in_format, out_format=out_format, like=like)
    click.echo(describe(graph, output, out_format), err=True)
