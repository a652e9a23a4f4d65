"""NPID (Wu et al. 2018) as DaCo ran it: one view (o1) per image, noise-contrastive estimation against a memory bank
with a row per training image (random unit vectors at first), each image's own row the positive and ``negatives``
rows drawn uniformly with replacement (the draw may hit the image itself, as DaCo's does), the normaliser Z fixed
from the first batch; after the step the image's row moves towards its new projection by ``momentum``
(:func:`darkside.embed.self_supervised_losses.npid_loss`, ``npid_bank_update``). The draw uses torch's global
generator, which the run seeds and checkpoints."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from darkside.embed.objectives import Objective, Views, register_objective
from darkside.embed.self_supervised_losses import npid_bank_update, npid_loss
from darkside.settings import setting


@dataclass(frozen=True)
class NpidSettings:
    temperature: float = setting("NCE temperature (DaCo 0.1)", gt=0)
    negatives: int = setting("bank rows drawn per image (DaCo 4,096)", ge=1)
    momentum: float = setting("weight of the new projection in a bank row's update (DaCo 0.5)", ge=0, le=1)


@register_objective
class Npid(Objective):
    name = "npid"
    Settings = NpidSettings
    views = ("o1",)

    def __init__(self, settings: NpidSettings, net: nn.Module, images: int) -> None:
        super().__init__(settings, net, images)
        dim = net.head[-1].out_features
        self.register_buffer("bank", F.normalize(torch.randn(images, dim), dim=1))
        self.register_buffer("normaliser", torch.tensor(math.nan, dtype=torch.float64))  # NaN: not yet fixed
        self._features: torch.Tensor | None = None

    def loss(self, net: nn.Module, batch: Views) -> torch.Tensor:
        features = net(batch.o1)[1]
        samples = torch.randint(len(self.bank), (len(features), self.settings.negatives + 1))
        samples[:, 0] = batch.index
        z = float(self.normaliser)
        loss, z = npid_loss(features, self.bank, samples, self.settings.temperature, None if math.isnan(z) else z)
        self.normaliser.fill_(z)
        self._features = features
        return loss

    def after_step(self, net: nn.Module, batch: Views) -> None:
        assert self._features is not None, "after_step before loss"
        self.bank = npid_bank_update(self.bank, self._features, batch.index.to(self.bank.device),
                                     self.settings.momentum)
        self._features = None
