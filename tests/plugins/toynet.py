"""A backbone from outside the package, in one module: a two-convolution trunk, registered as ``toynet``."""

from __future__ import annotations

from torch import nn

from darkside.embed.backbones import Arch, register_arch


def build_toynet(width: float = 1.0, blocks: tuple[int, ...] | None = None) -> tuple[nn.Sequential, int]:
    """(trunk, output channels): conv-BN-ReLU, a stride-2 conv, ReLU; ``width`` scales the channels."""
    c = max(1, round(16 * width))
    return nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                         nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(inplace=True)), 2 * c


register_arch("toynet", Arch(build_toynet))
