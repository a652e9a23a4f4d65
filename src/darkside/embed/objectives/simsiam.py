"""SimSiam (Chen & He 2021) as DaCo ran it: the symmetric negative cosine between one view's projection and the
other view's backbone feature, the feature's gradient stopped. DaCo's SimSiam has no predictor of its own: the
projection head plays the predictor and the (unit-norm) pooled feature the encoding, so it has no settings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from darkside.embed.objectives import Objective, Views, register_objective
from darkside.embed.self_supervised_losses import simsiam_loss


@dataclass(frozen=True)
class SimsiamSettings:
    """No numbers of its own (DaCo's SimSiamLoss takes none)."""


@register_objective
class Simsiam(Objective):
    name = "simsiam"
    Settings = SimsiamSettings
    views = ("o1", "o2")

    def loss(self, net: nn.Module, batch: Views) -> torch.Tensor:
        f1, p1 = net(batch.o1)
        f2, p2 = net(batch.o2)
        return simsiam_loss(f1, f2, p1, p2)
