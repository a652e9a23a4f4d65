"""HEDGAN: one generator, one PatchGAN, a frozen edge detector; D updated first.

G loss = LSGAN + edge_weight * mean |E(G(x)) - E(x)| on sigmoid edge maps of the frozen detector E
(HED in the paper; 'RCF GAN' is the same family with ``detector: rcf``). No cycle, identity or pool.
"""

from __future__ import annotations

import torch

from darkside.gan.families.base import (
    BlockSpec,
    GanBundle,
    GanSettings,
    detector_spec,
    discriminator_spec,
    generator_spec,
    set_requires_grad,
)
from darkside.gan.losses import discriminator_loss, generator_adv_loss, l1


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] generator space -> RGB [0, 1], the detectors' input convention."""
    return x * 0.5 + 0.5


class HedGan(GanBundle):
    family = "hedgan"

    @classmethod
    def block_specs(cls, s: GanSettings) -> list[BlockSpec]:
        return [generator_spec(s, "generator_X"), discriminator_spec(s, "discriminator_X"),
                detector_spec(s, "detector_teacher", "frozen")]

    def discriminator_step(self, fake: torch.Tensor, night: torch.Tensor) -> torch.Tensor:
        d = self.nets["discriminator_X"]
        set_requires_grad([d], True)
        loss_d = discriminator_loss(d(night), d(fake.detach()))
        self.optimizers["discriminator_X"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["discriminator_X"].step()
        set_requires_grad([d], False)  # G's step must not leave gradients in D
        return loss_d

    def generator_step(self, loss_g: torch.Tensor) -> None:
        self.optimizers["generator_X"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizers["generator_X"].step()

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        day, night = (t.to(self.device) for t in batch)
        g, d, e = self.nets["generator_X"], self.nets["discriminator_X"], self.nets["detector_teacher"]
        fake = g(day)
        loss_d = self.discriminator_step(fake, night)
        with torch.no_grad():
            edges_real = e(to_unit(day))
        adv = generator_adv_loss(d(fake))
        edge = self.settings.edge_weight * l1(e(to_unit(fake)), edges_real)
        loss_g = adv + edge
        self.generator_step(loss_g)
        return {"G": float(loss_g.detach()), "G_adv": float(adv.detach()),
                "edge": float(edge.detach()), "D": float(loss_d.detach())}
