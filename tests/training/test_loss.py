from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from linegraph2road.errors import ParameterError
from linegraph2road.training.loss import l2r_loss


def test_zero_logits_give_ln2_everywhere() -> None:
    masks = torch.zeros(2, 3, 4, 4)
    masks[0, 1, 0, 0] = 1.0
    parts = l2r_loss(
        torch.zeros(2, 3, 4, 4),
        masks,
        [torch.zeros(3), torch.zeros(0)],
        [torch.tensor([1.0, 0.0, 1.0]), torch.zeros(0)],
    )
    ln2 = math.log(2.0)
    assert parts.mask.item() == pytest.approx(ln2)
    assert parts.edge.item() == pytest.approx(ln2)
    assert parts.total.item() == pytest.approx(ln2 + 0.1 * ln2)
    assert parts.road.item() == pytest.approx(ln2)


def test_matches_torch_bce_and_lambda() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 5, generator=g)
    targets = (torch.rand(2, 3, 5, 5, generator=g) > 0.7).float()
    e = [torch.randn(4, generator=g), torch.randn(2, generator=g)]
    y = [torch.tensor([1.0, 0, 0, 1]), torch.tensor([0.0, 1])]
    parts = l2r_loss(logits, targets, e, y, lambda_edge=0.25)
    mask = F.binary_cross_entropy_with_logits(logits, targets)
    edge = F.binary_cross_entropy_with_logits(torch.cat(e), torch.cat(y))
    assert parts.mask.item() == pytest.approx(mask.item(), rel=1e-6)
    assert parts.edge.item() == pytest.approx(edge.item(), rel=1e-6)
    assert parts.total.item() == pytest.approx(mask.item() + 0.25 * edge.item(), rel=1e-6)
    per = [F.binary_cross_entropy_with_logits(logits[:, c], targets[:, c]).item() for c in range(3)]
    assert [parts.keypoint.item(), parts.road.item(), parts.overpass.item()] == pytest.approx(per)


def test_non_overpass_variant_has_no_overpass_term() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 5, 5, generator=g, requires_grad=True)
    targets = (torch.rand(2, 3, 5, 5, generator=g) > 0.7).float()
    e, y = [torch.randn(3, generator=g)], [torch.tensor([1.0, 0.0, 1.0])]
    parts = l2r_loss(logits, targets, e, y, channels=(0, 1))
    two = F.binary_cross_entropy_with_logits(logits[:, :2], targets[:, :2])
    assert parts.mask.item() == pytest.approx(two.item(), rel=1e-6)
    assert math.isnan(parts.overpass.item())
    full = l2r_loss(logits, targets, e, y)
    assert [parts.keypoint.item(), parts.road.item()] == [full.keypoint.item(), full.road.item()]
    parts.total.backward()
    assert logits.grad is not None
    assert torch.all(logits.grad[:, 2] == 0) and torch.any(logits.grad[:, :2] != 0)
    with pytest.raises(ParameterError, match="channels"):
        l2r_loss(logits, targets, e, y, channels=(3,))


def test_no_candidates_gives_zero_edge_term_with_gradient_path() -> None:
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    edge = torch.zeros(0, requires_grad=True)
    parts = l2r_loss(logits, torch.zeros(1, 3, 2, 2), [edge], [torch.zeros(0)])
    assert parts.edge.item() == 0.0
    parts.total.backward()
    assert logits.grad is not None and edge.grad is not None


def test_bad_shapes_are_parameter_errors() -> None:
    with pytest.raises(ParameterError):
        l2r_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 3), [], [])
    with pytest.raises(ParameterError):
        l2r_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), [torch.zeros(2)], [])
    with pytest.raises(ParameterError):
        l2r_loss(
            torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), [torch.zeros(2)], [torch.zeros(3)]
        )
