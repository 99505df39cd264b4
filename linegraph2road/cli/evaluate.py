"""``l2r eval``."""

from __future__ import annotations

import math
import sys
from typing import Any

import click

from linegraph2road.cli._errors import handle_errors
from linegraph2road.cli.options import parallel_from, parallel_options
from linegraph2road.io import GRAPH_FORMATS

_DATASETS = ("cityscale", "spacenet", "globalscale")


@click.command(
    "eval",
    epilog="""\b
Examples:
  # City-scale test split (27 tiles): predictions named region_9.p, 9.p or region_9_graph.geojson
  l2r eval --gt 20cities/ --pred out/graph/ --dataset cityscale --json eval.json --csv eval.csv
\b
  # SpaceNet (data_split.json in the GT folder or its parent), 4 local Dask workers, plots
  l2r eval --gt spacenet/RGB_1.0_meter --pred out/graph --dataset spacenet --workers 4 \\
      --plots plots/
\b
  # Global-scale out-of-domain split, TOPO only
  l2r eval --gt Global-Scale/out_of_domain --pred out/graph --dataset globalscale --split ood \\
      --metrics topo
\b
  # One pair, SpaceNet's official APLS (apls-cli: CosmiQ's command-line defaults)
  l2r eval --gt AOI_2_Vegas_img0_gt.gpickle --pred prop.gpickle --metrics apls \\
      --apls-variant cosmiq --apls-preset apls-cli
\b
Tile ids come from file names: the extension and endings such as _graph_gt, _refine_gt_graph,
__gt_graph, _gt_graph, _gt, _graph, _pred, _prop are stripped (region_9_graph_gt.pickle,
region_9.p and 9.p all are region_9). A ground-truth tile without prediction is scored against
an empty graph and flagged; predictions without ground truth are listed and ignored.
""",
)
@click.option(
    "--gt",
    required=True,
    type=click.Path(path_type=str),
    help="Ground-truth graph file, or a folder of them.",
)
@click.option(
    "--pred",
    required=True,
    type=click.Path(path_type=str),
    help="Predicted graph file, or a folder of them (matched to the ground truth by tile id).",
)
@click.option(
    "--metrics",
    default="topo,apls",
    show_default=True,
    help="Comma-separated metrics: topo, apls.",
)
@click.option(
    "--apls-variant",
    type=click.Choice(("sat2graph", "cosmiq")),
    default="sat2graph",
    show_default=True,
    help="sat2graph: what City-scale/Global-scale/SpaceNet papers report; cosmiq: SpaceNet's "
    "official scorer. Never compare numbers of the two.",
)
@click.option(
    "--apls-preset",
    type=click.Choice(("spacenet", "apls-cli")),
    default=None,
    help="CosmiQ variant's parameters: spacenet (default: midpoints every 50 m on every edge, "
    "1000 control points) or apls-cli (CosmiQ apls.py's own defaults, used for its published "
    "sample output: midpoints every 200 m on edges curved > 12 %, 500 control points).",
)
@click.option(
    "--small-tiles",
    is_flag=True,
    help="Small-tile settings (400 px tiles) without --dataset: Sat2Graph APLS small-tile "
    "parameters and TOPO radius 166.7 m.",
)
@click.option(
    "--dataset",
    type=click.Choice(_DATASETS),
    default=None,
    help="Apply a benchmark's protocol: its split, aggregation and tile parameters. Without it "
    "every ground-truth tile counts and the summary is the mean of per-tile values.",
)
@click.option(
    "--split",
    default=None,
    help="Split of --dataset: test (default) or, for globalscale, ood (every tile found).",
)
@click.option(
    "--split-file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="SpaceNet data_split.json (default: in the ground-truth folder or its parent).",
)
@parallel_options
@click.option(
    "--gsd",
    type=float,
    default=None,
    help="Metres per pixel of pixel graphs (default 1, the benchmarks' convention).",
)
@click.option(
    "--topo-radius",
    type=float,
    default=None,
    help="TOPO propagation radius in metres (default: the protocol's, else the reference rule: "
    "333.3 m, or 166.7 m when all nodes lie within 1111 m of the top).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of APLS's choices.")
@click.option(
    "--gt-format",
    type=click.Choice(GRAPH_FORMATS),
    default=None,
    help="Ground-truth file format (default: from the extension).",
)
@click.option(
    "--pred-format",
    type=click.Choice(GRAPH_FORMATS),
    default=None,
    help="Prediction file format (default: from the extension).",
)
@click.option(
    "--gt-glob",
    default=None,
    metavar="GLOB",
    help="Only ground-truth files matching GLOB, e.g. '*_graph_gt.pickle'.",
)
@click.option(
    "--pred-glob", default=None, metavar="GLOB", help="Only prediction files matching GLOB."
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Write the report (summary, per-image rows, every parameter) as JSON; NaN -> null.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Write one row per image and a last 'summary' row as CSV; NaN -> empty cell.",
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Write DIR/<id>.png per image: ground truth blue, prediction orange, ground truth with "
    "no prediction within 11.1 m red, prediction with no ground truth nearby magenta.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
@handle_errors
def evaluate(**options: Any) -> None:
    """Score predicted road graphs against ground truth with TOPO and APLS.

    GT and PRED are graph files in any format `l2r convert` reads, or folders of them. Reports
    are written only after every image is scored; bad input stops with one line and exit code 2.

    \b
    Protocols (--dataset):
      cityscale    test = region_i with i % 10 == 9 or i % 20 == 8 (27 tiles); mean of per-tile
                   P, R, F1 and APLS; 2048 px tiles
      spacenet     test = the "test" list of data_split.json (382 tiles); TOPO F1 of mean P and
                   mean R (tiles with P + R = 0 left out), APLS mean (NaN left out); 400 px tiles
      globalscale  test = region_2714 ... region_3337 (624 tiles); ood = every tile of the
                   out_of_domain folder (130); as cityscale
    """
    from linegraph2road.pipelines.evaluate import evaluate_graphs

    parallel = parallel_from(
        options.pop("workers"),
        options.pop("scheduler"),
        options.pop("threads"),
        bool(options["progress"]) if options["progress"] is not None else sys.stderr.isatty(),
    )
    report = evaluate_graphs(options.pop("gt"), options.pop("pred"), parallel=parallel, **options)
    for line in report.warnings:
        click.echo(f"l2r eval: warning: {line}", err=True)
    click.echo(summary_table(report.to_dict()))


def _num(v: Any) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def summary_table(report: dict[str, Any]) -> str:
    """The short stdout table of a JSON-ready report."""
    s, p = report["summary"], report["params"]
    where = f"{p['dataset']} {p['split']} split" if p.get("dataset") else "all ground-truth tiles"
    lines = [f"images   {s['n_images']} ({where}; {s['n_missing_predictions']} without prediction)"]
    if "topo" in s:
        t = s["topo"]
        lines.append(
            f"TOPO     P {_num(t['precision'])}  R {_num(t['recall'])}  F1 {_num(t['f1'])}"
            f"   [{t['aggregation']}; {t['n_images']} images]"
        )
    if "apls" in s:
        a = s["apls"]
        variant = a["variant"] + (f" ({a['preset']} preset)" if a.get("preset") else "")
        lines.append(
            f"APLS     {_num(a['score'])}  gt->prop {_num(a['gt_to_prop'])}  "
            f"prop->gt {_num(a['prop_to_gt'])}   [{variant} variant; {a['n_images']} images]"
        )
    return "\n".join(lines)
