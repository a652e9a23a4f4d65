"""VGG16 conv trunk (cirtorch's ``features``: torchvision's VGG16 conv part minus the last max-pool)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial

import torch
from torch import nn

from darkside.embed.backbones import CIRTORCH_IMAGENET, Arch, register_arch
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
    ``blocks`` (5 values) overrides the number of 3x3 convs per stage (VGG16: 2, 2, 3, 3, 3): the
    mini preset trains from random initialisation, where a shallower trunk of the same design
    learns within a CPU minute.
    """
    cfg = scaled_cfg(arch, width)
    if blocks is not None:
        if len(blocks) != 5 or any(int(b) < 1 for b in blocks):
            raise DarksideError(f"backbone arch {arch!r}: blocks must be 5 positive integers, got {list(blocks)}")
        firsts = [v for k, v in enumerate(cfg) if v != "M" and (k == 0 or cfg[k - 1] == "M")]  # of each stage
        cfg = [v for first, n in zip(firsts, blocks, strict=True) for v in [first] * int(n) + ["M"]]
    layers = make_vgg_layers(cfg)
    trunk = nn.Sequential(*list(layers.children())[:-1])
    out = next(v for v in reversed(cfg) if v != "M")
    return trunk, int(out)


def torchvision_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's VGG classification keys (``features.N.*``) as the trunk's (``N.*``); the classifier dropped."""
    return {m.group(1): v for k, v in state.items() if (m := re.match(r"features\.(.+)$", k))}


register_arch("vgg16", Arch(partial(build_vgg, "vgg16"), "vgg16-397923af.pth",
                            CIRTORCH_IMAGENET + "imagenet-caffe-vgg16-features-d369c8e.pth", torchvision_keys))
