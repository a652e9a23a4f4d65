"""HED^N GAN: HEDGAN plus a trainable student detector S initialised from the frozen teacher T.

Per step: (1) D step; (2) student step on logits, |S(x) - T(x)| + |S(G(x).detach()) - T(x)|, i.e.
keep the day edges and learn to see the same edges in the night translation; (3) G step with the
*updated* student: LSGAN + edge_weight * |sigma S(G(x)) - sigma T(x)|. The student's optimiser is
Adam (student_lr, betas, weight decay) with HED's Caffe per-layer multipliers when configured, and
follows the same constant-then-linear lr schedule as G and D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from darkside.gan.edges import detector_param_groups
from darkside.gan.families.hedgan import EdgeGanSettings, HedGan, to_unit
from darkside.gan.family import BlockSpec, GanSetup, adam, detector_spec, register_family, set_requires_grad
from darkside.gan.losses import generator_adv_loss, l1
from darkside.settings import setting


@dataclass(frozen=True)
class StudentSettings(EdgeGanSettings):
    """An edge family that also adapts a student detector to the translated nights (HED^N, RCF^N)."""

    student_lr: float = setting("Adam lr of the student (paper 1e-6)", ge=0)
    student_beta1: float = setting(ge=0, le=1)
    student_beta2: float = setting(ge=0, le=1)
    student_weight_decay: float = setting(ge=0)


@dataclass(frozen=True)
class HedNGanSettings(StudentSettings):
    student_lr_multipliers: bool = setting("HED's Caffe per-layer lr multipliers (gandtr: on)")


@register_family
class HedNGan(HedGan):
    name = "hedngan"
    title = "HED^N GAN"
    Settings = HedNGanSettings

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        specs = super().block_specs(setup)  # generator, discriminator, teacher: the student goes before the teacher
        return [*specs[:2], detector_spec(setup, "detector_student", "student"), *specs[2:]]

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        s, opts = self.settings, super().build_optimizers()
        # RCF^N's settings have no multipliers (RCF has no Caffe per-layer rates)
        groups = detector_param_groups(self.nets["detector_student"], s.student_lr, s.student_weight_decay,
                                       getattr(s, "student_lr_multipliers", False))
        opts["detector_student"] = adam(groups, s.student_lr, (s.student_beta1, s.student_beta2))
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
        loss_s = l1(stu(to_unit(day), logits=True), t_logits) + l1(stu(to_unit(fake.detach()), logits=True), t_logits)
        self.optimise(loss_s, "detector_student")
        set_requires_grad([stu], False)  # gradients flow through S into G, S itself stays put

        adv = generator_adv_loss(d(fake))
        edge = self.settings.edge_weight * l1(torch.sigmoid(stu(to_unit(fake), logits=True)),
                                              torch.sigmoid(t_logits))
        loss_g = adv + edge
        self.optimise(loss_g, "generator_X")
        return {"G": float(loss_g.detach()), "G_adv": float(adv.detach()), "edge": float(edge.detach()),
                "D": float(loss_d.detach()), "student": float(loss_s.detach())}
