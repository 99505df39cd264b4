"""Benchmark layouts: City-scale, Global-scale and SpaceNet (SAM-Road) folders and splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from linegraph2road.data_prep.datasets import (
    cityscale_split,
    globalscale_split,
    list_tiles,
    read_rgb,
)
from linegraph2road.errors import FormatError, InputFileError
from linegraph2road.graph import RoadGraph
from linegraph2road.io import write_graph
from linegraph2road.io.raster import write_raster


def tiny_graph(size: int, k: int = 0) -> RoadGraph:
    """A plus-shaped road across a ``size`` tile, shifted by ``k`` px (pixel centres)."""
    c = size // 2 + k + 0.5
    lo, hi = 2.5, size - 2.5
    nodes = [[c, c], [lo, c], [hi, c], [c, lo], [c, hi]]
    return RoadGraph(np.array(nodes), np.array([[0, 1], [0, 2], [0, 3], [0, 4]]))


def write_cityscale(root: Path, indices: list[int], *, size: int = 64, refine: bool = True) -> Path:
    """A City-scale layout: ``region_{i}_sat.png`` + both graph pickles."""
    root.mkdir(parents=True, exist_ok=True)
    for i in indices:
        img = np.full((3, size, size), 40 + i % 100, np.uint8)
        write_raster(root / f"region_{i}_sat.png", img)
        g = tiny_graph(size, i % 5)
        write_graph(g, root / f"region_{i}_graph_gt.pickle", "cityscale")
        if refine:
            write_graph(g, root / f"region_{i}_refine_gt_graph.p", "cityscale")
    return root


def write_spacenet(root: Path, split: dict[str, list[str]], *, extra: tuple[str, ...] = ()) -> Path:
    """A SAM-Road SpaceNet layout: ``RGB_1.0_meter/{name}__rgb.png`` + flipped pickles."""
    folder = root / "RGB_1.0_meter"
    folder.mkdir(parents=True, exist_ok=True)
    names = [n for names in split.values() for n in names] + list(extra)
    for k, name in enumerate(names):
        write_raster(folder / f"{name}__rgb.png", np.zeros((3, 400, 400), np.uint8))
        write_graph(tiny_graph(400, k), folder / f"{name}__gt_graph.p", "samroad-spacenet")
    (root / "data_split.json").write_text(json.dumps(split))
    return root


def test_cityscale_split_matches_samroad() -> None:
    splits = [cityscale_split(i) for i in range(180)]
    assert splits.count("test") == 27 and splits.count("valid") == 9
    assert splits.count("train") == 144
    assert [i for i in range(40) if cityscale_split(i) == "test"] == [8, 9, 19, 28, 29, 39]
    assert [i for i in range(40) if cityscale_split(i) == "valid"] == [18, 38]


def test_globalscale_default_split() -> None:
    # SAM-Road++ partition: train 0..2374, valid 2375..2713, in-domain test 2714..3337.
    assert [globalscale_split(i) for i in (0, 2713, 2714, 3337, 3338)] == [
        "train",
        "valid",
        "test",
        "test",
        "train",
    ]


def test_cityscale_layout(tmp_path: Path) -> None:
    root = write_cityscale(tmp_path / "cs", list(range(20)))
    tiles = list_tiles(root, format="cityscale")
    assert [t.tile_id for t in tiles] == [f"region_{i}" for i in range(20)]  # numeric order
    assert [t.tile_id for t in list_tiles(root, format="cityscale", split="test")] == [
        "region_8",
        "region_9",
        "region_19",
    ]
    assert [t.tile_id for t in list_tiles(root, format="cityscale", split="valid")] == ["region_18"]
    t = tiles[3]
    assert t.graph.name == "region_3_refine_gt_graph.p" and t.graph_format == "cityscale"
    assert (
        list_tiles(root, format="cityscale", graph="eval")[3].graph.name
        == "region_3_graph_gt.pickle"
    )
    assert t.grid().shape == (64, 64) and t.grid().georef is None
    g = t.load_graph()
    assert not g.tagged and g.graph.num_edges == 4
    np.testing.assert_allclose(g.graph.nodes[0], [35.5, 35.5])
    assert t.source() == {
        "kind": "dataset",
        "tile": "region_3",
        "split": "train",
        "image": "region_3_sat.png",
        "graph": "region_3_refine_gt_graph.p",
        "graph_format": "cityscale",
    }


def test_cityscale_fallbacks(tmp_path: Path) -> None:
    root = write_cityscale(tmp_path / "x" / "20cities", [0, 1], refine=False)
    tiles = list_tiles(tmp_path / "x", format="cityscale")  # looks into 20cities/
    assert [t.graph.name for t in tiles] == ["region_0_graph_gt.pickle", "region_1_graph_gt.pickle"]
    (root / "region_0_graph_gt.pickle").unlink()
    with pytest.raises(InputFileError, match=r"region_0_sat\.png: no graph"):
        list_tiles(root, format="cityscale")


def test_globalscale_with_split_file(tmp_path: Path) -> None:
    root = write_cityscale(tmp_path / "gs", [1, 2, 2714])
    assert [t.split for t in list_tiles(root, format="globalscale")] == ["train", "train", "test"]
    (root / "data_split.json").write_text(
        json.dumps({"train": ["region_2714"], "val": [1], "test": []})
    )
    assert [t.split for t in list_tiles(root, format="globalscale")] == ["valid", "", "train"]


def test_spacenet_layout(tmp_path: Path) -> None:
    split = {
        "train": ["AOI_2_Vegas_1", "AOI_2_Vegas_2"],
        "validation": ["AOI_3_Paris_7"],
        "test": ["AOI_4_Shanghai_3"],
    }
    root = write_spacenet(tmp_path / "sn", split, extra=("AOI_5_Khartoum_9",))
    tiles = list_tiles(root, format="spacenet")
    assert [t.tile_id for t in tiles] == sorted(
        [n for v in split.values() for n in v] + ["AOI_5_Khartoum_9"]
    )
    by_id = {t.tile_id: t.split for t in tiles}
    assert by_id["AOI_3_Paris_7"] == "valid" and by_id["AOI_5_Khartoum_9"] == ""
    assert [t.tile_id for t in list_tiles(root, format="spacenet", split="test")] == [
        "AOI_4_Shanghai_3"
    ]
    # the flipped pickle reads back to the graph that was written
    t = next(t for t in tiles if t.tile_id == "AOI_2_Vegas_1")
    assert t.graph_format == "samroad-spacenet"
    assert t.load_graph().graph.equals(tiny_graph(400, 0), atol=1e-9)
    # ROOT may also be the image folder itself
    assert len(list_tiles(root / "RGB_1.0_meter", format="spacenet", split="train")) == 2


def test_bad_roots(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such dataset folder"):
        list_tiles(tmp_path / "nope", format="cityscale")
    with pytest.raises(FormatError, match="no spacenet tiles"):
        list_tiles(tmp_path, format="spacenet")
    with pytest.raises(FormatError, match="unknown dataset format"):
        list_tiles(tmp_path, format="deepglobe")
    with pytest.raises(FormatError, match="unknown split"):
        list_tiles(tmp_path, format="cityscale", split="dev")


def test_read_rgb(tmp_path: Path) -> None:
    grey = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    write_raster(tmp_path / "g.tif", grey)
    rgb = read_rgb(tmp_path / "g.tif")
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and (rgb[..., 0] == rgb[..., 2]).all()
    rgba = np.stack([np.full((4, 4), v, np.uint8) for v in (10, 20, 30, 255)])
    write_raster(tmp_path / "a.png", rgba)
    np.testing.assert_array_equal(read_rgb(tmp_path / "a.png")[0, 0], [10, 20, 30])
    from rasterio.windows import Window

    assert read_rgb(tmp_path / "a.png", window=Window(1, 1, 2, 3)).shape == (3, 2, 3)
    with pytest.raises(FormatError):
        (tmp_path / "bad.png").write_bytes(b"nope")
        read_rgb(tmp_path / "bad.png")


def test_globalscale_split_folders_and_index_partition(tmp_path: Path) -> None:
    """SAM-Road++ layout: split folders, out-of-domain tiles numbered from 0 get ood_ ids."""
    import pickle

    from linegraph2road.data_prep.datasets import globalscale_split, list_tiles
    from linegraph2road.io.raster import write_raster

    def tile(folder: Path, i: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_raster(folder / f"region_{i}_sat.png", np.zeros((3, 8, 8), dtype=np.uint8))
        adj = {(1, 1): [(1, 5)], (1, 5): [(1, 1)]}
        (folder / f"region_{i}_refine_gt_graph.p").write_bytes(pickle.dumps(adj, protocol=2))

    root = tmp_path / "Global-Scale"
    tile(root / "train", 3)
    tile(root / "in-domain-test", 2800)
    tile(root / "out_of_domain", 3)
    tiles = list_tiles(root, format="globalscale")
    assert [(t.tile_id, t.split) for t in tiles] == [
        ("region_3", "train"),
        ("region_2800", "test"),
        ("ood_region_3", "ood"),
    ]
    assert tiles[2].source()["image"] == "out_of_domain/region_3_sat.png"
    assert [t.tile_id for t in list_tiles(root, format="globalscale", split="ood")] == [
        "ood_region_3"
    ]
    assert [globalscale_split(i) for i in (0, 2374, 2375, 2713, 2714, 3337)] == [
        "train",
        "train",
        "valid",
        "valid",
        "test",
        "test",
    ]
