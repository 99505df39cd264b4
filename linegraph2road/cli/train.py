"""``l2r train``: train LineGraph2Road, or a segmentation front-end alone with its paper's
recipe (``task: segmentation`` configs), from a YAML config on ``l2r prep`` output."""

from __future__ import annotations

import os
from pathlib import Path

import click

from linegraph2road.cli._errors import handle_errors


@click.command(
    "train",
    epilog="""\b
Examples:
  l2r train cityscale -o runs/cityscale --set data.train=labels/cityscale_train \\
      --set data.val=labels/cityscale_valid --set model.sam_checkpoint=sam_vit_b_01ec64.pth
  l2r train my_config.yaml -o runs/exp1 --resume
  l2r train tiny_cpu --set data.train=labels/vegas --max-steps 50 -o runs/smoke
  torchrun --nproc_per_node 4 -m linegraph2road train cityscale.yaml -o runs/cs

\b
Segmentation front-ends alone, each with its paper's recipe (task: segmentation):
  l2r train nl_linknet -o runs/nl34 --set data.train=labels/train --set data.val=labels/val
  l2r train fctl -o runs/fctl --set data.train=labels/train --set optim.refiner_epochs=0
  l2r train experts -o runs/experts --set data.train=[labels/paris,labels/vegas] \\
      --set optim.locations=folder
  l2r train nl_linknet_tiny_cpu --set data.train=labels/vegas --max-steps 20 -o runs/smoke

\b
CONFIG is a YAML file or a packaged config. LineGraph2Road: cityscale, spacenet,
globalscale, tiny_cpu. Segmentation only: nl_linknet, fctl, experts (the papers' values)
and nl_linknet_tiny_cpu, fctl_tiny_cpu, experts_tiny_cpu (CPU smoke runs).
A data source is an `l2r prep` output folder (`data.train=DIR`), or a mapping
{labels: DIR, images: DIR, split: NAME} when the images live elsewhere (`l2r prep dataset`:
images = the dataset root). Outputs: OUT/config.yaml (the resolved config), OUT/log.csv,
OUT/checkpoints/{epoch_NNN,last,best}.safetensors (load with `l2r extract --checkpoint`).
Segmentation runs write OUT/checkpoints/{last,best}.safetensors (best = best validation road
IoU), for `l2r segment` and `l2r extract --frontend`; they do not resume.
""",
)
@click.argument("config", type=str)
@click.option(
    "-o",
    "--out-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Run folder (default: runs/CONFIG_NAME).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out-dir from checkpoints/last.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value (repeatable), e.g. --set optim.lr=1e-4 --set data.train=DIR.",
)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many optimiser steps in all (a checkpoint is written there); "
    "segmentation runs: per training phase.",
)
@handle_errors
def train(
    config: str,
    out_dir: str | None,
    resume: bool,
    overrides: tuple[str, ...],
    max_steps: int | None,
) -> None:
    """Train the model on prepared tiles; checkpoints every epoch, resumable.

    Adam (lr 1e-3, SAM encoder x0.05), BCE(masks) + 0.1 BCE(candidate edges), random crops and
    quarter turns, bf16 on GPU, TOPO/APLS validation every `validation.every` epochs (the paper
    configs: each epoch; tiny_cpu: every 10), multi-GPU with torchrun. A validation tile whose
    candidate graph is too large to score (an under-trained model) is skipped with a message,
    never ending the run. The checkpoint records the GSD of the labels (`l2r prep --gsd`), which
    `l2r extract` then uses. A `task: segmentation` config trains an NL-LinkNet, FCtL or experts
    front-end alone with its own paper's recipe instead (road IoU validation every
    `validation.every` epochs).
    """
    from linegraph2road.errors import ParameterError
    from linegraph2road.training.config import config_path, load_any_config
    from linegraph2road.training.segmentation.config import SegmentationConfig

    cfg = load_any_config(config, overrides=overrides)
    out = Path(out_dir) if out_dir is not None else Path("runs") / config_path(config).stem

    def echo(message: str) -> None:
        click.echo(f"l2r train: {message}", err=True)

    if isinstance(cfg, SegmentationConfig):
        if resume:
            raise ParameterError(
                "--resume is not available for task: segmentation (the front-end recipes run "
                "start to finish); start a new run with another -o"
            )
        from linegraph2road.pipelines.train_segmentation import train_segmentation

        seg = train_segmentation(cfg, out, max_steps=max_steps, echo=echo)
        iou = f", best road IoU {seg.best_iou:.4f} ({seg.best})" if seg.best is not None else ""
        echo(f"{seg.steps} steps done; last {seg.last}{iou}")
        return

    from linegraph2road.pipelines.train import train as run_training

    result = run_training(cfg, out, resume=resume, max_steps=max_steps, echo=echo)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        best = f", best {result.best}" if result.best is not None else ""
        echo(f"{result.step} steps, {result.epoch} epoch(s) done; last {result.last}{best}")
