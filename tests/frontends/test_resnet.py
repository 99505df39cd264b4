from __future__ import annotations

import torch

from linegraph2road.frontends.backbones import resnet34


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_resnet34_parameter_counts_match_torchvision() -> None:
    # torchvision.models.resnet34(): 21,797,672 parameters (512 * 1000 + 1000 of them in fc).
    assert _count(resnet34(num_classes=1000)) == 21_797_672
    assert _count(resnet34()) == 21_797_672 - 513_000


def test_stage_shapes_and_torchvision_names() -> None:
    net = resnet34().eval()
    feats = net.forward_features(torch.zeros(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [
        (1, 64, 16, 24),
        (1, 128, 8, 12),
        (1, 256, 4, 6),
        (1, 512, 2, 3),
    ]
    names = set(net.state_dict())
    assert {"conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight"} <= names
    assert "layer1.0.downsample.0.weight" not in names
