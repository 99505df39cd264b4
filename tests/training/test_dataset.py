from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from linegraph2road.errors import FormatError, InputFileError, ParameterError
from linegraph2road.training.dataset import (
    TileData,
    TileDataset,
    collate_samples,
    crop_sample,
    find_tiles,
    load_tile,
    positive_graph,
    rot90_points,
)
from tests.training import make_synthetic_labels


def _tile(size: int = 8) -> TileData:
    """A hand-built 8 x 8 tile: 4 vertices, a path 0-1-2 and a stray vertex 3."""
    image = np.arange(3 * size * size, dtype=np.uint8).reshape(3, size, size)
    masks = np.zeros((3, size, size), dtype=np.uint8)
    vertices = np.array([[1.5, 1.5], [4.5, 1.5], [6.5, 5.5], [0.5, 7.5]])
    for x, y in vertices:
        masks[1, int(y), int(x)] = 1
    edges = np.array([[0, 1], [1, 2], [0, 3], [2, 3]])
    labels = np.array([1, 1, 0, 0], dtype=np.uint8)
    return TileData(image, masks, vertices, edges, labels)


def test_rot90_points_one_turn_and_full_circle() -> None:
    p = np.array([[0.5, 0.5], [3.0, 1.0]])
    np.testing.assert_array_equal(rot90_points(p, 4, 1), [[0.5, 3.5], [1.0, 1.0]])
    np.testing.assert_array_equal(rot90_points(p, 4, 4), p)
    np.testing.assert_array_equal(rot90_points(p, 4, -1), rot90_points(p, 4, 3))
    np.testing.assert_array_equal(p, [[0.5, 0.5], [3.0, 1.0]])  # input not modified


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_rotated_mask_pixel_and_rotated_vertex_coincide(k: int) -> None:
    tile = _tile()
    s = crop_sample(tile, x0=0, y0=0, size=8, k=k)
    road = s.masks[1].numpy()
    assert road.sum() == 4
    for x, y in s.vertices.numpy():
        assert road[int(y), int(x)] == 1, (k, x, y)
    # and the image turned the same way as torch.rot90 / np.rot90
    np.testing.assert_array_equal(s.image.numpy(), np.rot90(tile.image, k, axes=(1, 2)))


def test_crop_keeps_inside_vertices_and_edges_with_both_ends() -> None:
    tile = _tile()
    s = crop_sample(tile, x0=1, y0=1, size=6)  # [1, 7) x [1, 7): vertex 3 (y 7.5) leaves
    np.testing.assert_allclose(s.vertices.numpy(), [[0.5, 0.5], [3.5, 0.5], [5.5, 4.5]])
    np.testing.assert_array_equal(s.edges.numpy(), [[0, 1], [1, 2]])
    np.testing.assert_array_equal(s.labels.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(s.image.numpy(), tile.image[:, 1:7, 1:7])
    assert s.vertices.dtype == torch.float32 and s.edges.dtype == torch.int64


def test_crop_edge_of_window_is_exclusive() -> None:
    tile = _tile()
    s = crop_sample(tile, x0=0, y0=0, size=4)  # x = 4.5 is outside [0, 4)
    np.testing.assert_allclose(s.vertices.numpy(), [[1.5, 1.5]])
    assert s.edges.shape == (0, 2) and s.labels.shape == (0,)


def test_tile_smaller_than_crop_is_zero_padded() -> None:
    tile = _tile()
    s = crop_sample(tile, x0=0, y0=0, size=12)
    assert s.image.shape == (3, 12, 12) and s.masks.shape == (3, 12, 12)
    assert int(s.image[:, 8:, :].sum()) == 0 and int(s.image[:, :, 8:].sum()) == 0
    assert len(s.vertices) == 4 and len(s.edges) == 4


def test_crop_rejects_bad_window() -> None:
    with pytest.raises(ParameterError):
        crop_sample(_tile(), x0=-1, y0=0, size=4)


def test_positive_graph_is_the_ground_truth_path() -> None:
    tile = _tile()
    g = positive_graph(tile.vertices, tile.edges, tile.labels)
    assert g.num_nodes == 3 and g.num_edges == 2


def test_find_and_load_prepared_tile(tmp_path: Path) -> None:
    out = make_synthetic_labels(tmp_path / "syn")
    (rec,) = find_tiles(out)
    assert rec.tile_id == "plus" and rec.shape == (96, 96) and rec.window is None
    data = load_tile(rec)
    assert data.image.shape == (3, 96, 96) and data.image.dtype == np.uint8
    assert set(np.unique(data.masks)) <= {0, 1} and data.masks[1].sum() > 0
    assert len(data.edges) == len(data.labels) > 0 and data.labels.sum() > 0
    # masks drawn on the labels agree with the vertices: positive edges run along the road
    road = data.masks[1]
    for x, y in data.vertices:
        assert road[int(y), int(x)] or data.masks[0][int(y), int(x)]


def test_whole_tile_when_crop_equals_tile(tmp_path: Path) -> None:
    out = make_synthetic_labels(tmp_path / "syn")
    ds = TileDataset(find_tiles(out), crop=96, rotate=False, seed=3)
    tile = ds.tile(0)
    s = ds[0]
    np.testing.assert_array_equal(s.image.numpy(), tile.image)
    assert len(s.vertices) == len(tile.vertices) and len(s.edges) == len(tile.edges)


def test_samples_depend_only_on_seed_epoch_index(tmp_path: Path) -> None:
    out = make_synthetic_labels(tmp_path / "syn")
    a = TileDataset(find_tiles(out), crop=64, samples_per_tile=8, seed=1)
    b = TileDataset(find_tiles(out), crop=64, samples_per_tile=8, seed=1)
    assert len(a) == 8
    b[5]  # other calls in between change nothing
    assert [a.window(i) for i in range(8)] == [b.window(i) for i in range(8)]
    assert torch.equal(a[3].image, b[3].image)
    b.set_epoch(1)
    assert [a.window(i) for i in range(8)] != [b.window(i) for i in range(8)]
    batch = collate_samples([a[0], a[1]])
    assert batch["images"].shape == (2, 3, 64, 64) and len(batch["edges"]) == 2


def test_find_tiles_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="run `l2r prep`"):
        find_tiles(tmp_path / "nope")
    with pytest.raises(FormatError, match="no prepared tiles"):
        find_tiles(tmp_path)
    out = make_synthetic_labels(tmp_path / "syn")
    (out / "img.png").unlink()
    with pytest.raises(InputFileError, match="images"):
        find_tiles(out)
