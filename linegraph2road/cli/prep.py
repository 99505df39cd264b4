"""``l2r prep``: training labels from OpenStreetMap or from a benchmark dataset."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from linegraph2road.cli._errors import fail, handle_errors
from linegraph2road.cli.options import parallel_from, parallel_options

F = TypeVar("F", bound=Callable[..., Any])


def _parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        try:
            out[key.strip().replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = raw
    return out


def _label_options(func: F) -> F:
    """Options shared by both subcommands: output folder, seed, preview and label parameters."""
    options = [
        click.option(
            "-o",
            "--out-dir",
            required=True,
            type=click.Path(file_okay=False, path_type=str),
            help="Output folder; each tile is written completely or not at all.",
        ),
        click.option(
            "--seed",
            default=0,
            show_default=True,
            help="Run seed (per tile: hash of seed + tile id).",
        ),
        click.option("--preview", is_flag=True, help="Also write an overlay PNG per tile."),
        click.option(
            "--d-r", type=float, default=None, help="Road NMS radius, px (labels default: 16)."
        ),
        click.option(
            "--d-k", type=float, default=None, help="Keypoint NMS radius, px (default: 8)."
        ),
        click.option(
            "--d-nei", type=float, default=None, help="Candidate pair radius, px (default: 64)."
        ),
        click.option(
            "--param",
            "params",
            multiple=True,
            metavar="KEY=VALUE",
            help="Any other build_tile_labels parameter (repeatable), e.g. --param tau=6.",
        ),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _label_params(
    d_r: float | None, d_k: float | None, d_nei: float | None, params: tuple[str, ...]
) -> dict[str, Any]:
    out = {k: v for k, v in (("d_r", d_r), ("d_k", d_k), ("d_nei", d_nei)) if v is not None}
    out.update(_parse_params(params))
    return out


def _finish(report: Any, out_dir: str) -> None:
    name = click.get_current_context().command_path
    for line in report.warnings:
        click.echo(f"{name}: warning: {line}", err=True)
    n = len(report.tiles)
    edges = sum(t.edges for t in report.tiles)
    empty = sum(t.empty for t in report.tiles)
    kept = f"; {report.resumed} kept from an interrupted run" if report.resumed else ""
    click.echo(
        f"wrote labels for {n} tile(s) to {out_dir} ({edges} edges, {empty} empty{kept})",
        err=True,
    )


@click.group()
def prep() -> None:
    """Turn road graphs into training labels (road/keypoint/overpass masks, candidate edges).

    \b
    l2r prep osm          OpenStreetMap data on a GeoTIFF, or on an area tiled into 2048 px tiles
    l2r prep dataset      a whole City-scale / Global-scale / SpaceNet benchmark folder
    l2r prep uncertainty  RoadGIE expert uncertainty maps from trained checkpoints
    """


@prep.command(
    "osm",
    epilog="""\b
Examples:
  l2r prep osm --osm finland.osm.pbf --raster tile.tif -o labels/ --preview
  l2r prep osm --osm city.osm.pbf --bounds 26.93 60.52 26.97 60.54 --gsd 1 -o labels/
""",
)
@click.option(
    "--osm",
    "osm_file",
    required=True,
    type=click.Path(path_type=str),
    help="OpenStreetMap file (.osm.pbf, .osm); also SpaceNet GeoJSON centerlines or any graph "
    "file l2r reads (pixel graphs need --raster).",
)
@click.option(
    "--raster",
    type=click.Path(path_type=str),
    default=None,
    help="Georeferenced GeoTIFF the labels align with.",
)
@click.option(
    "--bounds",
    type=float,
    nargs=4,
    default=None,
    metavar="MINX MINY MAXX MAXY",
    help="Area to label instead of a raster, in --crs units (lon/lat for EPSG:4326).",
)
@click.option("--crs", default="EPSG:4326", show_default=True, help="CRS of --bounds.")
@click.option(
    "--gsd",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Metres per pixel of the labels: the model's ground sampling distance. --raster is "
    "resampled to it and written beside the labels ({id}_image.tif); --bounds are gridded at it "
    "(lon/lat bounds: in their UTM zone).",
)
@click.option(
    "--tile-size", default=2048, show_default=True, help="Tile size, px, for large areas."
)
@click.option("--include-service", is_flag=True, help="Also label highway=service ways.")
@click.option("--include-tracks", is_flag=True, help="Also label highway=track ways.")
@_label_options
@handle_errors
def osm(
    osm_file: str,
    raster: str | None,
    bounds: tuple[float, float, float, float] | None,
    crs: str,
    gsd: float,
    tile_size: int,
    include_service: bool,
    include_tracks: bool,
    out_dir: str,
    seed: int,
    preview: bool,
    d_r: float | None,
    d_k: float | None,
    d_nei: float | None,
    params: tuple[str, ...],
) -> None:
    """Labels from OpenStreetMap roads on a GeoTIFF or on a lon/lat or projected area.

    Default roads: motorway, trunk, primary, secondary, tertiary, their *_link ramps,
    unclassified, residential, living_street. bridge/tunnel/layer tags mark the overpasses.
    Labels are made at --gsd (the model's 1 m/px by default); with --raster the resampled tile
    image is written beside them, so `l2r train --set data.train=OUT` finds it. Re-running an
    interrupted command finishes only the missing tiles.
    """
    from linegraph2road.pipelines.prep import prep_osm

    bounds = bounds or None
    if (raster is None) == (bounds is None):
        fail("give --raster TILE.tif or --bounds MINX MINY MAXX MAXY (with --crs, --gsd), not both")
    report = prep_osm(
        osm_file,
        out_dir,
        raster=raster,
        bounds=bounds,
        crs=crs,
        gsd=gsd,
        tile_size=tile_size,
        seed=seed,
        preview=preview,
        include_service=include_service,
        include_tracks=include_tracks,
        label_params=_label_params(d_r, d_k, d_nei, params),
        progress=True,
    )
    _finish(report, out_dir)


@prep.command(
    "dataset",
    epilog="""\b
Examples:
  l2r prep dataset --format cityscale --root cityscale/20cities -o labels/cityscale --workers 8
  l2r prep dataset --format spacenet --root spacenet -o labels/spacenet --split train
  l2r prep dataset --format globalscale --root gs/ -o labels/gs --scheduler tcp://HEAD:8786
""",
)
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["cityscale", "globalscale", "spacenet"]),
    help="Dataset layout (region_{i}_sat.png + pickles, or SAM-Road's SpaceNet RGB_1.0_meter).",
)
@click.option("--root", required=True, type=click.Path(path_type=str), help="Dataset folder.")
@click.option(
    "--split",
    type=click.Choice(["train", "valid", "test", "ood", "all"]),
    default="all",
    show_default=True,
    help="Which tiles (City-scale: SAM-Road partition; Global-scale: SAM-Road++ split folders "
    "or index ranges, ood = out_of_domain; SpaceNet: data_split.json).",
)
@click.option(
    "--graph",
    type=click.Choice(["train", "eval"]),
    default="train",
    show_default=True,
    help="City-/Global-scale graph: refine_gt_graph.p (train) or graph_gt.pickle (eval).",
)
@parallel_options
@_label_options
@handle_errors
def dataset(
    fmt: str,
    root: str,
    split: str,
    graph: str,
    workers: int,
    scheduler: str | None,
    threads: int | None,
    out_dir: str,
    seed: int,
    preview: bool,
    d_r: float | None,
    d_k: float | None,
    d_nei: float | None,
    params: tuple[str, ...],
) -> None:
    """Labels for every tile of a benchmark dataset, in parallel, with a progress bar."""
    from linegraph2road.pipelines.prep import prep_dataset

    report = prep_dataset(
        root,
        out_dir,
        format=fmt,
        split=split,
        graph=graph,
        seed=seed,
        preview=preview,
        label_params=_label_params(d_r, d_k, d_nei, params),
        progress=True,
        parallel=parallel_from(workers, scheduler, threads, True),
    )
    _finish(report, out_dir)


@prep.command(
    "uncertainty",
    epilog="""\b
Examples:
  l2r prep uncertainty labels/train --checkpoint runs/nl34/checkpoints/best.safetensors \\
      --checkpoint runs/fctl/checkpoints/best.safetensors
  l2r prep uncertainty deepglobe/train --checkpoint experts.safetensors --device cuda

\b
Writes {id}_uncertainty.png (uint8, 255 x mean |p_m - y| over the experts, RoadGIE eq. 4)
beside each tile's labels and uncertainty.json; `l2r train roadgie` then biases its simulated
positive prompts towards those pixels (eq. 5). Re-running overwrites the caches.
""",
)
@click.argument("folder", type=click.Path(path_type=str))
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    required=True,
    type=click.Path(path_type=str),
    help="A trained l2r checkpoint used as an expert (repeatable): any front-end or model.",
)
@click.option(
    "--images",
    default=None,
    type=click.Path(path_type=str),
    help="Image folder of l2r prep output (as data.images in training configs).",
)
@click.option("--split", default=None, help="Only tiles of this split (l2r prep output).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar.")
@handle_errors
def uncertainty(
    folder: str,
    checkpoints: tuple[str, ...],
    images: str | None,
    split: str | None,
    device: str,
    progress: bool,
) -> None:
    """Cache the experts' uncertainty (RoadGIE eq. 4) for every tile of FOLDER.

    FOLDER is `l2r prep` output or a DeepGlobe-layout folder ({id}_sat.jpg + {id}_mask.png).
    """
    from linegraph2road.pipelines.prep_uncertainty import prep_uncertainty

    name = click.get_current_context().command_path

    def echo(line: str) -> None:
        click.echo(f"{name}: {line}", err=True)

    report = prep_uncertainty(
        folder, checkpoints, images=images, split=split, device=device, progress=progress,
        echo=echo,
    )  # fmt: skip
    mean = sum(m for _, m in report.tiles) / max(len(report.tiles), 1)
    echo(f"wrote {len(report.tiles)} uncertainty map(s) (mean {mean:.3f}) and {report.index}")
