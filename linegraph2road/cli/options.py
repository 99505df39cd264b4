"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from linegraph2road.io import GRAPH_FORMATS

F = TypeVar("F", bound=Callable[..., Any])

output_format = click.option(
    "--format",
    "out_format",
    type=click.Choice(GRAPH_FORMATS),
    default=None,
    help="Output graph format (default: from the output file's extension).",
)

like_raster = click.option(
    "--like",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    metavar="RASTER",
    help="Georeferenced raster whose grid pixel coordinates refer to (CRS + transform).",
)

output_path = click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=str),
    help="Output file; written atomically (no partial file on failure).",
)


#: ``--frontend`` choices: the names of :data:`linegraph2road.frontends.FRONTENDS`, spelled out
#: here so that building the CLI does not import torch (a test keeps them equal).
FRONTEND_CHOICES = ("sam", "nl-linknet", "fctl", "experts", "roadgie")

checkpoint_option = click.option(
    "--checkpoint",
    type=click.Path(path_type=str),
    default=None,
    help="Trained l2r checkpoint (.safetensors from `l2r train`). Required.",
)

frontend_option = click.option(
    "--frontend",
    type=click.Choice(FRONTEND_CHOICES),
    default=None,
    help="Front-end the checkpoint must hold (default: whatever it holds).",
)

gsd_option = click.option(
    "--gsd",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Ground sampling distance to run the model at, m/px; georeferenced rasters are "
    "resampled to it. Default: the GSD the checkpoint was trained at (1 m/px if it records none).",
)

device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (CUDA when available), cpu, cuda or cuda:N.",
)

precision_option = click.option(
    "--precision",
    type=click.Choice(["bf16", "fp32"]),
    default=None,
    help="Network precision (default: bf16 on CUDA, fp32 on CPU).",
)


def prompt_options(func: F) -> F:
    """``--prompts``, ``--rounds``, ``--instantiate``: RoadGIE's clicks and scribbles."""
    options = [
        click.option(
            "--prompts",
            type=click.Path(path_type=str),
            default=None,
            metavar="GEOJSON",
            help="RoadGIE checkpoints: clicks (points) and scribbles (lines) with a boolean "
            "'positive' property, in lon/lat (GeoJSON), the raster's CRS (a 'crs' member) or "
            "pixels ('l2r': {'coordinates': 'pixel'}). Without it RoadGIE runs prompt-free.",
        ),
        click.option(
            "--rounds",
            type=int,  # checked by the options object: one line and exit 2
            default=1,
            show_default=True,
            help="RoadGIE interaction rounds with --prompts, each fed the previous mask.",
        ),
        click.option(
            "--instantiate",
            is_flag=True,
            help="RoadGIE topo-semantic instantiation: keep the roads the prompts point at.",
        ),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


progress_option = click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr."
)


#: Formats whose files hold pixel coordinates whatever the graph's georeference.
_PIXEL_FORMATS = ("cityscale", "samroad-spacenet", "sat2graph-json")


def describe(graph: object, path: str, fmt: str | None = None) -> str:
    """One-line summary of a written graph for stderr, saying the coordinates *the file* holds
    (GeoJSON: lon/lat; GraphML, GeoPackage, gpickle: the raster's CRS; benchmark pickles:
    pixels). ``fmt`` is the written format (default: from the extension)."""
    from linegraph2road.errors import FormatError
    from linegraph2road.graph import RoadGraph
    from linegraph2road.io import guess_format

    if not isinstance(graph, RoadGraph):
        return f"wrote {path}"
    try:
        fmt = fmt or guess_format(path)
    except FormatError:
        fmt = None
    if graph.georef is None or fmt in _PIXEL_FORMATS:
        where = "pixel coordinates"
    elif fmt == "geojson":
        where = "lon/lat, EPSG:4326"
    else:
        where = f"CRS {graph.georef.to_dict()['crs']}"
        if len(where) > 40:
            where = f"CRS {graph.georef.crs.name}"
    return f"wrote {path}: {graph.num_nodes} nodes, {graph.num_edges} edges ({where})"


class Metres(click.ParamType):
    """A positive distance in metres: ``8``, ``8m``, ``8 m`` or ``8.5m``."""

    name = "METRES"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            number = float(value)
        else:
            text = str(value).strip().lower().removesuffix("m").strip()
            try:
                number = float(text)
            except ValueError:
                self.fail(f"{value!r} is not a distance in metres (e.g. 8 or 8m)", param, ctx)
        if not (number > 0 and number < float("inf")):
            self.fail(f"{value!r} must be a positive number of metres", param, ctx)
        return number


METRES = Metres()


def parallel_options(func: F) -> F:
    """``--workers``, ``--scheduler``, ``--threads``: where a batch command's tasks run."""
    options = [
        click.option(
            "--workers",
            type=int,  # checked by ParallelOptions: one line and exit 2
            default=1,
            show_default=True,
            help="Worker processes of a local Dask cluster (1: in this process).",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="ADDRESS",
            envvar="L2R_DASK_SCHEDULER",
            help="Run on an existing Dask cluster (tcp://HOST:8786; env L2R_DASK_SCHEDULER); "
            "its workers need l2r installed and the input/output paths visible.",
        ),
        click.option(
            "--threads",
            type=int,
            default=None,
            help="Torch threads per worker (default: cores / workers on each host).",
        ),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def parallel_from(workers: int, scheduler: str | None, threads: int | None, progress: bool) -> Any:
    """The :class:`~linegraph2road.parallel.ParallelOptions` of the options above."""
    from linegraph2road.parallel import ParallelOptions

    return ParallelOptions(workers=workers, scheduler=scheduler, threads=threads, progress=progress)
