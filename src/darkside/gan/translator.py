"""The one interface every day->night generator offers to metric learning, and where they come from.

Metric learning only ever needs ``translate``: a frozen generator turning a batch of RGB day
images in [0, 1] into night images of the same shape and range. A recipe's ``generator`` names a
translator: a built-in one that needs no checkpoint (:data:`BUILTIN`, e.g. LAB inversion: one
module each) or a trained generator family (:mod:`darkside.gan.families`), whose checkpoint
rebuilds itself. Metric learning knows nothing about their architectures (``gan`` never imports
``embed``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from darkside.data.images import load_rgb
from darkside.data.manifest import Manifest
from darkside.errors import DarksideError


@runtime_checkable
class Translator(Protocol):
    """A frozen day->night image translator (eval mode, no gradients)."""

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) RGB in [0, 1]."""
        ...


@runtime_checkable
class ViewTranslator(Protocol):
    """A translator that must know WHICH training view it translates (the benchmark's own renderer,
    :mod:`darkside.gan.oracle`): it returns that view's night, not a function of the pixels."""

    def translate_view(self, manifest: Manifest, image_id: str, max_side: int) -> np.ndarray:
        """RGB float32 (H, W, 3) in [0, 1] of ``image_id``'s night at ``max_side``."""
        ...


#: translators without weights: name -> "module:class" (darkside.recipes.BUILTIN_TRANSLATORS names them too;
#: a test keeps the two equal, since recipes must be known where torch is not imported)
BUILTIN: dict[str, str] = {"lab-inversion": "darkside.gan.lab_inversion:LabInversion",
                           "oracle": "darkside.gan.oracle:RenderedNight"}


def translate_image(translator: Translator, path: str | Path) -> Image.Image:
    """The image file at ``path`` through ``translator`` at its own resolution, as an RGB image."""
    x = torch.from_numpy(np.asarray(load_rgb(path), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    y = translator.translate(x)[0].clamp(0.0, 1.0)
    return Image.fromarray((y.permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8))


def check_batch(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise DarksideError(f"translate: expected a (B, 3, H, W) batch, got shape {tuple(images.shape)}")


def load_translator(kind: str | None, checkpoint: Path | None,
                    device: torch.device | str = "cpu") -> Translator | ViewTranslator:
    """The frozen translator of generator ``kind`` (a recipe's ``generator`` field).

    ``None`` means "no generator" and is handled by the caller: asking for a translator that does
    nothing is a bug.
    """
    if kind is None:
        raise DarksideError("generator: a recipe without generator has no translator")
    if kind in BUILTIN:
        module, name = BUILTIN[kind].split(":")
        return getattr(importlib.import_module(module), name)()
    from darkside.gan.family import family_settings, load_generator
    from darkside.gan.published import published_name

    families = family_settings()  # imports every built-in family
    # a family's own generator file, or one imported under the published name ``kind`` (gan.published)
    if kind not in families and (checkpoint is None or not Path(checkpoint).is_file()
                                 or published_name(checkpoint) != kind):
        known = sorted([*BUILTIN, *families])
        raise DarksideError(f"generator: unknown kind {kind!r} (known: {', '.join(known)}, or the name a published "
                            f"generator was imported under)")
    if checkpoint is None:
        raise DarksideError(f"generator: {kind!r} needs a trained checkpoint (none given)")
    if not Path(checkpoint).is_file():
        raise DarksideError(f"{checkpoint}: generator checkpoint does not exist")
    return load_generator(Path(checkpoint), torch.device(device))


def load_night_to_day(checkpoint: Path, device: torch.device | str = "cpu") -> Translator:
    """The night->day generator of a two-way family's generator file (translation at test time, the paper's
    section 4.2 discussion of ToDayGAN): RGB in [0, 1] -> RGB in [0, 1], eval mode."""
    from darkside.gan.family import load_generator

    if not Path(checkpoint).is_file():
        raise DarksideError(f"{checkpoint}: generator checkpoint does not exist")
    return load_generator(Path(checkpoint), torch.device(device), night_to_day=True)
