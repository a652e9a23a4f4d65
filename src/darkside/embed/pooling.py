"""Generalised-mean (GeM), MAC and NetVLAD pooling and L2 normalisation (cirtorch's functional style)."""

from __future__ import annotations

import math

import torch
from torch import nn

from darkside.errors import DarksideError


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


def netvlad(x: torch.Tensor, centres: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """NetVLAD pooling (Arandjelovic et al., CVPR 2016, eq. 4): (B, C, H, W) -> (B, K C).

    Each location's feature x_i is L2-normalised over C (the authors' ``preL2``); its soft-assignment to centre k
    is a_k(x_i) = softmax_k(w_k . x_i + b_k) (``weight`` (K, C), ``bias`` (K,): the 1 x 1 assignment conv); the
    residuals are aggregated, V_k = sum_i a_k(x_i) (x_i - c_k) (``centres`` (K, C)); each V_k is L2-normalised
    (intra-normalisation), then the flattened vector (V_1, ..., V_K) (K-major, as the authors' layout).
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    f = l2n(x.flatten(2).transpose(1, 2))                       # (B, N, C) unit features
    a = torch.softmax(f @ weight.t() + (0.0 if bias is None else bias), dim=-1)  # (B, N, K)
    # sum_i a_ik x_i - c_k sum_i a_ik, without the (B, N, K, C) residuals
    v = a.transpose(1, 2) @ f - a.sum(1).unsqueeze(-1) * centres  # (B, K, C)
    return l2n(l2n(v).flatten(1))


class NetVLAD(nn.Module):
    """NetVLAD pooling with K trainable centres and the assignment conv (:func:`netvlad`); scales are averaged
    (power mean 1: its components can be negative). :meth:`init_from` sets both from k-means centres."""

    multiscale_p = 1.0

    def __init__(self, channels: int, clusters: int) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.zeros(clusters, channels))
        self.assign = nn.Conv2d(channels, clusters, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return netvlad(x, self.centres, self.assign.weight.flatten(1), self.assign.bias)

    @torch.no_grad()
    def init_from(self, centres: torch.Tensor, features: torch.Tensor, ratio: float) -> float:
        """The paper's initialisation from k-means ``centres`` (K, C) of unit ``features`` (N, C): w_k = 2 alpha c_k,
        b_k = -alpha ||c_k||^2 (so the assignment is softmax_k(-alpha ||x - c_k||^2)), alpha such that a feature's
        weight on its nearest centre is ``ratio`` times that on its second nearest, on average over ``features``
        (alpha = log(ratio) / mean(d_2 - d_1), d_j its squared distance to its j-th nearest centre; the authors'
        code: ratio 100). Returns alpha."""
        if len(centres) < 2:
            raise DarksideError(f"netvlad: the initialisation needs at least two centres, got {len(centres)}")
        d = torch.cdist(features.double(), centres.double()).pow(2).sort(dim=1).values
        gap = float((d[:, 1] - d[:, 0]).mean())
        if not gap > 0:
            raise DarksideError("netvlad: every feature is as near its second centre as its first (k-means found "
                                "coinciding centres)")
        alpha = math.log(ratio) / gap
        c = centres.to(self.centres)
        self.centres.copy_(c)
        self.assign.weight.copy_((2.0 * alpha * c).view_as(self.assign.weight))
        self.assign.bias.copy_(-alpha * c.pow(2).sum(1))
        return alpha
