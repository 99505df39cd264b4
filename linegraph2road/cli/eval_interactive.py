"""``l2r eval-interactive``: RoadGIE driven by a simulated user, scored per round."""

from __future__ import annotations

import click

from linegraph2road.cli._errors import handle_errors


@click.command(
    "eval-interactive",
    epilog="""\b
Examples:
  l2r eval-interactive --checkpoint runs/roadgie/checkpoints/best.safetensors \\
      --data labels/test --rounds 5 --json inter.json --csv inter.csv --plot inter.png
  l2r eval-interactive --checkpoint roadgie.safetensors --data deepglobe/valid \\
      --kinds bezier --rounds 10 --instantiate

\b
Each round the simulated user looks at the prediction (> --threshold), adds
--prompts-per-round prompts of --kinds from its errors (clicks from the centre of an error
region, centre-line / straight / Bezier scribbles inside it; false negatives give positive
prompts, false positives negative ones) and RoadGIE runs again with every prompt so far. Per
round: Dice, Recall, clDice, APLS (Sat2Graph variant on mask2graph graphs of prediction and
ground truth) and the Betti-0/Betti-1 errors; NoI@0.85/0.90 = rounds to reach that Dice
(rounds + 1 when never). Tile i uses seed --seed + i: reruns give the same numbers.
""",
)
@click.option("--checkpoint", required=True, type=click.Path(path_type=str),
              help="RoadGIE checkpoint (`l2r train roadgie`).")  # fmt: skip
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(path_type=str),
    help="Images + road masks: l2r prep output or a DeepGlobe folder (repeatable).",
)
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Interaction rounds per image (paper: 5).")  # fmt: skip
@click.option(
    "--kinds",
    default="click,centre,line,bezier",
    show_default=True,
    help="Comma-separated prompt kinds the user draws from (uniformly).",
)
@click.option("--prompts-per-round", type=click.IntRange(min=1), default=1, show_default=True,
              help="Prompts the user adds each round (1: rounds = interactions).")  # fmt: skip
@click.option("--instantiate/--no-instantiate", default=False, show_default=True,
              help="Topo-semantic instantiation of each round's output (RoadGIE 4.3).")  # fmt: skip
@click.option(
    "--expert-guided",
    is_flag=True,
    help="Bias positive prompts with the tiles' cached {id}_uncertainty.png.",
)
@click.option("--threshold", type=float, default=0.5, show_default=True,
              help="Road probability the user sees as road and the scores count.")  # fmt: skip
@click.option("--gsd", type=float, default=1.0, show_default=True, help="Metres per pixel (APLS).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the simulated user (tile i uses seed + i).")  # fmt: skip
@click.option("--max-tiles", type=click.IntRange(min=1), default=None,
              help="Evaluate at most this many tiles.")  # fmt: skip
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Report: settings, per-round summary, per-image rounds.")  # fmt: skip
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="One row per image and round, then the per-round means.")  # fmt: skip
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="PNG of the mean Dice, Recall, clDice and APLS per round.")  # fmt: skip
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["bf16", "fp32"]), default=None,
              help="Network precision (default: bf16 on CUDA, fp32 on CPU).")  # fmt: skip
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr.")  # fmt: skip
@handle_errors
def eval_interactive(
    checkpoint: str,
    data: tuple[str, ...],
    rounds: int,
    kinds: str,
    prompts_per_round: int,
    instantiate: bool,
    expert_guided: bool,
    threshold: float,
    gsd: float,
    seed: int,
    max_tiles: int | None,
    json_path: str | None,
    csv_path: str | None,
    plot_path: str | None,
    device: str,
    precision: str | None,
    progress: bool,
) -> None:
    """Score a RoadGIE checkpoint over simulated interaction rounds (Table 4 of the paper)."""
    from linegraph2road.pipelines.eval_interactive import InteractiveSettings, run_eval_interactive

    settings = InteractiveSettings(
        rounds=rounds, kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
        prompts_per_round=prompts_per_round, seed=seed, instantiate=instantiate,
        expert_guided=expert_guided, threshold=threshold, gsd=gsd,
    )  # fmt: skip

    def echo(line: str) -> None:
        click.echo(f"l2r eval-interactive: {line}", err=True)

    report = run_eval_interactive(
        checkpoint, data, settings=settings, device=device, precision=precision,
        max_tiles=max_tiles, json_path=json_path, csv_path=csv_path, plot_path=plot_path,
        progress=progress, echo=echo,
    )  # fmt: skip
    click.echo(report.table())
    for path in (json_path, csv_path, plot_path):
        if path is not None:
            echo(f"wrote {path}")
