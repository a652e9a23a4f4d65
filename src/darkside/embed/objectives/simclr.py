"""SimCLR (Chen et al. 2020), DaCo's first baseline: NT-Xent between the projections of two views of an image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from darkside.embed.objectives import Objective, Views, register_objective
from darkside.embed.self_supervised_losses import nt_xent
from darkside.settings import setting


@dataclass(frozen=True)
class SimclrSettings:
    temperature: float = setting("NT-Xent temperature (DaCo 0.1)", gt=0)


@register_objective
class Simclr(Objective):
    name = "simclr"
    Settings = SimclrSettings
    views = ("o1", "o2")

    def loss(self, net: nn.Module, batch: Views) -> torch.Tensor:
        return nt_xent(net(batch.o1)[1], net(batch.o2)[1], self.settings.temperature)
