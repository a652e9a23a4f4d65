"""RCF^N GAN: HED^N GAN with RCF as teacher and student (plain Adam, no per-layer multipliers)."""

from __future__ import annotations

import torch

from darkside.errors import ConfigError
from darkside.gan.families.base import GanSettings
from darkside.gan.families.hedngan import HedNGan


class RcfNGan(HedNGan):
    family = "rcfngan"

    def __init__(self, settings: GanSettings, device: torch.device | str = "cpu", seed: int = 0) -> None:
        if settings.detector != "rcf":
            raise ConfigError(f"gan.families.rcfngan.detector: must be 'rcf', got {settings.detector!r}")
        super().__init__(settings, device, seed)
