"""NetVLAD (Arandjelovic, Gronat, Torii, Pajdla, Sivic, CVPR 2016): trunk -> NetVLAD pooling -> L2; the baseline
of MDUIT's Table 1 ("NetVLAD [35]"), here on the suite's VGG16 trunk fine-tuned exactly as the GeM recipe is (the
same contrastive loss, mining and schedule), only the pooling differs.

Before the first epoch :func:`prepare` initialises the pooling as the authors do: K centres by k-means of trunk
features (each location's C-vector, L2-normalised) of the first ``init_images`` training images, ``init_features``
locations of each drawn at random, and the assignment conv from them (:meth:`~darkside.embed.pooling.NetVLAD.
init_from`: w_k = 2 alpha c_k, b_k = -alpha ||c_k||^2, alpha from ``assignment_ratio``); then everything trains
with the trunk at the fine-tuning lr. Descriptors are K C-dimensional (paper: K = 64 on VGG16's 512 channels,
32,768-D); their scales are averaged (power mean 1).

Choices beside the original (recorded, not the authors'): the trunk ends after conv5_3's ReLU, as every network of
the suite (the authors crop before it); training is the suite's contrastive fine-tuning on SfM pairs, not their
weakly supervised triplet ranking loss on Pittsburgh; no PCA-whitening to 4,096-D after training (the suite's
learned whitening of every model stands in); 500 images x 100 features and 100 k-means iterations (the pytorch
port's 50,000 descriptors; the authors' MATLAB takes as many).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from darkside.config import BackboneSpec
from darkside.embed.network import EmbeddingNet
from darkside.embed.networks import Network, NetworkSettings, parse_network_settings, register_network
from darkside.embed.pooling import NetVLAD, l2n
from darkside.errors import DarksideError
from darkside.settings import setting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetVladSettings(NetworkSettings):
    """NetVLAD's own numbers; it trains on the preset's ``finetune`` schedule (GeM's)."""

    clusters: int = setting("K, the centres (paper 64)", ge=2, default=64)
    init_images: int = setting("first training images whose trunk features the centres are k-means'd from", ge=1,
                               default=500)
    init_features: int = setting("locations drawn from each of them (all where an image has fewer)", ge=1,
                                 default=100)
    kmeans_iterations: int = setting("Lloyd iterations of the centres' k-means", ge=1, default=100)
    assignment_ratio: float = setting("alpha of the assignment: a feature weighs its nearest centre this many times "
                                      "its second nearest, on average (the authors' 100)", gt=1, default=100.0)


def kmeans(x: torch.Tensor, k: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means of the rows of ``x`` (N, D) from ``k`` distinct rows drawn with ``generator``; a centre
    left empty keeps its place. (Not :func:`darkside.evaluate.asmk.kmeans`: importing ``evaluate`` here would make
    every network's DVC stage depend on it.)"""
    if len(x) < k:
        raise DarksideError(f"netvlad: {k} centres need at least as many features, got {len(x)}")
    c = x[torch.randperm(len(x), generator=generator)[:k]].clone()
    for _ in range(iterations):
        nearest = torch.cdist(x, c).argmin(1)
        for j in range(k):
            members = x[nearest == j]
            if len(members):
                c[j] = members.mean(0)
    return c


def init_from_locations(pool: NetVLAD, per_image: Sequence[torch.Tensor], clusters: int, locations: int,
                        iterations: int, ratio: float, generator: torch.Generator) -> float:
    """The authors' initialisation of ``pool`` from each image's unit trunk features (locations, C): ``locations``
    of each drawn at random (all where it has fewer), ``clusters`` k-means centres of them, the assignment from
    those (:meth:`NetVLAD.init_from`); returns alpha."""
    features = torch.cat([f[torch.randperm(len(f), generator=generator)[:locations]] for f in per_image])
    alpha = pool.init_from(kmeans(features, clusters, iterations, generator), features, ratio)
    log.info("NetVLAD: %d centres by k-means of %d features of %d images, alpha %.3g", clusters, len(features),
             len(per_image), alpha)
    return alpha


def build(trunk: nn.Sequential, channels: int, spec: BackboneSpec, settings: NetVladSettings) -> EmbeddingNet:
    return EmbeddingNet(trunk, settings.clusters * channels, spec, pool=NetVLAD(channels, settings.clusters),
                        channels=channels)


def prepare(net: EmbeddingNet, pipeline: Any, image_ids: Sequence[str], device: torch.device | str) -> None:
    """The centres by k-means of the first images' unit trunk features, then the assignment from them."""
    record = net.meta["network"]
    s = parse_network_settings(record["name"], record["settings"], f"networks.{record['name']}")
    pool: NetVLAD = net.pool  # type: ignore[assignment]
    # the draws follow the fine-tuning seed (the loop reseeds torch before a network's initialisation)
    g = torch.Generator().manual_seed(int(torch.randint(2**62, (1,))))
    rows = []
    was = net.training
    net.eval()
    with torch.no_grad():
        for i in list(image_ids)[: s.init_images]:
            x = pipeline.tensor(i)[None].to(device)
            f = net.backbone((net.stem(x) if net.stem is not None else x).contiguous(memory_format=torch.channels_last))
            rows.append(l2n(f.float().flatten(2)[0].t()).cpu())  # (locations, C)
    net.train(was)
    init_from_locations(pool, rows, s.clusters, s.init_features, s.kmeans_iterations, s.assignment_ratio, g)


register_network("netvlad", Network(settings=NetVladSettings, build=build, prepare=prepare))
