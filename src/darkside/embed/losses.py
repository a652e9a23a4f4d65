"""Contrastive loss of cirtorch / gandtr (pure function, summed over the pairs of one tuple)."""

from __future__ import annotations

import torch

#: added to every coordinate difference, as cirtorch does: keeps sqrt differentiable at d = 0
DIFF_EPS = 1e-6


def contrastive_loss(anchor: torch.Tensor, others: torch.Tensor, labels: torch.Tensor,
                     margin: float) -> torch.Tensor:
    """Sum over pairs of ½·d² (label 1, positive) and ½·max(0, margin − d)² (label 0, negative).

    ``anchor``: (D,) or (1, D); ``others``: (K, D); ``labels``: (K,) of 0/1.
    d = sqrt(sum((a − b + 1e-6)²)). The loss is SUMMED, not averaged: the paper's learning rate
    (5e-7) was tuned for the summed loss, so averaging would silently change the schedule.
    """
    a = anchor.reshape(1, -1)
    if others.ndim != 2 or others.shape[1] != a.shape[1]:
        raise ValueError(f"others must be (K, {a.shape[1]}), got {tuple(others.shape)}")
    y = labels.to(others.dtype).reshape(-1)
    if y.shape[0] != others.shape[0]:
        raise ValueError(f"labels must have {others.shape[0]} entries, got {y.shape[0]}")
    d = torch.sqrt(((a - others + DIFF_EPS) ** 2).sum(dim=1))
    pos = 0.5 * y * d.pow(2)
    neg = 0.5 * (1.0 - y) * torch.clamp(margin - d, min=0.0).pow(2)
    return (pos + neg).sum()
