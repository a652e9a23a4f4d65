"""The one interface every day->night generator offers to metric learning, and its registry.

Metric learning only ever needs ``translate``: a frozen generator turning a batch of RGB day
images in [0, 1] into night images of the same shape and range. Keeping the contract this small
lets a new generator family plug in by adding one loader to :data:`FAMILY_LOADERS` without
metric learning knowing anything about its architecture (and ``gan`` never imports ``embed``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from darkside.errors import DarksideError


@runtime_checkable
class Translator(Protocol):
    """A frozen day->night image translator (eval mode, no gradients)."""

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) RGB in [0, 1]."""
        ...


#: kind -> loader(checkpoint, device) -> Translator, for trained generator families.
#: The GAN engineers register their families here (``FAMILY_LOADERS["cyclegan"] = load_cyclegan``);
#: a loader receives the checkpoint path the family's training stage wrote.
FAMILY_LOADERS: dict[str, Callable[[Path, torch.device], Translator]] = {}

#: kinds that need no checkpoint (non-learned baselines)
BUILTIN_KINDS: tuple[str, ...] = ("lab-inversion",)


def register_family(kind: str, loader: Callable[[Path, torch.device], Translator]) -> None:
    """Register a trained generator family under ``kind`` (the name recipes use)."""
    if kind in BUILTIN_KINDS or kind == "none":
        raise DarksideError(f"generator kind {kind!r} is reserved")
    FAMILY_LOADERS[kind] = loader


def _import_families() -> None:
    """Importing ``darkside.gan.families`` registers the trained families (if that package exists)."""
    try:
        importlib.import_module("darkside.gan.families")
    except ModuleNotFoundError as exc:
        if exc.name != "darkside.gan.families":
            raise


def _check_batch(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise DarksideError(f"translate: expected a (B, 3, H, W) batch, got shape {tuple(images.shape)}")


def load_translator(kind: str | None, checkpoint: Path | None,
                    device: torch.device | str = "cpu") -> Translator:
    """The frozen translator of generator ``kind`` (a recipe's ``generator`` field).

    ``None`` means "no generator" and is handled by the caller, so neither ``None`` nor the
    string ``"none"`` is accepted here: asking for a translator that does nothing is a bug.
    """
    if kind is None or kind == "none":
        raise DarksideError("generator: 'none' has no translator (a recipe without generator uses None)")
    dev = torch.device(device)
    if kind == "lab-inversion":
        from darkside.gan.lab_inversion import LabInversion

        return LabInversion()
    if kind not in FAMILY_LOADERS:
        _import_families()
    loader = FAMILY_LOADERS.get(kind)
    if loader is None:
        known = sorted([*BUILTIN_KINDS, *FAMILY_LOADERS])
        raise DarksideError(f"generator: unknown kind {kind!r} (known: {', '.join(known)})")
    if checkpoint is None:
        raise DarksideError(f"generator: {kind!r} needs a trained checkpoint (none given)")
    if not Path(checkpoint).is_file():
        raise DarksideError(f"{checkpoint}: generator checkpoint does not exist")
    return loader(Path(checkpoint), dev)
