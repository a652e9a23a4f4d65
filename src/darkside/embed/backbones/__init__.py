"""Backbone registry: one module per family, each mapping an arch name to ``(trunk, channels)``.

Weights (``BackboneSpec.init``):

``random``
    seeded He initialisation (torchvision's scheme), reproducible from ``seed`` alone;
``imagenet-caffe``
    cirtorch's Caffe-converted ImageNet trunk (``imagenet-caffe-vgg16-features-d369c8e.pth``...),
    a state dict of the Sequential trunk (``0.weight``, ``4.0.conv1.weight``...) read from
    ``spec.weights``;
``imagenet-torchvision``
    torchvision's own ImageNet weights from the local torch hub cache (never downloaded here);
``pretrained``
    a trunk state dict in cirtorch's layout written by ``darkside pretrain-backbone``: the mini
    preset's stand-in for ImageNet weights (see ``darkside.embed.pretrain``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from darkside.config import BackboneSpec
from darkside.embed.backbones.resnet import build_resnet
from darkside.embed.backbones.vgg import build_vgg
from darkside.errors import DarksideError
from darkside.state import load_checked_state, read_state_file

log = logging.getLogger(__name__)

#: arch -> builder(arch, width, blocks) -> (trunk, output channels). Add a family: one module + one entry.
BACKBONES: dict[str, Callable[..., tuple[nn.Sequential, int]]] = {
    "vgg16": build_vgg,
    "resnet18": build_resnet,
    "resnet50": build_resnet,
    "resnet101": build_resnet,
}

INITS: tuple[str, ...] = ("random", "imagenet-caffe", "imagenet-torchvision", "pretrained")

#: torchvision weight files (ImageNet V1, the ones cirtorch's era used), looked up in the hub cache
TORCHVISION_FILES: dict[str, str] = {
    "vgg16": "vgg16-397923af.pth",
    "resnet18": "resnet18-f37072fd.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
}

# torchvision ResNet child name -> index in the trunk Sequential (cirtorch's children()[:-2])
_RESNET_CHILDREN = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def init_random(trunk: nn.Module, seed: int) -> None:
    """He (fan-out) normal convolutions, zero biases, unit BatchNorm, as torchvision does; seeded.

    Runs under a forked RNG so that building a network never perturbs the caller's random stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _he_init(trunk)


def _he_init(trunk: nn.Module) -> None:
    for m in trunk.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def load_trunk_state(trunk: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``trunk`` with strict key/shape checks and a one-line error naming ``source``.

    ``num_batches_tracked`` buffers may be absent: the Caffe conversions predate them.
    """
    load_checked_state(trunk, state, source, optional_suffixes=("num_batches_tracked",), target="the backbone")


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    return read_state_file(path, "backbone weight")


def torchvision_to_trunk_keys(arch: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a torchvision classification state dict to the trunk's keys; drop the classifier."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if arch.startswith("vgg"):
            m = re.match(r"features\.(.+)$", k)
            if m:
                out[m.group(1)] = v
        else:
            head, _, rest = k.partition(".")
            if head in _RESNET_CHILDREN:
                out[f"{_RESNET_CHILDREN[head]}.{rest}"] = v
    return out


def torchvision_weights_path(arch: str) -> Path:
    """Where torchvision's ImageNet weights of ``arch`` live in the local torch hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILES[arch]


def build_backbone(spec: BackboneSpec, seed: int = 0) -> tuple[nn.Sequential, int]:
    """Build the trunk described by ``spec``, initialise it, and return ``(trunk, output channels)``."""
    where = f"backbones.{spec.name}"
    if spec.arch not in BACKBONES:
        raise DarksideError(f"{where}.arch: {spec.arch!r} is not one of {sorted(BACKBONES)}")
    if spec.init not in INITS:
        raise DarksideError(f"{where}.init: {spec.init!r} is not one of {list(INITS)}")
    if not spec.width > 0:
        raise DarksideError(f"{where}.width: must be positive, got {spec.width}")
    with torch.random.fork_rng(devices=[]):
        # the layers' default initialisation draws from the global RNG too: keep it out of the caller's
        trunk, channels = BACKBONES[spec.arch](spec.arch, spec.width, spec.blocks)
    init_random(trunk, seed)
    if spec.init in ("imagenet-caffe", "pretrained"):
        # `pretrained`: a trunk state dict in the same layout, written by `darkside pretrain-backbone`
        # (the mini preset's stand-in for ImageNet weights)
        if not spec.weights:
            raise DarksideError(f"{where}.weights: init {spec.init!r} needs the weight file's path")
        path = Path(spec.weights)
        load_trunk_state(trunk, _read_state(path), str(path))
        log.info("backbone %s: %s weights from %s", spec.name, spec.init, path)
    elif spec.init == "imagenet-torchvision":
        path = Path(spec.weights) if spec.weights else torchvision_weights_path(spec.arch)
        if not path.is_file():
            raise DarksideError(f"{path}: torchvision ImageNet weights not in the local torch hub cache "
                                "(no downloads here; place the file there or set weights:)")
        state = _read_state(path)
        if any(k.startswith(("features.", "conv1.")) for k in state):  # a classification net's keys
            state = torchvision_to_trunk_keys(spec.arch, state)
        load_trunk_state(trunk, state, str(path))
        log.info("backbone %s: torchvision ImageNet weights from %s", spec.name, path)
    return trunk, channels
