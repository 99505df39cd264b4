"""``l2r segment``."""

from __future__ import annotations

import click

from linegraph2road.cli._errors import handle_errors
from linegraph2road.cli.options import (
    checkpoint_option,
    device_option,
    frontend_option,
    gsd_option,
    parallel_from,
    parallel_options,
    precision_option,
    progress_option,
    prompt_options,
)


@click.command(
    epilog="""\b
Examples:
  l2r segment scene.tif -o scene_road.tif --checkpoint nl34.safetensors
  l2r segment scene.tif -o scene_road.tif --frontend nl-linknet --checkpoint nl34.safetensors --tta
  l2r segment ortho.tif -o ortho_road.tif --frontend fctl --checkpoint fctl.safetensors
  l2r segment scene.tif -o masks.tif --checkpoint cityscale.safetensors --all-masks
  l2r segment tile.png -o tile_road.png --checkpoint experts.safetensors --threshold 0.5
  l2r segment tiles/ -o masks/ --checkpoint nl34.safetensors --workers 4
  l2r segment scene.tif -o road.tif --frontend roadgie --checkpoint roadgie.safetensors \
      --prompts clicks.geojson --rounds 3

Many inputs (a folder or a glob): one OUT_DIR/{stem}.tif per input and OUT_DIR/summary.json; a
failed input does not stop the others; re-running skips finished inputs.

\b
Weights: none ship with l2r. Any l2r checkpoint works: a segmentation-only front-end
(`l2r train nl_linknet.yaml`, fctl.yaml, experts.yaml), a RoadGIE model (`l2r train roadgie`;
prompt-free, or with --prompts) or a LineGraph2Road model (its front-end's masks).
"""
)
@click.argument("image", type=click.Path(path_type=str), metavar="INPUT")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=str),
    help="Output GeoTIFF (.tif) of float32 probabilities, georeferenced like the processed "
    "image; PNG with --threshold; a folder for a folder/glob INPUT. Written atomically.",
)
@checkpoint_option
@frontend_option
@click.option(
    "--all-masks", is_flag=True, help="Write 3 bands keypoint, road, overpass (default: road)."
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="Write a uint8 0/1 mask of probability > THRESHOLD instead of probabilities.",
)
@click.option(
    "--windows",
    type=click.IntRange(min=1),
    default=None,
    help="Windows per axis (default: the fewest with 1/8-window overlap; FCtL: paper's patches).",
)
@gsd_option
@device_option
@precision_option
@click.option("--tta", is_flag=True, help="Average over the 8 flips/rotations (NL-LinkNet's TTA).")
@click.option(
    "--tta-scales",
    is_flag=True,
    help="Also average over scales 0.75, 1, 1.25 (NL-LinkNet only; the paper's multi-scale test).",
)
@prompt_options
@parallel_options
@progress_option
@handle_errors
def segment(
    image: str,
    output: str,
    checkpoint: str | None,
    frontend: str | None,
    all_masks: bool,
    threshold: float | None,
    windows: int | None,
    gsd: float | None,
    device: str,
    precision: str | None,
    tta: bool,
    tta_scales: bool,
    prompts: str | None,
    rounds: int,
    instantiate: bool,
    workers: int,
    scheduler: str | None,
    threads: int | None,
    progress: bool,
) -> None:
    """Write the road probability mask of an image (segmentation only, no graph).

    \b
    INPUT is a GeoTIFF or PNG, or a folder / glob of them (1-band, RGB, RGBA, 8 or 16 bit;
    nodata pixels get 0), resampled to --gsd when georeferenced. The output has the processed
    image's grid and georeference.
    """
    from linegraph2road.pipelines.options import SegmentOptions
    from linegraph2road.pipelines.segment import run_segment

    def echo(line: str) -> None:
        click.echo(line, err=True)

    options = SegmentOptions(
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
        all_masks=all_masks,
        threshold=threshold,
        tta=tta,
        tta_scales=(0.75, 1.0, 1.25) if tta_scales else (1.0,),
    )
    from linegraph2road.pipelines.batch import is_many, run_batch

    if is_many(image):
        parallel = parallel_from(workers, scheduler, threads, progress)
        report = run_batch("segment", image, output, options, parallel, echo=echo)
        c = report.counts()
        echo(f"wrote {c['done']} mask(s), kept {c['kept']}; summary: {report.summary_path}")
        return
    result = run_segment(image, output, options, echo=echo)
    h, w = result.valid.shape
    road = result.road[result.valid]
    cut = 0.5 if threshold is None else threshold
    share = float((road > cut).mean()) if road.size else 0.0
    echo(
        f"{result.windows} windows; {result.timings['total']:.1f} s; wrote {output} ({w} x {h} px, "
        f"{100 * share:.1f} % road at {cut:g})"
    )
