"""LSGAN losses (least squares to targets 1 / 0) and the L1 consistency terms.

The discriminator loss is halved, as in CycleGAN and gandtr, which slows D relative to G.
"""

from __future__ import annotations

import torch


def lsgan(pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Mean squared distance of the patch logits to 1 (real) or 0 (fake)."""
    target = 1.0 if target_is_real else 0.0
    return ((pred - target) ** 2).mean()


def discriminator_loss(pred_real: torch.Tensor, pred_fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (LSGAN(real, 1) + LSGAN(fake, 0))."""
    return 0.5 * (lsgan(pred_real, True) + lsgan(pred_fake, False))


def generator_adv_loss(pred_fake: torch.Tensor) -> torch.Tensor:
    """The generator wants its fakes scored as real: LSGAN(fake, 1)."""
    return lsgan(pred_fake, True)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference (cycle, identity and edge-consistency terms)."""
    return (a - b).abs().mean()
