"""HOW (Tolias, Jenicek, Chum, ECCV 2020): local descriptors with attention, from a CNN trunk's activations.

Per location u of the trunk's activation f: attention a(u) = ||f(u)||_2 (of the activation itself, before anything
else); the activation is smoothed by a 3 x 3 average (stride 1, borders averaged over the pixels inside), reduced
to D dimensions by a 1 x 1 convolution and L2-normalised: the local descriptor. The reduction is initialised by
PCA-whitening of smoothed activations and then frozen (:meth:`Reduction.init_whitening`). Training uses the
weighted-SPoC global descriptor, sum over u of a(u) x(u), L2-normalised. At test time an image goes through several
scales; attention is divided by its maximum over all scales, and the ``features`` locations of highest attention
over all scales are the image's local descriptors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darkside.errors import DarksideError
from darkside.settings import setting


@dataclass(frozen=True)
class LocalExtractSettings:
    """``local.extract``: HOW's local descriptors of test images (max side: ``extract.image_size``)."""

    scales: tuple[float, ...] = setting("image scales pooled into one list (paper 2, 1.414, 1, 0.707, 0.5, 0.353, "
                                        "0.25)", gt=0, min_items=1)
    features: int = setting("local descriptors kept per image, highest attention first (paper 1000)", ge=1)


def attention(f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) activation -> (B, H, W): the L2 norm over channels at each location."""
    return torch.linalg.vector_norm(f, ord=2, dim=1)


def smooth(f: torch.Tensor) -> torch.Tensor:
    """3 x 3 average, stride 1, padding 1 not counted (the map keeps its size)."""
    return F.avg_pool2d(f, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def pca_whitening(X: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA-whitening of rows ``X`` (n, C) to ``dims``: (P (dims, C), mean (C,)) with y = P (x - mean) of identity
    covariance (full whitening, eigenvalues to the power -1/2), components by decreasing variance."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or dims > X.shape[1] or len(X) <= dims:
        raise DarksideError(f"HOW reduction: {dims} whitened dimensions need more than {dims} descriptors of at "
                            f"least {dims} dimensions, got {X.shape}")
    m = X.mean(axis=0)
    cov = (X - m).T @ (X - m) / len(X)
    val, vec = np.linalg.eigh(cov)
    order = np.argsort(val)[::-1][:dims]
    val, vec = np.clip(val[order], 1e-12, None), vec[:, order]
    vec = vec * np.sign(vec[np.abs(vec).argmax(axis=0), np.arange(dims)])  # a fixed sign per component
    return (vec / np.sqrt(val)).T, m


class Reduction(nn.Conv2d):
    """The 1 x 1 reduction to ``dims`` (with bias), L2 per location; frozen once whitening initialised it."""

    def __init__(self, channels: int, dims: int) -> None:
        super().__init__(channels, dims, kernel_size=1, bias=True)

    def init_whitening(self, X: np.ndarray) -> None:
        """Weights and bias from the PCA-whitening of smoothed activations ``X`` (n, channels); then frozen."""
        P, m = pca_whitening(X, self.out_channels)
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(P, dtype=self.weight.dtype)[:, :, None, None])
            self.bias.copy_(torch.as_tensor(-P @ m, dtype=self.bias.dtype))
        self.requires_grad_(False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return F.normalize(super().forward(f), p=2, dim=1, eps=1e-6)


def weighted_spoc(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """(B, D, H, W) local descriptors and (B, H, W) attention -> (B, D): attention-weighted sum, L2."""
    return F.normalize((x * a.unsqueeze(1)).sum(dim=(-2, -1)), p=2, dim=1, eps=1e-6)


def multiscale_local(trunk: Callable[[torch.Tensor], torch.Tensor], reduction: Callable[[torch.Tensor], torch.Tensor],
                     images: torch.Tensor, scales: Sequence[float], features: int,
                     min_side: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A batch of equal-size images (B, 3, H, W) -> per image its top-``features`` local descriptors (n, D) and their
    attention (n,), highest attention first; attention divided by the image's maximum over every scale. A scale
    that shrinks the images below ``min_side`` is left out (a tiny query crop); bilinear resizing as HOW."""
    if images.ndim != 4:
        raise DarksideError(f"HOW local features: a batch (B, 3, H, W) of images, got {tuple(images.shape)}")
    h, w = images.shape[-2:]
    descs, atts = [], []
    for s in scales:
        size = (max(1, round(h * s)), max(1, round(w * s)))
        if min(size) < min_side:
            continue
        xs = images if size == (h, w) else F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        f = trunk(xs)
        atts.append(attention(f).flatten(1))
        descs.append(reduction(smooth(f)).flatten(2).transpose(1, 2))
    if not descs:
        raise DarksideError(f"HOW local features: no scale of {list(scales)} keeps a {h}x{w} image at "
                            f">= {min_side} px")
    a = torch.cat(atts, dim=1)
    a = a / a.amax(dim=1, keepdim=True).clamp(min=1e-12)
    d = torch.cat(descs, dim=1)
    k = min(int(features), a.shape[1])
    order = torch.argsort(a, dim=1, descending=True, stable=True)[:, :k]  # ties: the earlier scale and location
    return [(d[b, order[b]], a[b, order[b]]) for b in range(len(a))]
