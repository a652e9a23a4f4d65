"""ResNet trunks (cirtorch's ``features``: conv1, bn1, relu, maxpool, layer1..4 as one Sequential 0..7)."""

from __future__ import annotations

from torch import nn

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
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * expansion, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * expansion),
        )
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
    modules: list[nn.Module] = [
        nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(base),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ]
    inplanes = base
    for i, n in enumerate(blocks):
        stage, inplanes = _stage(block, inplanes, base * 2**i, int(n), 1 if i == 0 else 2)
        modules.append(stage)
    return nn.Sequential(*modules), inplanes
