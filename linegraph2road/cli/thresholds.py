"""``l2r thresholds``: re-select a checkpoint's keypoint, road and topology thresholds."""

from __future__ import annotations

import click

from linegraph2road.cli._errors import handle_errors
from linegraph2road.cli.options import device_option, precision_option


@click.command(
    "thresholds",
    epilog="""\b
Examples:
  l2r thresholds runs/cs/checkpoints/best.safetensors --labels labels/cityscale \\
      --images cityscale/20cities --split valid -o best_thresholds.safetensors
  l2r thresholds model.safetensors --labels labels/val             # print only
  l2r thresholds model.safetensors --labels labels/val --in-place  # update it (atomically)

\b
SAM-Road's threshold selection, which the paper follows: the model runs on the windows of
labelled tiles (`l2r prep` output at the model's GSD); for the keypoint mask, the road mask and
the topology scores of the labelled candidate edges, the threshold is the best-F1 point of the
precision-recall curve. The new checkpoint records them and `l2r extract` uses them unless
--t-k / --t-r / --t-topo say otherwise. `l2r train` already selects them at every validation.
""",
)
@click.argument("checkpoint", type=click.Path(path_type=str))
@click.option(
    "--labels",
    "labels",
    multiple=True,
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="l2r prep output folder with labelled tiles (repeatable).",
)
@click.option(
    "--images",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Where the tiles' images are (default: as l2r prep recorded; see l2r train).",
)
@click.option("--split", default=None, help="Use only the tiles of this split (e.g. valid).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Write a copy of the checkpoint with the selected thresholds (atomically).",
)
@click.option(
    "--in-place", is_flag=True, help="Record the thresholds in CHECKPOINT itself (atomically)."
)
@click.option("--max-tiles", type=click.IntRange(min=1), default=None, help="Use at most N tiles.")
@device_option
@precision_option
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Windows per pass.",
)
@handle_errors
def thresholds(
    checkpoint: str,
    labels: tuple[str, ...],
    images: str | None,
    split: str | None,
    output: str | None,
    in_place: bool,
    max_tiles: int | None,
    device: str,
    precision: str | None,
    batch_size: int,
) -> None:
    """Select the keypoint, road and topology thresholds of CHECKPOINT on labelled tiles.

    Prints each threshold with the precision, recall and F1 at it; with -o (or --in-place)
    writes them into the checkpoint, never touching CHECKPOINT unless --in-place.
    """
    from linegraph2road.pipelines.thresholds import run_thresholds
    from linegraph2road.training import DataSource

    def echo(line: str) -> None:
        click.echo(f"l2r thresholds: {line}", err=True)

    sources = [DataSource(labels=d, images=images, split=split) for d in labels]
    run = run_thresholds(
        checkpoint,
        sources,
        output=output,
        in_place=in_place,
        max_tiles=max_tiles,
        device=device,
        precision=precision,
        batch_size=batch_size,
        echo=echo,
    )
    sel = run.selection
    click.echo(
        f"best F1 of each precision-recall curve, {sel.tiles} tile(s), {sel.windows} window(s):"
    )
    for line in sel.lines():
        click.echo(f"  {line}")
    if run.previous is not None:
        before = ", ".join(f"{k} {run.previous[k]:g}" for k in ("t_k", "t_r", "t_topo"))
        click.echo(f"the checkpoint had: {before} ({run.previous['source']})")
    if run.written is None:
        echo("nothing written: pass -o NEW.safetensors (or --in-place) to record them")
    else:
        echo(f"wrote {run.written}: l2r extract uses these thresholds by default")
