"""ResNet (He et al. 2016) with basic blocks, as torchvision lays it out, in torch alone.

The module and parameter names follow torchvision's ``resnet34`` (``conv1``, ``bn1``,
``layer1.0.conv1``...), so a user's converted ImageNet ``resnet34`` state_dict loads unchanged with
:meth:`ResNet.load_state_dict`. No weights are bundled or downloaded: the network starts from
random (Kaiming) initialisation unless the user loads a checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNet", "resnet34"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, *, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A basic-block ResNet trunk: stem (7x7/2 conv, 3x3/2 max pool) + four stages.

    Parameters
    ----------
    layers : tuple of 4 ints
        Blocks per stage (ResNet34: ``(3, 4, 6, 3)``).
    in_channels : int
        Input channels (3 for RGB).
    num_classes : int or None
        With an int, a global-average-pool + linear classifier ``fc`` is added (torchvision's
        layout, 1000 for ImageNet); None (default) leaves the trunk alone.

    ``forward_features(x)`` returns the four stage outputs (strides 4, 8, 16, 32; channels
    64, 128, 256, 512), which is what encoder-decoder front-ends need.
    """

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (3, 4, 6, 3),
        *,
        in_channels: int = 3,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = (64, 128, 256, 512)
        stages = []
        previous = 64
        for i, (n_blocks, width) in enumerate(zip(layers, channels, strict=True)):
            blocks = [BasicBlock(previous, width, stride=1 if i == 0 else 2)]
            blocks += [BasicBlock(width, width) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            previous = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.channels = channels
        self.fc: nn.Module | None = None
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 64, H/4, W/4)."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four stage outputs for (B, C, H, W) input: strides 4, 8, 16, 32."""
        e1 = self.layer1(self.stem(x))
        e2 = self.layer2(e1)
        e3 = self.layer3(e2)
        e4 = self.layer4(e3)
        return [e1, e2, e3, e4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (with ``num_classes``) or the last stage's features."""
        e4 = self.forward_features(x)[-1]
        if self.fc is None:
            return e4
        return self.fc(torch.flatten(self.avgpool(e4), 1))


def resnet34(*, in_channels: int = 3, num_classes: int | None = None) -> ResNet:
    """ResNet34: (3, 4, 6, 3) basic blocks (21.28 M trunk parameters; 21.80 M with a 1000-class
    ``fc``, the same count as torchvision's ``resnet34``)."""
    return ResNet((3, 4, 6, 3), in_channels=in_channels, num_classes=num_classes)
