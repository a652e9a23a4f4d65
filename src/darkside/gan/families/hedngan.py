"""HED^N GAN: HEDGAN plus a trainable student detector S initialised from the frozen teacher T.

Per step: (1) D step; (2) student step on logits, |S(x) - T(x)| + |S(G(x).detach()) - T(x)|, i.e.
keep the day edges and learn to see the same edges in the night translation; (3) G step with the
*updated* student: LSGAN + edge_weight * |sigma S(G(x)) - sigma T(x)|. The student's optimiser is
Adam (student_lr, betas, weight decay) with HED's Caffe per-layer multipliers when configured, and
follows the same constant-then-linear lr schedule as G and D.
"""

from __future__ import annotations

import torch

from darkside.gan.families.base import (
    BlockSpec,
    GanSettings,
    detector_spec,
    discriminator_spec,
    generator_spec,
    set_requires_grad,
    student_optimizer,
)
from darkside.gan.families.hedgan import HedGan, to_unit
from darkside.gan.losses import generator_adv_loss, l1


class HedNGan(HedGan):
    family = "hedngan"

    @classmethod
    def block_specs(cls, s: GanSettings) -> list[BlockSpec]:
        return [generator_spec(s, "generator_X"), discriminator_spec(s, "discriminator_X"),
                detector_spec(s, "detector_student", "student"),
                detector_spec(s, "detector_teacher", "frozen")]

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = super().build_optimizers()
        opts["detector_student"] = student_optimizer(self.settings, self.nets["detector_student"])
        return opts

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        day, night = (t.to(self.device) for t in batch)
        n = self.nets
        g, d, stu, tea = n["generator_X"], n["discriminator_X"], n["detector_student"], n["detector_teacher"]
        fake = g(day)
        loss_d = self.discriminator_step(fake, night)

        with torch.no_grad():
            t_logits = tea(to_unit(day), logits=True)
        set_requires_grad([stu], True)
        loss_s = l1(stu(to_unit(day), logits=True), t_logits) + \
            l1(stu(to_unit(fake.detach()), logits=True), t_logits)
        opt_s = self.optimizers["detector_student"]
        opt_s.zero_grad(set_to_none=True)
        loss_s.backward()
        opt_s.step()
        set_requires_grad([stu], False)  # gradients flow through S into G, S itself stays put

        adv = generator_adv_loss(d(fake))
        edge = self.settings.edge_weight * l1(torch.sigmoid(stu(to_unit(fake), logits=True)),
                                              torch.sigmoid(t_logits))
        loss_g = adv + edge
        self.generator_step(loss_g)
        return {"G": float(loss_g.detach()), "G_adv": float(adv.detach()),
                "edge": float(edge.detach()), "D": float(loss_d.detach()),
                "student": float(loss_s.detach())}
