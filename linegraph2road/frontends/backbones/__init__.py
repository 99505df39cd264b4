"""Convolutional backbones written with torch alone (no torchvision, which cannot be installed
with this torch build). Used by the NL-LinkNet and location-specific-experts front-ends."""

from __future__ import annotations

from linegraph2road.frontends.backbones.resnet import BasicBlock, ResNet, resnet34

__all__ = ["BasicBlock", "ResNet", "resnet34"]
