"""Contrastive loss against hand-computed values (cirtorch formula, summed)."""

import math

import pytest
import torch

from darkside.embed.losses import contrastive_loss


def _d(a, b):
    # cirtorch: sqrt(sum((a - b + 1e-6)^2))
    return math.sqrt(sum((x - y + 1e-6) ** 2 for x, y in zip(a, b, strict=True)))


def test_hand_computed_tuple():
    a = torch.tensor([1.0, 0.0], dtype=torch.float64)
    others = torch.tensor([[0.6, 0.8], [0.8, 0.6], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([1, 0, 0])
    loss = contrastive_loss(a, others, labels, margin=0.75)
    # positive: d^2 = 0.16 + 0.64 = 0.8 -> 0.4; negative 1: d = sqrt(0.4) = 0.632456 < 0.75
    # -> 0.5 * (0.75 - 0.632456)^2 = 0.0069083; negative 2: d = sqrt(2) > margin -> 0
    assert loss.item() == pytest.approx(0.4 + 0.5 * (0.75 - math.sqrt(0.4)) ** 2, abs=1e-5)
    exact = 0.5 * _d([1, 0], [0.6, 0.8]) ** 2 + 0.5 * (0.75 - _d([1, 0], [0.8, 0.6])) ** 2
    assert loss.item() == pytest.approx(exact, rel=1e-12)
    assert loss.item() == pytest.approx(0.4069083, abs=1e-6)


def test_summed_not_averaged_and_margin_per_backbone():
    a = torch.tensor([[1.0, 0.0]])
    neg = torch.tensor([[1.0, 0.0]] * 4)  # d = sqrt(2) * 1e-6 ~ 0 for each
    loss = contrastive_loss(a, neg, torch.zeros(4), margin=0.85)
    assert loss.item() == pytest.approx(4 * 0.5 * 0.85**2, rel=1e-5)


def test_gradient_only_inside_margin():
    a = torch.tensor([1.0, 0.0], requires_grad=True)
    far = torch.tensor([[-1.0, 0.0]])  # d = 2 > margin: no gradient
    contrastive_loss(a, far, torch.tensor([0]), 0.75).backward()
    assert torch.count_nonzero(a.grad) == 0


def test_shape_errors():
    with pytest.raises(ValueError):
        contrastive_loss(torch.zeros(3), torch.zeros(2, 4), torch.zeros(2), 0.7)
    with pytest.raises(ValueError):
        contrastive_loss(torch.zeros(3), torch.zeros(2, 3), torch.zeros(3), 0.7)
