"""GeM (Radenovic et al., TPAMI 2019): trunk -> GeM pooling with a learned exponent (initialised 3) -> L2.

The network of every recipe that names no other, and the one ``init-model`` writes off the shelf.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from darkside.config import BackboneSpec
from darkside.embed.network import EmbeddingNet
from darkside.embed.networks import Network, NetworkSettings, register_network


@dataclass(frozen=True)
class GemSettings(NetworkSettings):
    """GeM trains on the preset's ``finetune`` schedule; it has no numbers of its own."""


def build(trunk: nn.Sequential, channels: int, spec: BackboneSpec, settings: GemSettings) -> EmbeddingNet:
    return EmbeddingNet(trunk, channels, spec)


register_network("gem", Network(settings=GemSettings, build=build))
