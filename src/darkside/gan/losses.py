"""LSGAN losses (least squares to targets 1 / 0), the L1 consistency terms, CUT's PatchNCE and CyEDA's
Sobel-gradient L1.

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


def patch_nce(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """PatchNCE (CUT): per image, each query patch must pick its own key among the image's P keys.

    ``query``, ``key``: (B, P, D) L2-normalised patch features; ``key`` is treated as a constant. Logits are
    [<q_i, k_i>, <q_i, k_j> for j != i] / temperature (the self-pair among the negatives masked out, as CUT
    fills it with -10 before the division); the loss is the mean cross-entropy with the positive as target.
    Negatives come from the same image only (CUT's ``nce_includes_all_negatives_from_minibatch`` False).
    """
    key = key.detach()
    b, p, _ = query.shape
    pos = (query * key).sum(-1, keepdim=True)                       # (B, P, 1)
    neg = query @ key.transpose(1, 2)                               # (B, P, P)
    eye = torch.eye(p, dtype=torch.bool, device=query.device)[None]
    neg = neg.masked_fill(eye, -10.0)
    logits = torch.cat([pos, neg], dim=-1).reshape(b * p, p + 1) / temperature
    target = torch.zeros(b * p, dtype=torch.long, device=query.device)
    return torch.nn.functional.cross_entropy(logits, target)


def sobel_magnitude(images: torch.Tensor) -> torch.Tensor:
    """CyEDA's gradient magnitude: (B, C, H, W) -> (B, 1, H, W).

    Half-Sobel kernels (x: rows [-1/2, 0, 1/2], [-1, 0, 1], [-1/2, 0, 1/2]; y: its transpose) correlate each
    channel with zero padding; the per-channel responses are averaged and the magnitude is
    sqrt(gx^2 + gy^2 + 1e-8).
    """
    kx = torch.tensor([[-0.5, 0.0, 0.5], [-1.0, 0.0, 1.0], [-0.5, 0.0, 0.5]], dtype=images.dtype,
                      device=images.device)
    kernels = torch.stack([kx, kx.t()])[:, None]                   # (2, 1, 3, 3)
    b, c, h, w = images.shape
    g = torch.nn.functional.conv2d(images.reshape(b * c, 1, h, w), kernels, padding=1)
    g = g.reshape(b, c, 2, h, w).mean(1)                            # (B, 2, H, W)
    return torch.sqrt((g * g).sum(1, keepdim=True) + 1e-8)


def edge_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """CyEDA's "Edge" cycle loss: mean |sobel(a) - sobel(b)| between an image and its translation."""
    return l1(sobel_magnitude(a), sobel_magnitude(b))
