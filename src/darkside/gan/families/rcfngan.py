"""RCF^N GAN: HED^N GAN with RCF as teacher and student, and plain Adam (RCF has no Caffe multipliers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from darkside.gan.families.hedngan import HedNGan, StudentSettings
from darkside.gan.family import register_family
from darkside.settings import setting


@dataclass(frozen=True)
class RcfNGanSettings(StudentSettings):
    detector: Literal["rcf"] = setting("the frozen edge detector (its settings: edges.detectors.rcf)",
                                       key_in="edges.detectors")


@register_family
class RcfNGan(HedNGan):
    name = "rcfngan"
    title = "RCF^N GAN"
    Settings = RcfNGanSettings
