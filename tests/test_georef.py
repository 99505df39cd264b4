from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st

from linegraph2road import Georeference, GeoreferenceError
from linegraph2road.georef import geodesic_length, utm_crs_for

UTM11 = Georeference("EPSG:32611", Affine(0.5, 0.0, 664000.0, 0.0, -0.5, 4012000.0))


def test_pixel_crs_round_trip_and_pixel_centres() -> None:
    px = np.array([[0.5, 0.5], [100.0, 20.0]])
    crs = UTM11.pixel_to_crs(px)
    np.testing.assert_allclose(crs[0], [664000.25, 4011999.75])
    np.testing.assert_allclose(UTM11.crs_to_pixel(crs), px)


def test_gsd_projected_and_geographic() -> None:
    assert UTM11.gsd() == pytest.approx(0.5)
    # The real SpaceNet Vegas tile grid: 2.7e-6 degrees per pixel, about 0.3 m.
    vegas = Georeference(
        "EPSG:4326", Affine(2.7e-06, 0.0, -115.1706276, 0.0, -2.7000000769e-06, 36.2406177)
    )
    assert vegas.gsd() == pytest.approx(0.27, abs=0.03)
    assert vegas.is_geographic


def test_lonlat_round_trip() -> None:
    lonlat = UTM11.pixel_to_lonlat([[10.0, 10.0]])
    assert -120 < lonlat[0, 0] < -114 and 30 < lonlat[0, 1] < 40
    np.testing.assert_allclose(UTM11.lonlat_to_pixel(lonlat), [[10.0, 10.0]], atol=1e-6)


def test_dict_round_trip_and_equality() -> None:
    again = Georeference.from_dict(UTM11.to_dict())
    assert again == UTM11
    assert hash(again) == hash(UTM11)
    assert "EPSG:32611" in repr(UTM11)


def test_invalid_georeferences() -> None:
    with pytest.raises(GeoreferenceError):
        Georeference("not a crs", Affine.identity())
    with pytest.raises(GeoreferenceError, match="degenerate"):
        Georeference("EPSG:4326", Affine(0, 0, 0, 0, 0, 0))
    with pytest.raises(GeoreferenceError):
        Georeference.from_dict({"crs": "EPSG:4326"})
    with pytest.raises(GeoreferenceError, match="lon/lat"):
        utm_crs_for([[664000.0, 4011000.0]])


@given(
    lon=st.floats(-179, 179),
    lat=st.floats(-79, 83),
)
def test_local_metric_grid_is_one_metre(lon: float, lat: float) -> None:
    grid = Georeference.local_metric_grid([[lon, lat]])
    assert grid.gsd() == pytest.approx(1.0)
    px = grid.lonlat_to_pixel([[lon, lat]])
    assert np.all(px >= 0) and np.all(px <= 2)


def test_geodesic_length_of_one_degree_of_latitude() -> None:
    assert geodesic_length([[0.0, 0.0], [0.0, 1.0]]) == pytest.approx(110574, rel=1e-3)
