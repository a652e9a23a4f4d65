"""Photometric preprocessing: CLAHE on L* (gandtr's ``C``), the LAB lightness inversion baseline, resizing.

numpy / OpenCV / PIL only (the data layer knows no models).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from darkside.errors import DarksideError


@dataclass(frozen=True)
class ClaheSettings:
    """CLAHE on the Lab lightness: off for the plain ``GeM`` recipe, clip 1.0 and 8x8 tiles otherwise."""

    enabled: bool
    clip_limit: float = 1.0
    grid: int = 8

    @classmethod
    def of(cls, recorded: Mapping[str, Any] | None) -> ClaheSettings:
        """From what a model file records (``{"clip_limit", "grid"}``, or None for no CLAHE)."""
        if recorded is None:
            return cls(False)
        return cls(True, float(recorded["clip_limit"]), int(recorded["grid"]))

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """CLAHE if enabled, else the input unchanged."""
        return clahe(rgb, self.clip_limit, self.grid) if self.enabled else rgb


def _as_float_rgb(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3:
        raise DarksideError(f"photometric: expected an HxWx3 RGB array, got shape {a.shape}")
    # OpenCV's float Lab conversion takes float32 only
    return np.ascontiguousarray(a, dtype=np.float32)


def clahe(rgb: np.ndarray, clip: float = 1.0, grid: int | tuple[int, int] = (8, 8)) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of L* (float32 RGB in [0, 1] -> same).

    Follows gandtr bit for bit: OpenCV Lab of float32 RGB (L in [0, 100]); L/100*255 made
    uint8 by truncation (``astype``, not rounding: this shifts results by up to one level, and
    the released models were trained with it); OpenCV CLAHE; /255*100 back into L; Lab -> RGB
    with no explicit clip (OpenCV's float conversion itself saturates to [0, 1]).
    """
    lab = cv2.cvtColor(_as_float_rgb(rgb), cv2.COLOR_RGB2Lab)
    lightness = (lab[:, :, 0] / 100.0 * 255.0).astype(np.uint8)
    tiles = (int(grid), int(grid)) if isinstance(grid, (int, np.integer)) else (int(grid[0]), int(grid[1]))
    eq = cv2.createCLAHE(clipLimit=float(clip), tileGridSize=tiles).apply(lightness)
    lab[:, :, 0] = eq.astype(np.float32) / 255.0 * 100.0
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


def invert_lightness(rgb: np.ndarray) -> np.ndarray:
    """The paper's LAB-inversion baseline: L* -> 100 - L* (a*, b* kept); float32 RGB in [0, 1].

    Colours whose inverted lightness leaves the sRGB gamut are saturated by OpenCV, so the
    inversion is an involution only for colours that stay in gamut (near-greys)."""
    lab = cv2.cvtColor(_as_float_rgb(rgb), cv2.COLOR_RGB2Lab)
    lab[:, :, 0] = 100.0 - lab[:, :, 0]
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


def resize_max_side(img: Image.Image, max_side: float) -> Image.Image:
    """PIL thumbnail semantics (cirtorch's ``imresize``): shrink so the longer side is at most
    ``floor(max_side)``, aspect kept, Lanczos; never enlarge. Returns a new image."""
    size = math.floor(max_side)
    if size < 1:
        raise DarksideError(f"resize_max_side: max_side must be >= 1, got {max_side}")
    out = img.copy()
    out.thumbnail((size, size), Image.Resampling.LANCZOS)
    return out


def pil_to_float(img: Image.Image) -> np.ndarray:
    """RGB PIL image -> float32 HxWx3 array in [0, 1] (what ``torchvision.ToTensor`` computes)."""
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
