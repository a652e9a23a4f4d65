"""MoCo (He et al. 2020) as DaCo ran it: the query is the projection of o1 by the trained network, the key that of
o2 by a key encoder that follows the network by momentum (not by gradient), the negatives a first-in first-out
queue of past keys, initialised with random unit vectors (DaCo's MoCoLoss).

DaCo shuffles the key batch across GPUs before the key encoder (shuffle BN) and unshuffles after; on one device a
permutation of the batch is invisible to batch norm's statistics, so it is not done here. The key encoder's
buffers (batch norm's running statistics, unused: it always runs in training mode) are copied with its
momentum update."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from darkside.embed.objectives import Objective, Views, register_objective
from darkside.embed.self_supervised_losses import fifo_enqueue, moco_loss, momentum_update
from darkside.settings import setting


@dataclass(frozen=True)
class MocoSettings:
    temperature: float = setting("InfoNCE temperature (DaCo 0.1)", gt=0)
    negatives: int = setting("queue length (DaCo 4,096)", ge=1)
    momentum: float = setting("key encoder = m key encoder + (1 - m) network after each step (DaCo 0.999)",
                              ge=0, le=1)


@register_objective
class Moco(Objective):
    name = "moco"
    Settings = MocoSettings
    views = ("o1", "o2")

    def __init__(self, settings: MocoSettings, net: nn.Module, images: int) -> None:
        super().__init__(settings, net, images)
        self.key_encoder = copy.deepcopy(net)
        for p in self.key_encoder.parameters():
            p.requires_grad_(False)
        dim = net.head[-1].out_features
        self.register_buffer("queue", F.normalize(torch.randn(settings.negatives, dim), dim=1))
        self._keys: torch.Tensor | None = None

    def loss(self, net: nn.Module, batch: Views) -> torch.Tensor:
        query = net(batch.o1)[1]
        with torch.no_grad():
            self.key_encoder.train()
            key = self.key_encoder(batch.o2)[1]
        self._keys = key
        return moco_loss(query, key, self.queue.to(query.device), self.settings.temperature)

    def after_step(self, net: nn.Module, batch: Views) -> None:
        assert self._keys is not None, "after_step before loss"
        self.queue = fifo_enqueue(self.queue, self._keys.to(self.queue.device))
        momentum_update(self.key_encoder, net, self.settings.momentum)
        self._keys = None
