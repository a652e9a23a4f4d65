"""HOW (Tolias, Jenicek, Chum, ECCV 2020): trunk -> attention, smoothing, whitened reduction -> weighted SPoC -> L2.

Training sees the weighted-SPoC global descriptor (:func:`darkside.embed.how.weighted_spoc`, at one scale, every
location), so fine-tuning, mining and the recipes are GeM's. Before the first epoch :func:`prepare` initialises the
1 x 1 reduction by PCA-whitening of the smoothed activations of the first ``whitening_images`` training images
(scale 1, the ``whitening_features`` locations of highest attention each) and freezes it. At test time the
extraction takes the head's local descriptors (:meth:`HowHead.local_features`); scales of the global descriptor are
summed (power mean p = 1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from darkside.config import BackboneSpec
from darkside.embed.how import Reduction, attention, multiscale_local, smooth
from darkside.embed.network import EmbeddingNet
from darkside.embed.networks import Network, NetworkSettings, register_network
from darkside.settings import setting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HowSettings(NetworkSettings):
    """HOW's own numbers (eccv20 R18: 128 dimensions, whitening from 5,000 images at 1,000 features each)."""

    dims: int = setting("local descriptor dimensions after the reduction (paper 128)", ge=1, default=128)
    whitening_images: int = setting("first training images whose features initialise the reduction (paper 5,000)",
                                    ge=1, default=5000)
    whitening_features: int = setting("features of highest attention taken from each of them (paper 1,000)", ge=1,
                                      default=1000)


class HowHead(nn.Module):
    """The pooling head of a HOW network: (B, C, h, w) activations -> (B, dims) attention-weighted sums."""

    multiscale_p = 1.0  # HOW sums a global descriptor's scales

    def __init__(self, channels: int, settings: HowSettings) -> None:
        super().__init__()
        self.reduction = Reduction(channels, settings.dims)
        self.reduction.requires_grad_(False)  # never trained: set by prepare, restored from the model file after
        self.settings = settings

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        # the L2 of the weighted sum is the network's own L2N
        return (self.reduction(smooth(f)) * attention(f).unsqueeze(1)).sum(dim=(-2, -1))

    def local_features(self, net: EmbeddingNet, images: torch.Tensor, scales: Sequence[float],
                       features: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Equal-size inputs (B, 3, H, W) of ``net`` (whose head this is) -> per image its local descriptors
        (n, dims) and their attention (n,), float32 arrays, highest attention first (what extraction asks of a
        local-feature head)."""
        with torch.no_grad():
            out = multiscale_local(lambda x: activations(net, x), self.reduction, images, scales, features,
                                   net.min_side)
        return [(d.float().cpu().numpy(), a.float().cpu().numpy()) for d, a in out]


def activations(net: EmbeddingNet, x: torch.Tensor) -> torch.Tensor:
    """The trunk's activation of a network input (through the stem, if any)."""
    x = net.stem(x) if net.stem is not None else x
    return net.backbone(x.contiguous(memory_format=torch.channels_last))


def prepare(net: EmbeddingNet, pipeline: Any, image_ids: Sequence[str], device: torch.device | str) -> None:
    """PCA-whitening of the first images' smoothed activations into the reduction, which is then frozen."""
    head: HowHead = net.pool  # type: ignore[assignment]
    s = head.settings
    ids = list(image_ids)[: s.whitening_images]
    rows = []
    was = net.training
    net.eval()
    with torch.no_grad():
        for i in ids:
            f = activations(net, pipeline.tensor(i)[None].to(device))
            a = attention(f).flatten()
            x = smooth(f)[0].flatten(1).T
            rows.append(x[torch.argsort(a, descending=True, stable=True)[: s.whitening_features]].float().cpu())
    net.train(was)
    X = torch.cat(rows).numpy()
    head.reduction.init_whitening(X)
    log.info("HOW reduction: PCA-whitening of %d features of %d images, %d -> %d dims", len(X), len(ids),
             X.shape[1], s.dims)


def build(trunk: nn.Sequential, channels: int, spec: BackboneSpec, settings: HowSettings) -> EmbeddingNet:
    return EmbeddingNet(trunk, settings.dims, spec, pool=HowHead(channels, settings), channels=channels)


register_network("how", Network(settings=HowSettings, build=build, prepare=prepare, local=True))
