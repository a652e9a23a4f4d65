"""A generator family from outside the package, in one module: what a researcher adding a family writes.

ToyGAN: the ResNet generator and a PatchGAN, LSGAN plus a total-variation penalty on the translation
(its own setting, ``tv_weight``). Named in params.yaml's ``plugins``, it trains with ``darkside
train-gan``, translates the anchors of ``toygan-cd``, and has its rows in Tables 7 and 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from darkside.gan.family import (
    BlockSpec,
    GanBundle,
    GanSetup,
    ResnetGanSettings,
    discriminator_spec,
    generator_spec,
    register_family,
    set_requires_grad,
)
from darkside.gan.losses import discriminator_loss, generator_adv_loss
from darkside.settings import setting


@dataclass(frozen=True)
class ToyGanSettings(ResnetGanSettings):
    tv_weight: float = setting("weight of the total-variation penalty on the translation", ge=0)


@register_family
class ToyGan(GanBundle):
    name = "toygan"
    title = "ToyGAN"
    Settings = ToyGanSettings

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        return [generator_spec(setup.settings, "generator_X"), discriminator_spec(setup.settings, "discriminator_X")]

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        day, night = (t.to(self.device) for t in batch)
        g, d, o = self.nets["generator_X"], self.nets["discriminator_X"], self.optimizers
        fake = g(day)
        set_requires_grad([d], True)
        loss_d = discriminator_loss(d(night), d(fake.detach()))
        o["discriminator_X"].zero_grad(set_to_none=True)
        loss_d.backward()
        o["discriminator_X"].step()
        set_requires_grad([d], False)
        tv = (fake[..., 1:, :] - fake[..., :-1, :]).abs().mean() + (fake[..., 1:] - fake[..., :-1]).abs().mean()
        loss_g = generator_adv_loss(d(fake)) + self.settings.tv_weight * tv
        o["generator_X"].zero_grad(set_to_none=True)
        loss_g.backward()
        o["generator_X"].step()
        return {"G": float(loss_g.detach()), "D": float(loss_d.detach())}
