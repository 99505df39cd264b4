"""``l2r annotate``."""

from __future__ import annotations

import click

from linegraph2road.cli._errors import fail, handle_errors
from linegraph2road.cli.options import describe, gsd_option
from linegraph2road.io import GRAPH_FORMATS


@click.command(
    epilog="""\b
Examples:
  l2r annotate scene.tif                       # live classifier, project ./scene_annotate
  l2r annotate scene.tif --checkpoint roadgie.safetensors --project work/scene
  l2r annotate scene.tif --host 0.0.0.0 --port 8765 --no-browser   # token in the printed URL
  l2r annotate --export roads.gpkg --project work/scene
  l2r annotate --export labels/scene --project work/scene          # l2r prep training tiles

\b
In the page: draw with the left button (or a finger). "Road +" / "Not road -" strokes are
scribbles, short taps are clicks; each one runs a prediction on the view (the square outlined
in the middle). "Accept" adds the orange prediction to the project's roads (cyan), whose graph
(red) is rebuilt at once. "Draw road" places a polyline (double-click to finish), "Select"
picks an edge to delete (Delete key). Ctrl+Z / Ctrl+Y undo and redo. Everything is saved in
the project folder when the page shows it.
"""
)
@click.argument("image", required=False, type=click.Path(path_type=str))
@click.option(
    "--checkpoint",
    type=click.Path(path_type=str),
    default=None,
    help="RoadGIE front-end checkpoint (from `l2r train roadgie`). Default: a pixel classifier "
    "learned live from your prompts (no weights needed).",
)
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Project folder holding everything you did (SQLite). Default: ./<image stem>_annotate.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but localhost is reachable from other machines; "
    "every request needs the access token printed in the URL.",
)
@click.option(
    "--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0: a free port."
)
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
@gsd_option
@click.option("--device", default="cpu", show_default=True, help="RoadGIE device: cpu or cuda.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option(
    "--export",
    "export_to",
    type=click.Path(path_type=str),
    default=None,
    metavar="OUT",
    help="Export the project instead of serving: a graph file (.geojson, .gpkg, .graphml...) "
    "or a folder of l2r prep training labels. Needs --project.",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(["labels", *GRAPH_FORMATS]),
    default=None,
    help="Export format (default: from OUT's extension; no extension: labels).",
)
@handle_errors
def annotate(
    image: str | None,
    checkpoint: str | None,
    project: str | None,
    host: str,
    port: int,
    no_browser: bool,
    gsd: float,
    device: str,
    precision: str,
    export_to: str | None,
    out_format: str | None,
) -> None:
    """Map roads on your own raster in the browser, with clicks and scribbles.

    \b
    IMAGE is a GeoTIFF or PNG of any size (read tile by tile; 16-bit and 1-band images are
    stretched as in `l2r extract`), shown at --gsd m/px. Every prompt, accepted view and edit
    is stored in the project folder as soon as the page shows it; reopen the same image with
    the same --project to continue.
    """
    from linegraph2road.annotate import SessionOptions
    from linegraph2road.pipelines import annotate as pipeline

    def echo(line: str) -> None:
        click.echo(line, err=True)

    if export_to is not None:
        if project is None:
            fail("--export needs --project DIR (the project to export)")
        kind, result = pipeline.export_project(project, export_to, image=image, fmt=out_format)
        if kind == "labels":
            echo(f"wrote {len(result.tiles)} training tile(s) to {export_to}")
        else:
            echo(describe(result, export_to))
        return
    if image is None:
        fail("give the IMAGE to annotate (or --export OUT --project DIR)")
    if out_format is not None:
        fail("--format applies to --export only")
    options = SessionOptions(gsd=gsd, device=device, precision=precision)
    pipeline.run_server(
        image,
        project,
        checkpoint=checkpoint,
        host=host,
        port=port,
        open_browser=not no_browser,
        options=options,
        echo=echo,
    )
