"""``l2r train``: train LineGraph2Road from a YAML config on ``l2r prep`` output."""

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
CONFIG is a YAML file or a packaged config: cityscale, spacenet, globalscale, tiny_cpu.
A data source is an `l2r prep` output folder (`data.train=DIR`), or a mapping
{labels: DIR, images: DIR, split: NAME} when the images live elsewhere (`l2r prep dataset`:
images = the dataset root). Outputs: OUT/config.yaml (the resolved config), OUT/log.csv,
OUT/checkpoints/{epoch_NNN,last,best}.safetensors (load with `l2r extract --checkpoint`).
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
    help="Stop after this many optimiser steps in all (a checkpoint is written there).",
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
    quarter turns, bf16 on GPU, TOPO/APLS validation each epoch, multi-GPU with torchrun.
    """
    from linegraph2road.pipelines.train import train as run_training
    from linegraph2road.training import load_config
    from linegraph2road.training.config import config_path

    cfg = load_config(config, overrides=overrides)
    out = Path(out_dir) if out_dir is not None else Path("runs") / config_path(config).stem

    def echo(message: str) -> None:
        click.echo(f"l2r train: {message}", err=True)

    result = run_training(cfg, out, resume=resume, max_steps=max_steps, echo=echo)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        best = f", best {result.best}" if result.best is not None else ""
        echo(f"{result.step} steps, {result.epoch} epoch(s) done; last {result.last}{best}")
