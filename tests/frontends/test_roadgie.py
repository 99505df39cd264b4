"""RoadGIE's network: the front-end contract, the paper's parameter count, the DAM's directions,
one interaction round, and checkpoints through the front-end checkpoint machinery."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from linegraph2road.errors import CheckpointError, ParameterError
from linegraph2road.frontends import build_frontend
from linegraph2road.frontends.checkpoint import checkpoint_kind, load_frontend, save_frontend
from linegraph2road.frontends.roadgie import (
    DIRECTIONS,
    ROADGIE_SIZES,
    DirectionalAggregation,
    RoadGIEFrontend,
    build_roadgie,
)
from tests.frontends.test_base import check_contract


@pytest.mark.parametrize(("size", "window"), [("tiny", 64), ("small", 32)])
def test_sizes_satisfy_the_contract(size: str, window: int) -> None:
    torch.manual_seed(0)
    fe = build_frontend("roadgie", size, window_size=window)
    assert fe.trained_channels == (1,)
    check_contract(fe)


def test_paper_size_has_the_papers_parameter_count() -> None:
    fe = build_roadgie("paper")
    n = sum(p.numel() for p in fe.parameters())
    print(f"RoadGIE paper size: {n} parameters ({n / 1e6:.3f} M; paper: 3.7 M)")
    assert abs(n - 3.7e6) / 3.7e6 < 0.10
    assert n == 3_726_817  # the table in linegraph2road/frontends/roadgie/model.py
    assert ROADGIE_SIZES["paper"].multiple == 64


def test_dam_shapes_and_directions() -> None:
    k, r = 9, 4
    dam = DirectionalAggregation(2, 3, kernel_size=k)
    with torch.no_grad():
        dam.weight.fill_(1.0)
        dam.bias.zero_()
    x = torch.zeros(1, 2, 21, 21)
    x[0, 1, 10, 10] = 1.0  # an impulse in channel 1
    y = dam.directional(x)
    assert y.shape == (1, 8, 21, 21)
    assert not y[0, [0, 2, 4, 6]].any()  # channel 0 stays 0 in every direction (depthwise)
    expected = {name: torch.zeros(21, 21) for name in DIRECTIONS}
    for i in range(-r, r + 1):
        for name, (dx, dy) in DIRECTIONS.items():
            expected[name][10 + i * dy, 10 + i * dx] = 1.0
    for block, name in enumerate(DIRECTIONS):
        torch.testing.assert_close(y[0, 2 * block + 1], expected[name], msg=name)
    assert expected["anti_diagonal"][6, 14] == 1.0  # up and to the right
    out = dam(x)
    assert out.shape == (1, 3, 21, 21)
    assert sum(p.numel() for p in dam.parameters()) == 4 * 2 * (k + 1) + 8 * 3 + 3
    with pytest.raises(ParameterError):
        DirectionalAggregation(4, kernel_size=4)
    with pytest.raises(ParameterError):
        dam(torch.zeros(1, 5, 8, 8))


def test_interact_shapes_and_the_prompt_free_forward() -> None:
    torch.manual_seed(0)
    fe = build_roadgie("tiny", 64).eval()
    img = fe.normalize(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    zeros = torch.zeros(2, 1, 64, 64)
    with torch.no_grad():
        logits = fe.interact(img, zeros, torch.zeros(2, 2, 64, 64))
        out = fe(img)
        prompted = fe.interact(img, zeros + 0.5, torch.ones(2, 2, 64, 64))
        wide = fe.interact(img[:, :, :32].repeat(1, 1, 1, 3)[:, :, :, :96],
                           torch.zeros(2, 1, 32, 96), torch.zeros(2, 2, 32, 96))  # fmt: skip
    assert logits.shape == (2, 1, 64, 64) and wide.shape == (2, 1, 32, 96)
    torch.testing.assert_close(out.masks[:, 1:2], logits)
    assert (out.masks[:, [0, 2]] < -20).all()
    assert out.features.shape == (2, 16, 16, 16) and out.stride == 4
    assert not torch.allclose(prompted, logits)  # the prompts and previous mask are inputs
    with pytest.raises(ParameterError, match="multiples"):
        fe.interact(img[:, :, :60], zeros[:, :, :60], torch.zeros(2, 2, 60, 64))
    with pytest.raises(ParameterError, match="prompt maps"):
        fe.interact(img, zeros, torch.zeros(2, 1, 64, 64))


def test_checkpoint_round_trip_and_bad_checkpoints(tmp_path: Path) -> None:
    torch.manual_seed(1)
    fe = build_roadgie("tiny", 64)
    path = save_frontend(fe, tmp_path / "roadgie.safetensors", config={"task": "segmentation"})
    assert checkpoint_kind(path) == "frontend"
    loaded, refiner, config = load_frontend(path)
    assert isinstance(loaded, RoadGIEFrontend) and refiner is None
    assert config == {"task": "segmentation"} and "roadgie/tiny" in loaded.weights_description
    x = fe.normalize(torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8))
    fe.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).masks, fe(x).masks)
    again = build_roadgie("tiny", 64, checkpoint=path)
    assert "roadgie.safetensors" in again.weights_description
    with pytest.raises(CheckpointError, match="not roadgie/small"):
        build_roadgie("small", 64, checkpoint=path)
    other = save_frontend(build_frontend("nl-linknet", "tiny", window_size=64), tmp_path / "n.st")
    with pytest.raises(CheckpointError, match="not roadgie"):
        build_roadgie("tiny", 64, checkpoint=other)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        load_frontend(corrupt)
    with pytest.raises(ParameterError):
        build_roadgie("huge")
    with pytest.raises(ParameterError):
        build_roadgie("paper", 500)
