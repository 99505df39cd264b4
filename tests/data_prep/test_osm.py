"""OpenStreetMap reader: highway filter, way splitting, tags, corrupt files, the real extract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linegraph2road.data_prep.osm import (
    DEFAULT_HIGHWAYS,
    LONLAT,
    highway_filter,
    parse_layer,
    read_osm,
)
from linegraph2road.errors import FormatError, InputFileError

# id: (lon, lat)
_NODES = {
    1: (26.930, 60.520),
    2: (26.931, 60.520),
    3: (26.932, 60.520),
    4: (26.932, 60.521),
    5: (26.940, 60.530),
    6: (26.941, 60.530),
    7: (26.933, 60.521),
    8: (26.934, 60.521),
    9: (26.935, 60.525),
    10: (26.935, 60.526),
    11: (26.936, 60.525),
    12: (26.936, 60.526),
    13: (26.937, 60.525),
    14: (26.937, 60.527),
    15: (26.938, 60.525),
    16: (26.938, 60.526),
}
# (way id, node refs, tags)
_WAYS = [
    (100, [1, 2, 3], {"highway": "motorway"}),
    (101, [3, 4], {"highway": "residential"}),  # shares node 3: joins the motorway
    (102, [5, 6], {"highway": "footway"}),  # never a road
    (103, [4, 7], {"highway": "service"}),  # only with include_service
    (104, [7, 8], {"highway": "track"}),  # only with include_tracks
    (105, [9, 10], {"highway": "secondary", "bridge": "yes", "layer": "1"}),
    (106, [11, 12], {"highway": "tertiary", "tunnel": "yes"}),
    (107, [13, 99, 14], {"highway": "residential"}),  # node 99 is not in the file
    (108, [15, 15, 16], {"highway": "unclassified", "bridge": "no", "layer": "x"}),
    (109, [9, 11], {"highway": "residential", "area": "yes"}),  # an area, not a road
    (110, [2, 1], {"highway": "motorway_link"}),  # same edge as way 100: kept once
]


def write_osm_xml(path: Path, nodes: dict[int, tuple[float, float]], ways: list) -> Path:
    """A tiny OSM XML file with the given nodes and ways."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    lines += [f'<node id="{i}" lat="{lat}" lon="{lon}"/>' for i, (lon, lat) in nodes.items()]
    for wid, refs, tags in ways:
        lines.append(f'<way id="{wid}">')
        lines += [f'<nd ref="{r}"/>' for r in refs]
        lines += [f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("</way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def tiny_osm(tmp_path: Path) -> Path:
    return write_osm_xml(tmp_path / "tiny.osm", _NODES, _WAYS)


def test_default_highway_filter() -> None:
    assert highway_filter() == DEFAULT_HIGHWAYS
    assert {"motorway", "motorway_link", "trunk_link", "residential", "living_street"} <= (
        DEFAULT_HIGHWAYS
    )
    assert not {"service", "track", "footway", "cycleway", "path"} & DEFAULT_HIGHWAYS
    assert highway_filter(include_service=True) - DEFAULT_HIGHWAYS == {"service"}
    assert highway_filter(include_tracks=True, extra=["road"]) - DEFAULT_HIGHWAYS == {
        "track",
        "road",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0), ("", 0), ("1", 1), ("-1", -1), ("+2", 2), ("1;2", 1), ("0.5", 0), ("x", 0)],
)
def test_parse_layer(value: str | None, expected: int) -> None:
    assert parse_layer(value) == expected


def test_tiny_osm_default(tiny_osm: Path) -> None:
    t = read_osm(tiny_osm)
    g = t.graph
    assert t.tagged and g.georef == LONLAT
    # nodes in order of first appearance along the kept ways
    expected_ids = [1, 2, 3, 4, 9, 10, 11, 12, 15, 16]
    np.testing.assert_array_equal(g.nodes, [_NODES[i] for i in expected_ids])
    np.testing.assert_array_equal(g.edges, [[0, 1], [1, 2], [2, 3], [4, 5], [6, 7], [8, 9]])
    np.testing.assert_array_equal(t.bridge, [0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(t.tunnel, [0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(t.layer, [0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(t.level(), [0, 0, 0, 1, -1, 0])
    assert t.highway.tolist() == [
        "motorway",
        "motorway",
        "residential",
        "secondary",
        "tertiary",
        "unclassified",
    ]
    # the way that drew each edge (way 110 repeats an edge of way 100: the first way keeps it)
    np.testing.assert_array_equal(t.way_id, [100, 100, 101, 105, 106, 108])
    assert g.degrees()[2] == 2  # node 3 joins the motorway and the residential way
    assert g.meta["extent"] == pytest.approx((26.930, 60.520, 26.941, 60.530))


def test_tiny_osm_service_and_tracks(tiny_osm: Path) -> None:
    both = read_osm(tiny_osm, include_service=True, include_tracks=True)
    assert sorted(set(both.highway.tolist()) - set(read_osm(tiny_osm).highway.tolist())) == [
        "service",
        "track",
    ]
    assert both.graph.num_edges == 8
    only = read_osm(tiny_osm, highways=["footway"])
    assert only.graph.num_edges == 1 and only.highway.tolist() == ["footway"]


def test_empty_osm_file(tmp_path: Path) -> None:
    t = read_osm(write_osm_xml(tmp_path / "empty.osm", {}, []))
    assert t.graph.num_nodes == 0 and t.graph.num_edges == 0 and t.tagged
    assert t.graph.meta["extent"] is None


def test_truncated_pbf(fixtures_dir: Path, tmp_path: Path) -> None:
    data = (fixtures_dir / "osm" / "finland_motorway_test.osm.pbf").read_bytes()
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated or corrupt") as exc:
        read_osm(cut)
    assert "\n" not in str(exc.value)


def test_not_osm(tmp_path: Path) -> None:
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(b"\x00\x01 not a pbf" * 20)
    with pytest.raises(FormatError):
        read_osm(junk)
    with pytest.raises(InputFileError, match="no such file"):
        read_osm(tmp_path / "missing.osm.pbf")
    with pytest.raises(InputFileError, match="directory"):
        read_osm(tmp_path)


def test_finland_extract(fixtures_dir: Path) -> None:
    t = read_osm(fixtures_dir / "osm" / "finland_motorway_test.osm.pbf")
    g = t.graph
    assert t.tagged and g.georef == LONLAT
    assert (g.num_nodes, g.num_edges) == (749, 781)
    assert {"motorway", "motorway_link", "tertiary", "residential"} <= set(t.highway.tolist())
    assert not {"footway", "cycleway", "service", "track"} & set(t.highway.tolist())
    # bridges over the motorway, tagged bridge=yes + layer=1
    assert int(t.bridge.sum()) == 5
    assert set(t.highway[t.bridge].tolist()) == {"secondary", "tertiary", "motorway_link"}
    assert (t.layer[t.bridge] == 1).all()
    lon, lat = g.nodes[:, 0], g.nodes[:, 1]
    assert lon.min() > 26.92 and lon.max() < 26.98 and lat.min() > 60.51 and lat.max() < 60.55
    assert g.meta["extent"] == pytest.approx((26.93, 60.52, 26.97, 60.54), abs=1e-6)
    # the file is not modified and reading is repeatable
    assert read_osm(fixtures_dir / "osm" / "finland_motorway_test.osm.pbf").graph.equals(g)
