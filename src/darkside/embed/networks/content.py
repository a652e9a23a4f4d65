"""A generator's content embedding as the descriptor network: MDUIT's z_s = H(E_c(x)) (Jeong, Lee, Sohn, ICASSP
2022, §3.3 and Table 1: retrieval-based localization with z_s, for the full method and its ablations).

The network is the family's :class:`~darkside.gan.family.ContentEmbedding` (what its generator file carries as
``content_state_dict``): a stem takes the ImageNet-normalised images every network receives back to the [-1, 1]
the generator was trained on, the content encoder (MDUIT's E_c) stands where a backbone's trunk stands, and the
head (MDUIT's H: trainable GeM, two-layer MLP, L2) is the pooling; the network's own L2 follows (a no-op on H's
unit rows). Scales are averaged (power mean 1): a head whose MLP gives negative components has no GeM power
mean. The backbone trunk the DAG names the model after is not used (a recipe's ``content_of``, not its backbone,
says what the network is).

A recipe ``<translator>-content`` names the generator run (``content_of``: a family, a variant of it, a published
generator), so that Full and every ablation of MDUIT's Table 1 are the same network read from another generator
file. :func:`init_content_model` writes the model file from that file (``darkside init-model --recipe ...
--generator ...``, the DAG's rule ``content_model``); the file then records the generator's setup in the
network's settings (``setup``), so that :func:`~darkside.embed.network.load_model` rebuilds the network without
the generator file, and holds the weights. Nothing is fine-tuned; every later step (learned whitening, multi-scale
extraction, scoring) is every model's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darkside.config import BackboneSpec
from darkside.embed.network import IMAGENET_MEAN, IMAGENET_STD, EmbeddingNet, save_model
from darkside.embed.networks import Network, NetworkSettings, build_network, register_network
from darkside.errors import ConfigError
from darkside.gan.family import GanSetup, family_class, load_content_embedding
from darkside.hashing import sha256_file
from darkside.settings import setting

NAME = "content"
#: the smallest image side the stem and encoder take: MDUIT's E_c reflect-pads by 3 at full resolution and its
#: residual blocks by 1 after two stride-2 convolutions (a 4 px map at 16 px), which a smaller map cannot
MIN_SIDE = 16


@dataclass(frozen=True)
class ContentSettings(NetworkSettings):
    """What the network is rebuilt from: the generator run's setup, recorded from its generator file."""

    setup: dict[str, Any] | None = setting(
        "the generator run's setup (family and settings) whose content embedding this is: written into the model "
        "file from the generator file by init-model, not a params.yaml setting", default=None)


class UnitRange(nn.Module):
    """ImageNet-normalised RGB -> RGB in [-1, 1] (a generator's input)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.std + self.mean) * 2.0 - 1.0


class ContentPool(nn.Module):
    """The content embedding's head as the network's pooling; its scales are averaged (power mean 1)."""

    multiscale_p = 1.0

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f.float())


def _setup(s: ContentSettings, where: str) -> GanSetup:
    if s.setup is None:
        raise ConfigError(f"{where}.setup: a content embedding is built from a generator file (darkside init-model "
                          f"--recipe <translator>-content --generator <generator.pt>)")
    return GanSetup.from_plain(s.setup, f"{where}.setup")


def build(trunk: nn.Sequential, channels: int, spec: BackboneSpec, s: ContentSettings) -> EmbeddingNet:
    # the backbone's trunk is not used: the family's content encoder is the network's trunk
    setup = _setup(s, f"networks.{NAME}")
    embedding = family_class(setup.family).content_embedding(setup)
    if embedding is None:
        raise ConfigError(f"networks.{NAME}: {family_class(setup.family).title} has no content embedding")
    net = EmbeddingNet(embedding.encoder, embedding.dim, spec, pool=ContentPool(embedding.head), stem=UnitRange(),
                       channels=embedding.channels)
    net.min_side = max(net.min_side, MIN_SIDE)
    return net


def init_content_model(spec: BackboneSpec, generator: Path, settings: ContentSettings, out: Path,
                       where: str = f"networks.{NAME}") -> Path:
    """Write the model file of the content embedding that ``generator`` carries (named after ``spec``'s backbone,
    whose trunk it does not use); its record holds the generator's setup, its state dict the weights."""
    if settings.setup is not None:
        raise ConfigError(f"{where}.setup: recorded from the generator file, not set in params.yaml")
    embedding, setup = load_content_embedding(generator)
    settings = dataclasses.replace(settings, setup=setup.to_plain())
    # an empty trunk stands in for the backbone's: the network does not read it
    net = build_network(NAME, settings, nn.Sequential(), 0, spec)
    net.backbone.load_state_dict(embedding.encoder.state_dict())
    net.pool.head.load_state_dict(embedding.head.state_dict())
    return save_model(net, out, extra={"kind": "content embedding", "family": setup.family,
                                       "generator": str(generator), "generator_sha256": sha256_file(generator)})


register_network(NAME, Network(settings=ContentSettings, build=build))
