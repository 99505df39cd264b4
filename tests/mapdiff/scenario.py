"""Known map changes made from the real OSM fixture, for ``l2r diff`` tests and its benchmark.

The *prediction* is the fixture's road graph itself (what a perfect extractor would return). The
*reference* is a copy of the fixture, written with pyosmium, from which known roads
(:data:`REMOVED_WAYS`) were removed and into which known fake roads (:data:`FAKE_ROADS`, placed in
empty parts of the extract, one of them a spur off a real road) were added. A correct diff finds
the removed roads ``missing_from_ref``, the fake ones ``not_seen`` and everything else matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linegraph2road.data_prep import load_roads
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.georef import WGS84, transform_points
from linegraph2road.graph import RoadGraph

FIXTURE = Path("osm") / "finland_motorway_test.osm.pbf"
UTM = "EPSG:32635"  # the fixture's UTM zone

#: OSM ways removed from the reference (residential, tertiary and one motorway ramp).
REMOVED_WAYS: tuple[int, ...] = (
    82522360,  # residential, 681 m
    80413046,  # residential, 664 m
    172093341,  # tertiary, 532 m
    74057309,  # residential, 464 m
    39699618,  # motorway_link, 444 m (leaves the motorway at a small angle)
    84651902,  # residential, 433 m
    363960734,  # tertiary, 348 m
    62061759,  # residential, 279 m
    74060719,  # residential, 235 m
)

#: Fake roads added to the reference: UTM zone 35N (x, y) metres, each at least 40 m from every
#: real road except where the spur (the last one) starts on one.
FAKE_ROADS: tuple[tuple[tuple[float, float], ...], ...] = (
    ((497430.0, 6709690.0), (497530.0, 6709760.0), (497640.0, 6709810.0)),
    ((496180.0, 6710900.0), (496230.0, 6711000.0), (496340.0, 6711020.0)),
    ((496660.0, 6711380.0), (496640.0, 6711470.0), (496600.0, 6711530.0)),
    ((498310.0, 6710184.0), (498312.0, 6710090.0)),  # completed to a spur in build_reference
)
FAKE_WAY_ID0 = 9_000_000_000
FAKE_NODE_ID0 = 90_000_000_000


@dataclass(frozen=True)
class Scenario:
    """A prediction, a reference file and the truth of every edge."""

    pred: RoadGraph
    ref_path: Path
    ref: TaggedGraph
    pred_removed: np.ndarray  # (E_pred,) bool: edge of a removed way
    pred_way_id: np.ndarray  # (E_pred,) int64: the OSM way of each edge
    ref_fake: np.ndarray  # (E_ref,) bool: edge of a fake road


def fake_roads(fixture: TaggedGraph) -> list[np.ndarray]:
    """The fake roads in UTM metres; the spur starts at the nearest point of a real road."""
    import shapely

    xy = transform_points(fixture.graph.nodes, WGS84, UTM)
    e = fixture.graph.edges
    lines = shapely.linestrings(np.stack([xy[e[:, 0]], xy[e[:, 1]]], axis=1))
    roads = [np.asarray(r, dtype=np.float64) for r in FAKE_ROADS]
    tip = shapely.points(roads[-1][0])
    nearest = lines[int(np.argmin(shapely.distance(lines, tip)))]
    start = np.asarray(shapely.get_coordinates(shapely.shortest_line(nearest, tip)))[0]
    roads[-1] = np.stack([start, roads[-1][0]])
    return roads


def build_reference(fixtures_dir: Path, out: Path) -> Path:
    """Write the changed copy of the fixture to ``out`` (.osm.pbf) and return it."""
    import osmium
    import osmium.io

    src = fixtures_dir / FIXTURE
    fixture = load_roads(src)
    header = osmium.io.Header()
    box = osmium.FileProcessor(str(src)).header.box()
    header.add_box(box)
    node_id = FAKE_NODE_ID0
    writer = osmium.SimpleWriter(str(out), header=header, overwrite=True)
    try:
        for obj in osmium.FileProcessor(str(src), osmium.osm.NODE):
            writer.add_node(obj)
        fake_ways = []
        for k, road in enumerate(fake_roads(fixture)):
            refs = []
            for lon, lat in transform_points(road, UTM, WGS84).tolist():
                writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat)))
                refs.append(node_id)
                node_id += 1
            fake_ways.append((FAKE_WAY_ID0 + k, refs))
        for obj in osmium.FileProcessor(str(src), osmium.osm.WAY):
            if obj.id not in REMOVED_WAYS:
                writer.add_way(obj)
        for wid, refs in fake_ways:
            writer.add_way(
                osmium.osm.mutable.Way(id=wid, nodes=refs, tags={"highway": "residential"})
            )
    finally:
        writer.close()
    return out


def jittered(graph: RoadGraph, *, low: float, high: float, seed: int = 0) -> RoadGraph:
    """``graph`` (lon/lat) with every node moved ``U(low, high)`` metres in a random direction."""
    rng = np.random.default_rng(seed)
    xy = transform_points(graph.nodes, WGS84, UTM)
    r = rng.uniform(low, high, len(xy))
    a = rng.uniform(0.0, 2.0 * np.pi, len(xy))
    moved = xy + np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    return graph.replace(nodes=transform_points(moved, UTM, WGS84))


def shifted(graph: RoadGraph, *, dx: float, dy: float) -> RoadGraph:
    """``graph`` (lon/lat) moved by ``(dx, dy)`` metres (imagery misregistered against the map)."""
    xy = transform_points(graph.nodes, WGS84, UTM) + np.array([dx, dy])
    return graph.replace(nodes=transform_points(xy, UTM, WGS84))


def build_scenario(fixtures_dir: Path, out_dir: Path) -> Scenario:
    """The fixture as the prediction and its changed copy as the reference."""
    fixture = load_roads(fixtures_dir / FIXTURE)
    ref_path = build_reference(fixtures_dir, out_dir / "reference.osm.pbf")
    ref = load_roads(ref_path)
    return Scenario(
        fixture.graph,
        ref_path,
        ref,
        np.isin(fixture.way_id, REMOVED_WAYS),
        fixture.way_id,
        ref.way_id >= FAKE_WAY_ID0,
    )
