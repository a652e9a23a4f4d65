"""CycleGAN as gandtr ran it: two generators, two PatchGANs, cycle L1 x10, image pools, G step first.

generator_X maps day -> night (the one used downstream) and is judged by discriminator_X against
real night images; generator_Y maps night -> day, judged by discriminator_Y. Identity loss is
``identity_weight * cycle_weight`` (0 in gandtr; the official overlay sets 0.5, i.e. 5).
"""

from __future__ import annotations

import torch

from darkside.gan.families.base import (
    BlockSpec,
    GanBundle,
    GanSettings,
    discriminator_spec,
    generator_spec,
    set_requires_grad,
)
from darkside.gan.losses import discriminator_loss, generator_adv_loss, l1
from darkside.gan.pool import ImagePool


class CycleGan(GanBundle):
    family = "cyclegan"

    @classmethod
    def block_specs(cls, s: GanSettings) -> list[BlockSpec]:
        return [generator_spec(s, "generator_X"), generator_spec(s, "generator_Y"),
                discriminator_spec(s, "discriminator_X"), discriminator_spec(s, "discriminator_Y")]

    def __init__(self, settings: GanSettings, device: torch.device | str = "cpu", seed: int = 0) -> None:
        super().__init__(settings, device, seed)
        # separate pool RNG streams, derived from the run seed
        self.pools = {"fake_night": ImagePool(settings.pool_size, seed * 2 + 1),
                      "fake_day": ImagePool(settings.pool_size, seed * 2 + 2)}

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        s, n, o = self.settings, self.nets, self.optimizers
        day, night = (t.to(self.device) for t in batch)
        g_x, g_y, d_x, d_y = n["generator_X"], n["generator_Y"], n["discriminator_X"], n["discriminator_Y"]

        # G step first (CycleGAN order), discriminators frozen so they collect no gradients
        set_requires_grad([d_x, d_y], False)
        fake_night = g_x(day)
        fake_day = g_y(night)
        cycle = s.cycle_weight * (l1(g_y(fake_night), day) + l1(g_x(fake_day), night))
        adv = generator_adv_loss(d_x(fake_night)) + generator_adv_loss(d_y(fake_day))
        idt = torch.zeros((), device=self.device)
        if s.identity_weight > 0:
            idt = s.cycle_weight * s.identity_weight * (l1(g_x(night), night) + l1(g_y(day), day))
        loss_g = adv + cycle + idt
        o["generator_X"].zero_grad(set_to_none=True)
        o["generator_Y"].zero_grad(set_to_none=True)
        loss_g.backward()
        o["generator_X"].step()
        o["generator_Y"].step()

        # D step on pooled fakes
        set_requires_grad([d_x, d_y], True)
        pooled_night = self.pools["fake_night"].query(fake_night.detach())
        pooled_day = self.pools["fake_day"].query(fake_day.detach())
        loss_dx = discriminator_loss(d_x(night), d_x(pooled_night))
        loss_dy = discriminator_loss(d_y(day), d_y(pooled_day))
        o["discriminator_X"].zero_grad(set_to_none=True)
        o["discriminator_Y"].zero_grad(set_to_none=True)
        (loss_dx + loss_dy).backward()
        o["discriminator_X"].step()
        o["discriminator_Y"].step()
        return {"G": float(loss_g.detach()), "G_adv": float(adv.detach()),
                "cycle": float(cycle.detach()), "identity": float(idt.detach()),
                "D_X": float(loss_dx.detach()), "D_Y": float(loss_dy.detach())}
