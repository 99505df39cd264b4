"""diff_graphs: hand-built cases with exact answers, the real OSM fixture with known changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from linegraph2road.data_prep import load_roads
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import GeoreferenceError, GraphError, ParameterError
from linegraph2road.georef import transform_points
from linegraph2road.graph import RoadGraph
from linegraph2road.mapdiff import CLASSES, DiffOptions, diff_graphs
from tests.mapdiff.grid import X0, Y0, footprint, lonlat_box, on_grid
from tests.mapdiff.scenario import (
    FIXTURE,
    REMOVED_WAYS,
    Scenario,
    build_scenario,
    jittered,
    shifted,
)


# -- hand-built cases ----------------------------------------------------------------------------
def _tiny() -> tuple[RoadGraph, RoadGraph]:
    pred = on_grid(
        # A: (0,100)-(100,100)-(200,100); B: (100,100)-(100,200)-(100,300); C: (180,200)-(180,300)
        [[0, 100], [100, 100], [200, 100], [100, 200], [100, 300], [180, 200], [180, 300]],
        [[0, 1], [1, 2], [1, 3], [3, 4], [5, 6]],
        [0.9, 0.9, 0.6, 0.8, 0.5],
    )
    # A drawn 2 m off; D at y = 400 is not in the prediction
    ref = on_grid([[0, 102], [200, 102], [0, 400], [200, 400]], [[0, 1], [2, 3]])
    return pred, ref


def test_tiny_case_exact() -> None:
    pred, ref = _tiny()
    d = diff_graphs(pred, ref, footprint=footprint(-20, -20, 420, 420))
    assert d.crs.to_epsg() == 32635
    assert d.km("matched") == pytest.approx(0.2)
    assert d.km("missing_from_ref") == pytest.approx(0.3)
    assert d.km("confirmed") == pytest.approx(0.2)
    assert d.km("not_seen") == pytest.approx(0.2)
    m = d.missing
    order = np.argsort(m.length)[::-1]  # B (200 m), then C (100 m)
    np.testing.assert_allclose(m.length[order], [200.0, 100.0])
    np.testing.assert_allclose(m.confidence[order], [0.7, 0.5], atol=1e-6)
    assert m.connection[order].tolist() == ["one_end", "isolated"]
    np.testing.assert_array_equal(m.ends_at_border, [0, 0])
    # B runs from the junction with A to its dead end, through its middle node
    b = m.xy[order[0]]
    assert {tuple(b[0]), tuple(b[-1])} == {(X0 + 100, Y0 - 100), (X0 + 100, Y0 - 300)}
    assert d.missing.xy[order[1]][:, 0] == pytest.approx(X0 + 180)
    assert len(b) == 11  # 200 m in pieces of at most 20 m
    s = d.summary()
    assert s["counts"]["missing_roads"] == 2
    assert s["missing_roads_by_connection"] == {"both_ends": 0, "one_end": 1, "isolated": 1}
    assert s["share_of_reference_confirmed"] == pytest.approx(0.5)
    # the reference's footprint (its nodes' box widened by 8 m) bounds the compared area
    assert s["area_km2"] == pytest.approx(0.216 * 0.314, rel=1e-3)


def test_inputs_are_not_modified_and_results_are_deterministic() -> None:
    pred, ref = _tiny()
    before = (pred.nodes.copy(), pred.edges.copy(), ref.nodes.copy())
    a = diff_graphs(pred, ref, footprint=footprint(-20, -20, 420, 420))
    b = diff_graphs(pred, ref, footprint=footprint(-20, -20, 420, 420))
    np.testing.assert_array_equal(pred.nodes, before[0])
    np.testing.assert_array_equal(pred.edges, before[1])
    np.testing.assert_array_equal(ref.nodes, before[2])
    assert a.summary() == b.summary()


def test_layers_and_graphs_agree_with_the_kilometres() -> None:
    pred, ref = _tiny()
    d = diff_graphs(pred, ref, footprint=footprint(-20, -20, 420, 420))
    layers = d.layers()
    assert set(layers) == set(CLASSES)
    for kind, rec in layers.items():
        n = len(rec["geometry"])
        assert all(len(v) == n for v in rec.values()), kind
        total = float(shapely.length(rec["geometry"]).sum()) / 1000.0
        assert total == pytest.approx(d.km(kind)), kind
        np.testing.assert_allclose(rec["length_m"], shapely.length(rec["geometry"]))
        g = d.graph(kind)
        assert g.total_length() / 1000.0 == pytest.approx(d.km(kind)), kind
    assert layers["missing_from_ref"]["connection"].tolist() != []
    assert np.all(layers["confirmed"]["osm_way_id"] == -1)  # a plain graph has no way ids
    assert d.graph("missing_from_ref").edge_prob is not None


def test_missing_road_crossing_a_mapped_one_is_two_roads() -> None:
    # E crosses A at (100, 100) (a junction of the prediction); the map only has A
    pred = on_grid(
        [[0, 100], [100, 100], [200, 100], [100, 0], [100, 200]], [[0, 1], [1, 2], [3, 1], [1, 4]]
    )
    ref = on_grid([[0, 100], [200, 100]], [[0, 1]], extent=(-50, -50, 250, 250))
    d = diff_graphs(pred, ref, footprint=footprint(-20, -20, 220, 220))
    assert sorted(d.missing.connection.tolist()) == ["one_end", "one_end"]
    np.testing.assert_allclose(d.missing.length, [100.0, 100.0])


def test_border_and_both_ends() -> None:
    # F bridges two mapped roads (both ends); G leaves the compared area (one end on the border)
    pred = on_grid(
        [[0, 0], [200, 0], [0, 100], [200, 100], [100, 0], [100, 100], [150, 100], [150, 300]],
        [[0, 4], [4, 1], [2, 5], [5, 6], [6, 3], [4, 5], [6, 7]],
    )
    ref = on_grid(
        [[0, 0], [200, 0], [0, 100], [200, 100]], [[0, 1], [2, 3]], extent=(-50, -50, 250, 400)
    )
    d = diff_graphs(pred, ref, footprint=footprint(-20, -20, 220, 220))
    lengths = np.round(d.missing.length).tolist()
    by_len = dict(zip(lengths, d.missing.connection.tolist(), strict=True))
    assert by_len == {100.0: "both_ends", 120.0: "both_ends"}  # G: junction + border
    g = int(np.argmax(np.round(d.missing.length) == 120.0))
    assert d.missing.ends_at_border[g] == 1


def test_options_are_validated() -> None:
    with pytest.raises(ParameterError, match="tolerance"):
        DiffOptions(tolerance=0)
    with pytest.raises(ParameterError, match="max_angle"):
        DiffOptions(max_angle=120)
    with pytest.raises(ParameterError, match="min_coverage"):
        DiffOptions(min_coverage=0)
    with pytest.raises(ParameterError, match="rule"):
        DiffOptions(rule="hungarian")
    with pytest.raises(ParameterError, match="step"):
        DiffOptions(step=10, tolerance=5)
    assert DiffOptions().to_dict()["tolerance"] == 8.0


def test_bad_inputs() -> None:
    pred, ref = _tiny()
    with pytest.raises(GeoreferenceError, match="pixel coordinates"):
        diff_graphs(pred.with_georef(None), ref)
    far = ref.replace(nodes=ref.nodes + np.array([5000.0, 0.0]))
    with pytest.raises(GeoreferenceError, match="do not overlap"):
        diff_graphs(pred, far)
    # a reference whose extent covers the prediction but has no road there
    empty = ref.replace(
        nodes=ref.nodes + np.array([0.0, 2000.0]), meta={"extent": lonlat_box(-50, -50, 450, 2500)}
    )
    with pytest.raises(GraphError, match="reference has no roads"):
        diff_graphs(pred, empty)
    d = diff_graphs(pred, empty, options=DiffOptions(allow_empty=True))
    assert d.km("confirmed") == 0 and d.km("missing_from_ref") == pytest.approx(
        pred.total_length() / 1000
    )
    with pytest.raises(GraphError, match="RoadGraph"):
        diff_graphs(pred, "roads.osm")  # type: ignore[arg-type]


# -- the real OSM fixture ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scenario(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(fixtures_dir, tmp_path_factory.mktemp("diff"))


def test_fixture_against_itself_has_no_changes(fixtures_dir: Path) -> None:
    osm = load_roads(fixtures_dir / FIXTURE)
    for rule in ("nearest", "one-to-one"):
        d = diff_graphs(osm.graph, osm, options=DiffOptions(rule=rule))
        assert d.km("missing_from_ref") == 0.0 and d.km("not_seen") == 0.0, rule
        assert len(d.missing) == 0
        assert d.km("matched") == pytest.approx(d.km("confirmed"))
        assert d.km("matched") > 40.0  # the extract's ~45 km of roads


def _check_scores(d, sc: Scenario, *, recall_missing: float) -> dict:  # type: ignore[no-untyped-def]
    s = d.scores(sc.pred_removed, sc.ref_fake)
    assert s["missing_from_ref"]["precision"] >= 0.99
    assert s["missing_from_ref"]["recall"] >= recall_missing
    assert s["not_seen"]["precision"] == 1.0 and s["not_seen"]["recall"] == 1.0
    assert s["matched"]["recall"] >= 0.998 and s["matched"]["precision"] >= 0.99
    assert s["confirmed"]["precision"] == 1.0 and s["confirmed"]["recall"] == 1.0
    return s


def test_removed_roads_are_missing_and_fake_roads_not_seen(scenario: Scenario) -> None:
    d = diff_graphs(scenario.pred, scenario.ref)
    s = _check_scores(d, scenario, recall_missing=0.97)
    # the only removed length found matched: where the motorway ramp leaves the motorway
    assert s["missing_from_ref"]["true_km"] - s["missing_from_ref"]["found_km"] < 0.12
    # every removed way is found, at least three quarters of it (the ramp: 78 %)
    way = scenario.pred_way_id[d.pred.edge]
    length, found = d.pred.lengths(), d.mask("missing_from_ref")
    for w in REMOVED_WAYS:
        on = (way == w) & d.pred.inside
        assert length[on & found].sum() >= 0.75 * length[on].sum(), w
    assert (d.missing.connection != "isolated").all()  # every removed road met the network
    # ways and highway tags of the reference are reported
    rec = d.layers()["not_seen"]
    assert (rec["osm_way_id"] >= 9_000_000_000).all() and set(rec["highway"]) == {"residential"}


@pytest.mark.parametrize(
    "move",
    [
        pytest.param(lambda g: jittered(g, low=1.0, high=3.0, seed=1), id="jitter-1-3m"),
        pytest.param(lambda g: shifted(g, dx=2.1, dy=2.1), id="shift-3m"),
    ],
)
def test_tolerance_holds_under_1_to_3_m_of_error(scenario: Scenario, move) -> None:  # type: ignore[no-untyped-def]
    d = diff_graphs(move(scenario.pred), scenario.ref)
    _check_scores(d, scenario, recall_missing=0.96)


def test_way_ids_of_a_tagged_reference(scenario: Scenario) -> None:
    tagged = scenario.ref
    assert isinstance(tagged, TaggedGraph)
    d = diff_graphs(scenario.pred, tagged.graph)  # the same roads without tags
    assert d.ref_way_id is None and d.ref_highway is None
    assert d.summary().get("reference_km_by_highway") is None
    xy = transform_points(d.area.exterior.coords, d.crs, "EPSG:4326")
    assert xy[:, 0].min() >= 26.9299 and xy[:, 0].max() <= 26.9700


def test_reference_without_any_road() -> None:
    pred, _ = _tiny()
    with pytest.raises(GraphError, match="no roads at all"):
        diff_graphs(pred, RoadGraph.empty(pred.georef))
