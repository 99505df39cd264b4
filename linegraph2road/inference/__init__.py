"""Sliding-window inference: imagery in, road graph out (SPEC "Data flow" 1-7).

* :func:`extract_graph` (:mod:`.extract`): a LineGraph2Road model over an image or raster ->
  :class:`ExtractResult` (graph with per-edge probability, optional masks, vertices, timings);
* :class:`RasterSource` (:mod:`.imagery`): a raster read window by window as RGB uint8 at the
  model's ground sampling distance (band, bit-depth, nodata and GSD handling);
* :func:`window_grid`, :func:`layout_grid` (:mod:`.windows`): where the windows go (``"auto"``:
  5 x 5 of 512 px on 2048 px; ``"sam-road"``: SAM-Road's 16 x 16 with a 64 px margin);
* :func:`predict_round` / :func:`segment_with_prompts` (:mod:`.interactive`): RoadGIE rounds
  with clicks and scribbles on a view or over a raster; :func:`simulate_session`
  (:mod:`.simulated_user`): a simulated user driving them.
* :func:`plan_chunks`, :func:`extract_chunk`, :func:`merge_chunks` (:mod:`.chunks`): one huge
  raster in chunks over the same window grid, merged into one seamless graph.
"""

from __future__ import annotations

from linegraph2road.inference.chunks import (
    Chunk,
    ChunkPlan,
    ChunkResult,
    extract_chunk,
    merge_chunks,
    plan_chunks,
)
from linegraph2road.inference.extract import (
    PRECISIONS,
    TIMING_KEYS,
    ExtractResult,
    extract_graph,
    window_layout,
)
from linegraph2road.inference.imagery import RasterSource, stretch_to_uint8
from linegraph2road.inference.interactive import predict_round, segment_with_prompts
from linegraph2road.inference.simulated_user import SessionRound, simulate_session
from linegraph2road.inference.windows import (
    DEFAULT_MIN_OVERLAP,
    SAM_ROAD_MARGIN,
    SAM_ROAD_WINDOWS,
    WINDOW_LAYOUTS,
    axis_offsets,
    layout_grid,
    margin_offsets,
    n_windows_for,
    window_grid,
)

__all__ = [
    "DEFAULT_MIN_OVERLAP",
    "PRECISIONS",
    "SAM_ROAD_MARGIN",
    "SAM_ROAD_WINDOWS",
    "TIMING_KEYS",
    "WINDOW_LAYOUTS",
    "Chunk",
    "ChunkPlan",
    "ChunkResult",
    "ExtractResult",
    "RasterSource",
    "SessionRound",
    "axis_offsets",
    "extract_chunk",
    "extract_graph",
    "layout_grid",
    "margin_offsets",
    "merge_chunks",
    "n_windows_for",
    "plan_chunks",
    "predict_round",
    "segment_with_prompts",
    "simulate_session",
    "stretch_to_uint8",
    "window_grid",
    "window_layout",
]
