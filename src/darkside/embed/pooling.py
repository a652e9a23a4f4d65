"""Generalised-mean (GeM) pooling and L2 normalisation (cirtorch's functional style)."""

from __future__ import annotations

import torch
from torch import nn


def gem(x: torch.Tensor, p: torch.Tensor | float, eps: float = 1e-6) -> torch.Tensor:
    """GeM over the spatial dims: ``(mean_{h,w} max(x, eps)^p)^(1/p)``; (B, C, H, W) -> (B, C).

    The clamp keeps the power defined for ReLU zeros (and negative inputs); p = 1 is average
    pooling and p -> inf tends to max pooling.
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        # powers of activations overflow / lose precision in half precision (autocast on GPU)
        x = x.float()
    if not torch.is_tensor(p):
        p = torch.tensor(float(p), dtype=x.dtype, device=x.device)
    return x.clamp(min=eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


def l2n(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / (||x||_2 + eps)`` along the last dim (the eps, not a max, as in cirtorch)."""
    return x / (torch.linalg.vector_norm(x, ord=2, dim=-1, keepdim=True) + eps)


class GeM(nn.Module):
    """GeM pooling with one scalar p (initialised 3), learnable unless ``learnable=False``."""

    def __init__(self, p: float = 3.0, learnable: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        # always a Parameter (so the state dict layout does not depend on the flag)
        self.p = nn.Parameter(torch.tensor([float(p)]), requires_grad=learnable)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gem(x, self.p, self.eps)

    def extra_repr(self) -> str:
        return f"p={self.p.item():.4f}, eps={self.eps}"


def mac(x: torch.Tensor) -> torch.Tensor:
    """MAC: the spatial maximum per channel; (B, C, H, W) -> (B, C)."""
    return x.amax(dim=(-2, -1))


class MAC(nn.Module):
    """MAC pooling. Its scales are summed (power mean p = 1) at test time, as EdgeMAC combines them."""

    multiscale_p = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return mac(x)


class L2N(nn.Module):
    """Module wrapper of :func:`l2n`."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2n(x, self.eps)
