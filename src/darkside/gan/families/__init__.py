"""Registry of generator families: name -> :class:`GanBundle` subclass, plus their translator loaders.

Adding a family = one module with a GanBundle subclass + one entry here + its params entry.
"""

from __future__ import annotations

from pathlib import Path

import torch

from darkside.errors import ConfigError
from darkside.gan.families.base import (
    CYCLEGAN_OFFICIAL,
    GanBundle,
    GanSettings,
    GeneratorTranslator,
    load_generator,
    save_generator,
    settings_for,
)
from darkside.gan.families.cyclegan import CycleGan
from darkside.gan.families.hedgan import HedGan
from darkside.gan.families.hedngan import HedNGan
from darkside.gan.families.rcfngan import RcfNGan
from darkside.gan.translator import register_family

FAMILIES: dict[str, type[GanBundle]] = {c.family: c for c in (CycleGan, HedGan, HedNGan, RcfNGan)}

__all__ = ["CYCLEGAN_OFFICIAL", "FAMILIES", "GanBundle", "GanSettings", "GeneratorTranslator", "build",
           "family_class", "load_generator", "save_generator", "settings_for"]


def family_class(name: str) -> type[GanBundle]:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"gan family {name!r} is not one of {sorted(FAMILIES)}") from None


def build(settings: GanSettings, device: torch.device | str = "cpu", seed: int = 0) -> GanBundle:
    """All networks, optimisers and pools of ``settings.family``, deterministic in ``seed``."""
    return family_class(settings.family)(settings, device, seed)


def _register_loaders() -> None:
    """Register one loader per family in translator.FAMILY_LOADERS (owned by gan/translator.py).

    All families here save the same generator file, so they share :func:`load_generator`.
    """
    for name in FAMILIES:
        register_family(name, lambda path, device: load_generator(Path(path), device))


_register_loaders()
