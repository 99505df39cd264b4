"""``l2r extract``."""

from __future__ import annotations

import click

from linegraph2road.cli._errors import fail, handle_errors
from linegraph2road.cli.options import (
    checkpoint_option,
    describe,
    device_option,
    frontend_option,
    gsd_option,
    parallel_from,
    parallel_options,
    progress_option,
    prompt_options,
)
from linegraph2road.io import GRAPH_FORMATS
from linegraph2road.pipelines.options import NMS_MODES, WINDOW_LAYOUTS


@click.command(
    epilog="""\b
Examples:
  l2r extract region_9_sat.tif -o region_9.geojson --checkpoint runs/cityscale/best.safetensors
  l2r extract big_mosaic.tif -o roads.graphml --checkpoint model.safetensors --device cuda
  l2r extract tile.png -o tile.p --format cityscale --checkpoint model.safetensors --windows 5
  l2r extract region_9_sat.png -o region_9.p --checkpoint cs.safetensors --layout sam-road
  l2r extract scene.tif -o roads.geojson --checkpoint model.safetensors --save-masks masks/
  l2r extract scene.tif -o roads.gpkg --frontend nl-linknet --checkpoint nl34.safetensors --tta
  l2r extract scene.tif -o roads.gpkg --frontend roadgie --checkpoint roadgie.safetensors \
      --prompts clicks.geojson --rounds 3 --instantiate

Scale-out (Dask):
  l2r extract tiles/ -o graphs/ --checkpoint model.safetensors --workers 4
  l2r extract 'tiles/*.tif' -o graphs/ --format geoparquet --checkpoint model.safetensors
  l2r extract mosaic.tif -o roads.parquet --chunk 8192 --checkpoint model.safetensors --workers 2
  l2r extract mosaic.tif -o roads.gpkg --chunk 8192 --checkpoint model.safetensors \
      --scheduler tcp://10.0.0.5:8786
Many inputs (a folder or a glob): one OUT_DIR/{stem}.gpkg per input and OUT_DIR/summary.json;
a failed input does not stop the others (exit 2 names it). --chunk: one huge raster in chunks
merged into one seamless graph. Both resume: re-running the same command skips finished work.

\b
Weights: none ship with l2r. Train a checkpoint with `l2r prep` + `l2r train CONFIG.yaml`
(starting from SAM's official sam_vit_b_01ec64.pth, which you download yourself).
LineGraph2Road checkpoints (any front-end + topology head) give the graph through coupled NMS
and the topology head; segmentation-only checkpoints (nl_linknet.yaml, fctl.yaml,
experts.yaml) through mask2graph on their road mask; RoadGIE checkpoints (`l2r train roadgie`)
the same way, prompt-free or from your clicks and scribbles (--prompts).
"""
)
@click.argument("image", type=click.Path(path_type=str), metavar="INPUT")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=str),
    help="Output graph file; with a folder or glob INPUT, the output folder. Written atomically.",
)
@checkpoint_option
@frontend_option
@click.option(
    "--sam-checkpoint",
    type=click.Path(path_type=str),
    default=None,
    help="Official SAM .pth; only checked against the model size (the l2r checkpoint already "
    "holds the trained encoder).",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(GRAPH_FORMATS),
    default=None,
    help="Output graph format (default: from the output's extension).",
)
@click.option(
    "--windows",
    type=click.IntRange(min=1),
    default=None,
    help="Windows per axis (default: the layout's; auto: fewest with overlap > d_nei, 5 x 5 for "
    "2048 px; sam-road: 16).",
)
@click.option(
    "--layout",
    type=click.Choice(WINDOW_LAYOUTS),
    default="auto",
    show_default=True,
    help="Window layout. auto: the paper's fast layout (5 x 5 on a 2048 tile, appendix G). "
    "sam-road: SAM-Road's, behind the paper's City-scale/Global-scale numbers (16 x 16 with a "
    "64 px uncovered margin; about 10x the windows).",
)
@click.option(
    "--nms",
    type=click.Choice(NMS_MODES),
    default="coupled",
    show_default=True,
    help="Vertex extraction. coupled: the paper's coupled NMS (Algorithm 1). plain: SAM-Road's "
    "separate-then-merge NMS, for the paper's Table 4 ablation (holds the whole image's masks).",
)
@gsd_option
@device_option
@click.option(
    "--precision",
    type=click.Choice(["bf16", "fp32"]),
    default=None,
    help="Network precision (default: bf16 on CUDA, fp32 on CPU; bf16 is ~2.6x faster on CPU "
    "but its masks agree with fp32 only at IoU ~0.94-0.985, see bench/bench_extract.py).",
)
@click.option(
    "--save-masks",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    metavar="DIR",
    help="Also write keypoint/road/overpass probability GeoTIFFs to DIR.",
)
@click.option(
    "--t-topo",
    type=float,
    default=None,
    help="Edge threshold [default: the checkpoint's (selected by l2r train / l2r thresholds), "
    "else 0.5].",
)
@click.option(
    "--t-k",
    type=float,
    default=None,
    help="Keypoint threshold [default: the checkpoint's, else 0.248].",
)
@click.option(
    "--t-r",
    type=float,
    default=None,
    help="Road threshold [default: the checkpoint's, else 0.364].",
)
@click.option("--d-k", type=float, default=None, help="Keypoint NMS radius, px [default: 8].")
@click.option("--d-r", type=float, default=None, help="Road NMS radius, px [default: 16].")
@click.option("--d-nei", type=float, default=None, help="Candidate-edge radius, px [default: 64].")
@click.option(
    "--road-threshold",
    type=float,
    default=0.5,
    show_default=True,
    help="Segmentation-only checkpoints: road probability threshold for mask2graph.",
)
@click.option(
    "--min-spur-length",
    type=click.FloatRange(min=0),
    default=15.0,
    show_default=True,
    help="Segmentation-only checkpoints: prune dead ends shorter than this (px).",
)
@click.option(
    "--tta",
    is_flag=True,
    help="Segmentation-only checkpoints: average over the 8 flips/rotations (NL-LinkNet's TTA).",
)
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    default=None,
    metavar="PX",
    help="Split one huge raster into chunks of PX processed pixels (e.g. 8192), extract them on "
    "the workers and merge one seamless graph; at least the model's window.",
)
@prompt_options
@parallel_options
@progress_option
@handle_errors
def extract(
    image: str,
    output: str,
    checkpoint: str | None,
    frontend: str | None,
    sam_checkpoint: str | None,
    out_format: str | None,
    windows: int | None,
    layout: str,
    nms: str,
    gsd: float | None,
    device: str,
    precision: str | None,
    save_masks: str | None,
    t_topo: float | None,
    t_k: float | None,
    t_r: float | None,
    d_k: float | None,
    d_r: float | None,
    d_nei: float | None,
    road_threshold: float,
    min_spur_length: float,
    tta: bool,
    chunk: int | None,
    prompts: str | None,
    rounds: int,
    instantiate: bool,
    workers: int,
    scheduler: str | None,
    threads: int | None,
    progress: bool,
) -> None:
    """Extract a road graph from an image with a trained model.

    \b
    INPUT is a GeoTIFF or PNG (or a folder / glob of them): 1-band grey, RGB, RGBA (alpha =
    validity), 8 or 16 bit (16 bit is stretched between the 2 and 98 % percentiles); nodata
    pixels get no vertices or edges.
    Georeferenced rasters are resampled to the GSD the checkpoint was trained at (--gsd to
    override) and the output is georeferenced (GeoJSON in lon/lat, GraphML and GeoPackage in the
    raster's CRS); every edge carries its probability "prob".
    """
    from linegraph2road.pipelines.extract import ExtractOptions, run_extract

    def echo(line: str) -> None:
        click.echo(line, err=True)

    options = ExtractOptions(
        checkpoint=checkpoint,
        frontend=frontend,
        windows=windows,
        gsd=gsd,
        device=device,
        precision=precision,
        progress=progress,
        prompts=prompts,
        rounds=rounds,
        instantiate=instantiate,
        sam_checkpoint=sam_checkpoint,
        out_format=out_format,
        save_masks=save_masks,
        t_k=t_k,
        t_r=t_r,
        t_topo=t_topo,
        d_k=d_k,
        d_r=d_r,
        d_nei=d_nei,
        road_threshold=road_threshold,
        mask2graph={"min_spur_length": min_spur_length},
        tta=tta,
        layout=layout,
        nms=nms,
    )
    parallel = parallel_from(workers, scheduler, threads, progress)
    from linegraph2road.pipelines.batch import is_many, run_batch

    if chunk is not None:
        from linegraph2road.pipelines.chunked import run_extract_chunked

        if is_many(image):
            fail("--chunk takes one raster; give a file, not a folder or glob")
        chunked = run_extract_chunked(image, output, options, parallel, chunk=chunk, echo=echo)
        echo(chunked.summary)
        echo(describe(chunked.graph, output, out_format))
        return
    if is_many(image):
        report = run_batch("extract", image, output, options, parallel, echo=echo)
        c = report.counts()
        echo(f"wrote {c['done']} graph(s), kept {c['kept']}; summary: {report.summary_path}")
        return
    if parallel.distributed:
        echo("note: one image without --chunk runs in this process; add --chunk to split it")
    run = run_extract(image, output, options, echo=echo)
    echo(run.summary)
    echo(describe(run.graph, output, out_format))
