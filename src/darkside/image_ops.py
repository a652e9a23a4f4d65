"""Float-image operations on (..., 3, H, W) tensors in [0, 1]: DaCo's SimCLR views and MDUIT's colour jitter.

They give torchvision's results (``tests/test_image_ops.py`` compares them with ``torchvision.transforms.functional``
bit for bit), restated because importing torchvision pulls in ``torch._dynamo``: about 2 s of start-up for
every DaCo job, which reads nothing else of it. A module of its own beside the subpackages, since ``embed`` and
``gan`` both use it and neither may import the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from darkside.data.images import load_rgb

# ITU-R 601-2 luma, the weights torchvision's rgb_to_grayscale uses
_LUMA = (0.2989, 0.587, 0.114)


def image_tensor(path: str | Path) -> torch.Tensor:
    """The image file as a float (3, H, W) tensor in [0, 1]."""
    rgb = np.asarray(load_rgb(path), dtype=np.uint8)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)


def grey(x: torch.Tensor, channels: int = 1) -> torch.Tensor:
    """Luma of RGB images, (..., channels, H, W)."""
    r, g, b = x.unbind(dim=-3)
    y = (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(dim=-3)
    return y.expand(x.shape) if channels == 3 else y


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Antialiased bilinear resize of a (3, H, W) or (B, 3, H, W) tensor to ``size`` (h, w)."""
    batched = x.unsqueeze(0) if x.dim() == 3 else x
    out = F.interpolate(batched, size=[int(s) for s in size], mode="bilinear", align_corners=False, antialias=True)
    return out[0] if x.dim() == 3 else out


def resize_short_side(x: torch.Tensor, short: int) -> torch.Tensor:
    """Resize so that the shorter side is ``short``, the longer one scaled with it (truncated, as torchvision)."""
    h, w = x.shape[-2:]
    size = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
    return x if (h, w) == size else resize(x, size)


def resized_crop(x: torch.Tensor, top: int, left: int, height: int, width: int, size: Sequence[int]) -> torch.Tensor:
    """The box (top, left, height, width) of a (3, H, W) image, resized to ``size``; the box lies inside the image."""
    return resize(x[..., top:top + height, left:left + width], size)


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x - mean) / std per channel."""
    m = torch.as_tensor(mean, dtype=x.dtype).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype).view(-1, 1, 1)
    return (x - m) / s


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """HSV of RGB images (..., 3, H, W), each channel in [0, 1]; hue in turns."""
    r, g, b = x.unbind(dim=-3)
    maxc = torch.max(x, dim=-3).values
    minc = torch.min(x, dim=-3).values
    grey_pixel = maxc == minc
    chroma = maxc - minc
    ones = torch.ones_like(maxc)
    sat = chroma / torch.where(grey_pixel, ones, maxc)
    # where chroma is 0 the hue is 0: divide by 1 there, and every term below vanishes
    chroma_safe = torch.where(grey_pixel, ones, chroma)
    rc = (maxc - r) / chroma_safe
    gc = (maxc - g) / chroma_safe
    bc = (maxc - b) / chroma_safe
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((h, sat, maxc), dim=-3)
