"""VGG16 conv trunk (cirtorch's ``features``: torchvision's VGG16 conv part minus the last max-pool)."""

from __future__ import annotations

from torch import nn

from darkside.embed.backbones.blocks import VGG_CFGS, make_vgg_layers
from darkside.errors import DarksideError


def scaled_cfg(arch: str, width: float) -> list[int | str]:
    """torchvision's layer list with every channel count scaled by ``width`` (at least 1 channel)."""
    if arch not in VGG_CFGS:
        raise DarksideError(f"backbone arch {arch!r}: not a VGG architecture (known: {sorted(VGG_CFGS)})")
    return [v if v == "M" else max(1, round(int(v) * width)) for v in VGG_CFGS[arch]]


def build_vgg(arch: str, width: float = 1.0,
              blocks: tuple[int, ...] | None = None) -> tuple[nn.Sequential, int]:
    """The VGG trunk ending in its last ReLU, and its output channels.

    Dropping the final max-pool (as cirtorch does) keeps twice the spatial resolution for GeM;
    the module indices then match cirtorch's and the Caffe-converted weight file's keys.
    """
    if blocks is not None:
        raise DarksideError(f"backbone arch {arch!r}: 'blocks' applies to ResNets only; use null")
    cfg = scaled_cfg(arch, width)
    layers = make_vgg_layers(cfg)
    trunk = nn.Sequential(*list(layers.children())[:-1])
    out = next(v for v in reversed(cfg) if v != "M")
    return trunk, int(out)
