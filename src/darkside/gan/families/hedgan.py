"""HEDGAN: one generator, one PatchGAN, a frozen edge detector; D updated first.

G loss = LSGAN + edge_weight * mean |E(G(x)) - E(x)| on sigmoid edge maps of the frozen detector E
(HED in the paper; 'RCF GAN' is the same family with ``detector: rcf``). No cycle, identity or pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from darkside.gan.edges import DETECTORS
from darkside.gan.family import (
    BlockSpec,
    GanBundle,
    GanSetup,
    ResnetGanSettings,
    detector_spec,
    discriminator_spec,
    generator_spec,
    register_family,
    set_requires_grad,
)
from darkside.gan.losses import discriminator_loss, generator_adv_loss, l1
from darkside.settings import setting


@dataclass(frozen=True)
class EdgeGanSettings(ResnetGanSettings):
    detector: str = setting("the frozen edge detector (its settings: edges.detectors.<kind>)",
                            choices=tuple(DETECTORS), key_in="edges.detectors")
    edge_weight: float = setting("weight of the edge-consistency L1 in the generator loss", ge=0)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] generator space -> RGB [0, 1], the detectors' input convention."""
    return x * 0.5 + 0.5


@register_family
class HedGan(GanBundle):
    name = "hedgan"
    title = "HEDGAN"
    Settings = EdgeGanSettings

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        s = setup.settings
        return [generator_spec(s, "generator_X"), discriminator_spec(s, "discriminator_X"),
                detector_spec(setup, "detector_teacher", "frozen")]

    def discriminator_step(self, fake: torch.Tensor, night: torch.Tensor) -> torch.Tensor:
        d = self.nets["discriminator_X"]
        set_requires_grad([d], True)
        loss_d = discriminator_loss(d(night), d(fake.detach()))
        self.optimise(loss_d, "discriminator_X")
        set_requires_grad([d], False)  # G's step must not leave gradients in D
        return loss_d

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
        self.optimise(loss_g, "generator_X")
        return {"G": float(loss_g.detach()), "G_adv": float(adv.detach()),
                "edge": float(edge.detach()), "D": float(loss_d.detach())}
