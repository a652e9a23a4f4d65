"""CycleGAN as gandtr ran it: two generators, two PatchGANs, cycle L1 x10, image pools, G step first.

generator_X maps day -> night (the one used downstream) and is judged by discriminator_X against
real night images; generator_Y maps night -> day, judged by discriminator_Y. Identity loss is
``identity_weight * cycle_weight`` (0 in gandtr). gandtr ran N(0, 0.2) init because its YAML gave
no gain and its code's default is 0.2; the official repository's defaults (N(0, 0.02), identity
0.5, i.e. 5) are the named variant ``official``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

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
from darkside.gan.losses import generator_adv_loss, l1
from darkside.gan.pool import ImagePool
from darkside.settings import setting


@dataclass(frozen=True)
class CycleGanSettings(ResnetGanSettings):
    variant: Literal["gandtr", "official"] = setting("gandtr: as the paper ran it; official: the CycleGAN "
                                                     "repository's init gain and identity loss")
    cycle_weight: float = setting("cycle-consistency L1 weight", ge=0)
    identity_weight: float = setting("identity loss weight, relative to cycle_weight", ge=0)
    pool_size: int = setting("image pool of fakes the discriminators see (0 = off)", ge=0)


@register_family
class CycleGan(GanBundle):
    name = "cyclegan"
    title = "CycleGAN"
    Settings = CycleGanSettings
    variants: ClassVar = {"official": {"init": "normal", "init_gain": 0.02, "identity_weight": 0.5}}
    night_to_day_name = "generator_Y"

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        s = setup.settings
        return [generator_spec(s, "generator_X"), generator_spec(s, "generator_Y"),
                discriminator_spec(s, "discriminator_X"), discriminator_spec(s, "discriminator_Y")]

    def __init__(self, setup: GanSetup, device: torch.device | str = "cpu", seed: int = 0) -> None:
        super().__init__(setup, device, seed)
        # separate pool RNG streams, derived from the run seed
        self.pools = {"fake_night": ImagePool(self.settings.pool_size, seed * 2 + 1),
                      "fake_day": ImagePool(self.settings.pool_size, seed * 2 + 2)}

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        s, n = self.settings, self.nets
        day, night = (t.to(self.device) for t in batch)
        g_x, g_y, d_x, d_y = n["generator_X"], n["generator_Y"], n["discriminator_X"], n["discriminator_Y"]

        # G step first (CycleGAN order), discriminators frozen so they collect no gradients
        set_requires_grad([d_x, d_y], False)
        fake_night, fake_day = g_x(day), g_y(night)
        cycle = s.cycle_weight * (l1(g_y(fake_night), day) + l1(g_x(fake_day), night))
        adv = generator_adv_loss(d_x(fake_night)) + generator_adv_loss(d_y(fake_day))
        idt = torch.zeros((), device=self.device)
        if s.identity_weight > 0:
            idt = s.cycle_weight * s.identity_weight * (l1(g_x(night), night) + l1(g_y(day), day))
        loss_g = adv + cycle + idt
        self.optimise(loss_g, "generator_X", "generator_Y")

        loss_dx, loss_dy = self.pooled_discriminator_step(day, night, fake_day, fake_night)
        return {"G": float(loss_g.detach()), "G_adv": float(adv.detach()), "cycle": float(cycle.detach()),
                "identity": float(idt.detach()), "D_X": float(loss_dx.detach()), "D_Y": float(loss_dy.detach())}
