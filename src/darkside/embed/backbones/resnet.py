"""ResNet trunks (cirtorch's ``features``: conv1, bn1, relu, maxpool, layer1..4 as one Sequential 0..7)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import torch
from torch import nn

from darkside.embed.backbones import CIRTORCH_IMAGENET, Arch, register_arch
from darkside.embed.backbones.blocks import BasicBlock, Bottleneck
from darkside.errors import DarksideError

#: block type and blocks per stage of each architecture (torchvision / He et al.)
ARCHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}


def _stage(block: type[nn.Module], inplanes: int, planes: int, n: int,
           stride: int) -> tuple[nn.Sequential, int]:
    """One stage, laid out like torchvision's ``_make_layer`` (so state-dict keys match)."""
    expansion = block.expansion  # type: ignore[attr-defined]
    downsample = None
    if stride != 1 or inplanes != planes * expansion:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * expansion, kernel_size=1, stride=stride, bias=False),
                                   nn.BatchNorm2d(planes * expansion))
    layers = [block(inplanes, planes, stride, downsample)]
    inplanes = planes * expansion
    layers += [block(inplanes, planes) for _ in range(1, n)]
    return nn.Sequential(*layers), inplanes


def build_resnet(arch: str, width: float = 1.0,
                 blocks: tuple[int, ...] | None = None) -> tuple[nn.Sequential, int]:
    """The ResNet trunk (to layer4, ending in a ReLU) and its output channels.

    ``width`` scales the base width 64 (and so every stage: 64, 128, 256, 512 x expansion);
    ``blocks`` overrides the blocks per stage (4 values) for the scaled-down mini preset.
    torchvision's ResNet class hard-codes 64 input planes, hence the trunk is assembled here
    from blocks identical to torchvision's BasicBlock / Bottleneck.
    """
    if arch not in ARCHS:
        raise DarksideError(f"backbone arch {arch!r}: not a ResNet architecture (known: {sorted(ARCHS)})")
    block, default_blocks = ARCHS[arch]
    blocks = tuple(default_blocks if blocks is None else blocks)
    if len(blocks) != 4 or any(int(b) < 1 for b in blocks):
        raise DarksideError(f"backbone arch {arch!r}: blocks must be 4 positive integers, got {list(blocks)}")
    base = max(1, round(64 * width))
    modules: list[nn.Module] = [nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False),
                                nn.BatchNorm2d(base), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]
    inplanes = base
    for i, n in enumerate(blocks):
        stage, inplanes = _stage(block, inplanes, base * 2**i, int(n), 1 if i == 0 else 2)
        modules.append(stage)
    return nn.Sequential(*modules), inplanes


# torchvision ResNet child name -> index in the trunk Sequential (cirtorch's children()[:-2])
_CHILDREN = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def torchvision_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's ResNet classification keys as the trunk's; ``fc`` dropped."""
    out = {}
    for k, v in state.items():
        head, _, rest = k.partition(".")
        if head in _CHILDREN:
            out[f"{_CHILDREN[head]}.{rest}"] = v
    return out


for _name, _file, _caffe in (("resnet18", "resnet18-f37072fd.pth", None),
                             ("resnet50", "resnet50-0676ba61.pth", "imagenet-caffe-resnet50-features-ac468af.pth"),
                             ("resnet101", "resnet101-63fe2227.pth", "imagenet-caffe-resnet101-features-10a101d.pth")):
    register_arch(_name, Arch(partial(build_resnet, _name), _file, _caffe and CIRTORCH_IMAGENET + _caffe,
                              torchvision_keys))
