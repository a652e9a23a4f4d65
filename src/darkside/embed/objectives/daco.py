"""DaCo (Ren et al.): NT-Xent within each domain plus lambda times the two cross-domain terms, o1 against each
view of the image's translation (:func:`darkside.embed.self_supervised_losses.daco_loss`). lambda = 0 still sees
the translated views, without the terms that pull an image towards its translation (DaCo's Table 4);
``extra_cross`` adds the two terms of o2 that DaCo leaves out (its Table 5)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from darkside.embed.objectives import Objective, Views, register_objective
from darkside.embed.self_supervised_losses import daco_loss
from darkside.settings import setting


@dataclass(frozen=True)
class DacoObjectiveSettings:
    lam: float = setting("weight of the two cross-domain terms (DaCo 0.8)", ge=0)
    temperature: float = setting("NT-Xent temperature (DaCo 0.1)", gt=0)
    extra_cross: bool = setting("also o2 against each translated view, at weight lambda (DaCo: false; its Table 5 "
                                "true)")


@register_objective
class Daco(Objective):
    name = "daco"
    Settings = DacoObjectiveSettings
    views = ("o1", "o2", "g1", "g2")

    def loss(self, net: nn.Module, batch: Views) -> torch.Tensor:
        s = self.settings
        return daco_loss(net(batch.o1)[1], net(batch.o2)[1], net(batch.g1)[1], net(batch.g2)[1], s.lam,
                         s.temperature, s.extra_cross)
