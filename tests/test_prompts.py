"""Prompts: validation, rasterisation (a click lands where it was placed), GeoJSON in pixel and
map coordinates, and every refused input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from linegraph2road.errors import (
    FormatError,
    GeoreferenceError,
    InputFileError,
    L2RError,
    ParameterError,
)
from linegraph2road.georef import Georeference
from linegraph2road.prompts import (
    Prompt,
    prompt_mask,
    prompts_from_geojson,
    prompts_to_geojson,
    rasterize_prompts,
    read_prompts,
    write_prompts,
)

#: A 1 m/px UTM 11N grid (Las Vegas), 200 x 100 px.
UTM = Georeference("EPSG:32611", Affine(1.0, 0.0, 660_000.0, 0.0, -1.0, 4_000_000.0))
SHAPE = (100, 200)


def _fc(*features: dict, **extra: object) -> dict:
    return {"type": "FeatureCollection", "features": list(features), **extra}


def _feat(gtype: str, coords: object, positive: object = True) -> dict:
    props = {} if positive is None else {"positive": positive}
    return {"type": "Feature", "properties": props,
            "geometry": {"type": gtype, "coordinates": coords}}  # fmt: skip


def test_prompt_validation() -> None:
    c = Prompt.click(3.0, 4.0, positive=False)
    assert c.kind == "click" and c.points.shape == (1, 2) and c.positive is False
    assert c.points.dtype == np.float64 and not c.points.flags.writeable
    s = Prompt.scribble([[0, 0], [5, 5], [9, 1]])
    assert s.points.shape == (3, 2) and s.positive is True
    assert s == Prompt("scribble", np.array([[0, 0], [5, 5], [9, 1]]), True)
    assert len({s, Prompt.scribble([[0, 0], [5, 5], [9, 1]]), c}) == 2
    src = np.array([[1.0, 2.0]])
    p = Prompt("click", src, True)
    src[0, 0] = 99.0
    assert p.points[0, 0] == 1.0  # a copy: the caller's array does not change the prompt
    for bad in [
        lambda: Prompt("box", [[0, 0]], True),  # type: ignore[arg-type]
        lambda: Prompt("click", [[0, 0], [1, 1]], True),
        lambda: Prompt("scribble", [[0, 0]], True),
        lambda: Prompt("click", [[np.nan, 0]], True),
        lambda: Prompt("click", [[0, 0]], 1),  # type: ignore[arg-type]
        lambda: Prompt("scribble", [[0, 0, 0], [1, 1, 1]], True),
    ]:
        with pytest.raises(ParameterError):
            bad()


def test_click_lands_where_placed_and_is_soft() -> None:
    maps = rasterize_prompts(
        [Prompt.click(10.2, 20.9), Prompt.click(50.5, 30.5, positive=False)], (64, 64)
    )
    assert maps.shape == (2, 64, 64) and maps.dtype == np.float32
    assert maps[0, 20, 10] == 1.0 and maps[1, 20, 10] == 0.0
    assert maps[1, 30, 50] == 1.0 and maps[0, 30, 50] == 0.0
    # soft: 1 within r/2 = 2.5 px, falling linearly to 0 at r = 5 px (pixel centres)
    assert maps[1, 30, 52] == 1.0  # 2 px away
    assert maps[1, 30, 54] == pytest.approx((5 - 4) / 2.5)  # 4 px away: 0.4
    assert maps[1, 30, 55] == 0.0 and maps[1, 30, 56] == 0.0
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    m = maps[1]
    assert (xx * m).sum() / m.sum() == pytest.approx(50.5)  # centred on the click
    assert (yy * m).sum() / m.sum() == pytest.approx(30.5)


def test_scribble_is_a_fixed_width_stroke() -> None:
    maps = rasterize_prompts([Prompt.scribble([[5, 10.5], [30, 10.5], [30, 40]])], (64, 64))
    assert set(np.unique(maps[0]).tolist()) == {0.0, 1.0} and not maps[1].any()
    assert maps[0, 9:12, 15].tolist() == [1.0, 1.0, 1.0]
    assert maps[0, 8, 15] == 0.0 and maps[0, 12, 15] == 0.0
    assert maps[0, 30, 29:32].tolist() == [1.0, 1.0, 1.0] and maps[0, 30, 27] == 0.0
    wide = rasterize_prompts([Prompt.scribble([[5, 10.5], [30, 10.5]])], (64, 64),
                             scribble_width=5)  # fmt: skip
    assert wide[0, 8:13, 15].all()
    both = [Prompt.scribble([[5, 10.5], [30, 10.5]]), Prompt.click(50, 50, positive=False)]
    mask = prompt_mask(both, (64, 64))
    assert mask.dtype == bool and mask[10, 15] and mask[50, 50] and not mask[30, 5]


def test_rasterize_clips_and_checks() -> None:
    maps = rasterize_prompts([Prompt.click(-3.0, 2.0), Prompt.scribble([[-10, 5], [100, 5]])],
                             (8, 8))  # fmt: skip
    assert maps[0, 2, 0] > 0 and maps[0, 5].all()
    assert not rasterize_prompts([], (4, 5)).any()
    with pytest.raises(ParameterError):
        rasterize_prompts([Prompt.click(1, 1)], (8, 8), click_radius=0)
    with pytest.raises(ParameterError):
        rasterize_prompts([Prompt.click(1, 1)], (8, 8), scribble_width=0)
    with pytest.raises(ParameterError):
        rasterize_prompts([(1, 1)], (8, 8))  # type: ignore[list-item]


def test_geojson_pixel_round_trip(tmp_path: Path) -> None:
    line = Prompt.scribble([[1, 2], [30, 40], [50, 41]], positive=False)
    prompts = [Prompt.click(10.25, 20.5), line]
    doc = prompts_to_geojson(prompts, georef=None)
    assert doc["l2r"] == {"coordinates": "pixel"}
    assert prompts_from_geojson(doc, georef=None, shape=SHAPE) == prompts
    assert prompts_from_geojson(doc, georef=UTM, shape=SHAPE) == prompts  # l2r member: pixels
    path = tmp_path / "p.geojson"
    write_prompts(prompts, path, georef=None)
    assert read_prompts(path, georef=None, shape=SHAPE) == prompts


def test_geojson_lonlat_round_trip_lands_on_the_pixel() -> None:
    prompts = [Prompt.click(100.5, 50.5), Prompt.scribble([[10, 10], [150, 80]], positive=False)]
    doc = prompts_to_geojson(prompts, georef=UTM)
    lon, lat = doc["features"][0]["geometry"]["coordinates"]
    assert -116 < lon < -114 and 36 < lat < 37 and "crs" not in doc
    back = prompts_from_geojson(json.loads(json.dumps(doc)), georef=UTM, shape=SHAPE)
    assert [p.kind for p in back] == ["click", "scribble"]
    assert [p.positive for p in back] == [True, False]
    for a, b in zip(back, prompts, strict=True):
        np.testing.assert_allclose(a.points, b.points, atol=1e-6)
    maps = rasterize_prompts(back, SHAPE)
    assert maps[0, 50, 100] == 1.0 and maps[0, 50, 104] < 1.0 and maps[0, 56, 100] == 0.0
    # the same document without the l2r member is plain RFC 7946
    del doc["l2r"]
    again = prompts_from_geojson(doc, georef=UTM, shape=SHAPE)
    np.testing.assert_allclose(again[0].points, [[100.5, 50.5]], atol=1e-6)


def test_geojson_in_the_raster_crs() -> None:
    x, y = UTM.pixel_to_crs([[40.5, 60.5]])[0]
    named = {"type": "name", "properties": {"name": "EPSG:32611"}}
    doc = _fc(_feat("Point", [x, y]), _feat("MultiPoint", [[x, y], [x + 2, y]], False),
              crs=named)  # fmt: skip
    got = prompts_from_geojson(doc, georef=UTM, shape=SHAPE)
    assert len(got) == 3 and [p.positive for p in got] == [True, False, False]
    np.testing.assert_allclose(got[0].points, [[40.5, 60.5]])
    np.testing.assert_allclose(got[2].points, [[42.5, 60.5]])
    assert rasterize_prompts(got[:1], SHAPE)[0, 60, 40] == 1.0
    lines = _fc(_feat("MultiLineString", [[[x, y], [x + 5, y]], [[x, y], [x, y - 5]]]), crs=named)
    kinds = [p.kind for p in prompts_from_geojson(lines, georef=UTM, shape=SHAPE)]
    assert kinds == ["scribble"] * 2
    one = {**_feat("Point", [x, y]), "crs": named}
    assert prompts_from_geojson(one, georef=UTM, shape=SHAPE)[0].kind == "click"


@pytest.mark.parametrize(
    ("doc", "georef", "error", "words"),
    [
        ([1, 2], None, FormatError, "not GeoJSON"),
        ({"type": "Point", "coordinates": [1, 1]}, None, FormatError, "positive"),
        (_fc(_feat("Polygon", [[[0, 0], [1, 0], [1, 1], [0, 0]]])), None, FormatError, "Polygon"),
        (_fc(_feat("Point", [1, 1], positive=None)), None, FormatError, "positive"),
        (_fc(_feat("Point", [1, 1], positive="yes")), None, FormatError, "positive"),
        (_fc(), None, FormatError, "no prompts"),
        (_fc(_feat("Point", [1, "a"])), None, FormatError, "invalid position"),
        (_fc(_feat("LineString", [[1, 1], [1, 1]])), None, ParameterError, "one repeated point"),
        (_fc(_feat("Point", [250, 10])), None, ParameterError, "outside the image"),
        (_fc(_feat("LineString", [[10, 10], [10, 101]])), None, ParameterError, "outside"),
        (_fc(_feat("Point", [-100.0, 10.0])), UTM, ParameterError, "outside the image"),
        (_fc(_feat("Point", [660_010.0, 3_999_990.0])), UTM, GeoreferenceError, "not lon/lat"),
        (_fc(_feat("Point", [1, 1]), crs={"type": "name", "properties": {"name": "EPSG:999999"}}),
         UTM, GeoreferenceError, "EPSG:999999"),
        (_fc(_feat("Point", [500, 500]), crs={"type": "name", "properties": {"name": "EPSG:4269"}}),
         UTM, GeoreferenceError, "cannot be transformed"),
        (_fc(_feat("Point", [1, 1]), crs={"type": "name", "properties": {"name": "EPSG:32611"}}),
         None, GeoreferenceError, "no georeference"),
    ],
)  # fmt: skip
def test_bad_prompts_are_refused(
    doc: object, georef: Georeference | None, error: type[L2RError], words: str
) -> None:
    with pytest.raises(error, match=words):
        prompts_from_geojson(doc, georef=georef, shape=SHAPE)  # type: ignore[arg-type]


def test_read_prompts_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError):
        read_prompts(tmp_path / "missing.geojson", georef=None, shape=SHAPE)
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(FormatError, match="GeoJSON prompts"):
        read_prompts(bad, georef=None, shape=SHAPE)
