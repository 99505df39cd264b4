"""``l2r diff``."""

from __future__ import annotations

from typing import Any

import click

from linegraph2road.cli._errors import handle_errors
from linegraph2road.cli.options import METRES, output_path
from linegraph2road.io import GRAPH_FORMATS

# spelled out (linegraph2road.data_prep.SOURCE_FORMATS) so that building the CLI stays light
_REF_FORMATS = ("osm", *GRAPH_FORMATS)
_RULES = ("nearest", "one-to-one")  # linegraph2road.metrics.matching.MATCH_RULES


@click.command(
    "diff",
    epilog="""\b
Examples:
  # what the imagery shows that OpenStreetMap does not, over the tile's footprint
  l2r extract tile.tif -o graph.geojson --checkpoint l2r.safetensors
  l2r diff --pred graph.geojson --ref area.osm.pbf --raster tile.tif -o changes.gpkg
\b
  # against another graph file, a wider tolerance, service roads counted as mapped
  l2r diff --pred graph.gpkg --ref old_roads.geojson -o changes.gpkg --tolerance 12m
  l2r diff --pred graph.gpkg --ref area.osm.pbf --include-service -o changes.gpkg
\b
Outputs: CHANGES.gpkg (layers missing_from_ref, matched, confirmed, not_seen, in the UTM zone
of the area), CHANGES.json (the summary), CHANGES.osm (the missing roads as new ways with
negative ids, highway=road, for a JOSM layer; marked upload=false) and, with --raster,
CHANGES.png (confirmed blue, not seen red, matched orange, missing green). Nothing is uploaded.
""",
)
@click.option(
    "--pred",
    required=True,
    type=click.Path(path_type=str),
    help="Predicted road graph (l2r extract output, any graph format l2r reads, or an OSM "
    "extract, e.g. a newer snapshot).",
)
@click.option(
    "--ref",
    required=True,
    type=click.Path(path_type=str),
    help="Reference map: an OSM extract (.osm.pbf, .osm) or any graph file.",
)
@output_path
@click.option(
    "--raster",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="The image the prediction came from: bounds the comparison to its footprint, places "
    "pixel-coordinate graphs, and gets the overlay PNG.",
)
@click.option(
    "--tolerance",
    type=METRES,
    default=8.0,
    show_default=True,
    help="Distance within which two roads are the same road, metres (8 or 8m).",
)
@click.option(
    "--max-angle",
    type=click.FloatRange(0, 90, min_open=True),
    default=45.0,
    show_default=True,
    help="Largest angle between two lines that match, degrees (TOPO's is 45).",
)
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.5,
    show_default=True,
    help="Share of a piece's length that must match for it to count as seen.",
)
@click.option(
    "--piece-length",
    type=METRES,
    default=20.0,
    show_default=True,
    help="Longer edges are classified in parts of at most this length, metres.",
)
@click.option(
    "--step", type=METRES, default=2.0, show_default=True, help="Sampling step along lines, m."
)
@click.option(
    "--matching",
    type=click.Choice(_RULES),
    default="nearest",
    show_default=True,
    help="nearest: a line matches when any line of the other graph is within the tolerances; "
    "one-to-one: TOPO's Hopcroft-Karp matching of samples (duplicate lines count as changes).",
)
@click.option(
    "--include-service", is_flag=True, help="Also read highway=service ways of OSM inputs."
)
@click.option("--include-tracks", is_flag=True, help="Also read highway=track ways of OSM inputs.")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Compare even when one side has no road in the area (an unmapped area).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Summary JSON (default: the output with .json).",
)
@click.option(
    "--osm",
    "osm_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="JOSM file of the missing roads (default: the output with .osm).",
)
@click.option(
    "--overlay",
    "overlay_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Overlay PNG (default with --raster: the output with .png).",
)
@click.option(
    "--pred-format",
    type=click.Choice(_REF_FORMATS),
    default=None,
    help="Prediction format (default: from the extension).",
)
@click.option(
    "--ref-format",
    type=click.Choice(_REF_FORMATS),
    default=None,
    help="Reference format (default: from the extension).",
)
@handle_errors
def diff(**options: Any) -> None:
    """What the imagery shows that the map does not.

    Compares the predicted road graph PRED with the reference map REF over the area both cover
    (the raster's footprint with --raster), in the UTM zone of that area. Each predicted road
    piece is `matched` or `missing_from_ref`, each reference road piece `confirmed` or
    `not_seen` (removed, never built, or hidden by trees or clouds), by matching along the lines
    within --tolerance and --max-angle (the TOPO metric's matching). Missing roads are joined
    into whole roads with a connection status (both ends / one end / isolated) and a confidence
    (mean edge probability). Everything is written for a person to review; bad input stops with
    one line, exit code 2 and no output.
    """
    from linegraph2road.mapdiff import DiffOptions, summary_text
    from linegraph2road.pipelines.diff import run_diff

    opts = DiffOptions(
        tolerance=options.pop("tolerance"),
        max_angle=options.pop("max_angle"),
        step=options.pop("step"),
        piece_length=options.pop("piece_length"),
        min_coverage=options.pop("min_coverage"),
        rule=options.pop("matching"),
        allow_empty=options.pop("allow_empty"),
    )
    _, summary = run_diff(
        options.pop("pred"), options.pop("ref"), options.pop("output"), options=opts, **options
    )
    click.echo(summary_text(summary))
    for name, path in summary["outputs"].items():
        click.echo(f"wrote {path} ({name})", err=True)
