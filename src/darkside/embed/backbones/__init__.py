"""Backbone registry: one module per architecture family, each registering its architectures.

An :class:`Arch` builds the trunk (``(width, blocks) -> (trunk, output channels)``) and says where its
ImageNet weights are: cirtorch's Caffe-converted trunk (``imagenet-caffe``, downloaded to
``data/weights/<file>``) and torchvision's file in the local hub cache (``imagenet-torchvision``),
with the renaming of torchvision's classification keys to the trunk's. Adding an architecture: a
module here that calls :func:`register_arch` (or a module named in params.yaml's ``plugins``).

Weights (``BackboneSpec.init``):

``random``
    seeded He initialisation (torchvision's scheme), reproducible from ``seed`` alone;
``imagenet-caffe``
    cirtorch's Caffe-converted ImageNet trunk, a state dict of the Sequential trunk (``0.weight``,
    ``4.0.conv1.weight``...) read from ``spec.weights``;
``imagenet-torchvision``
    torchvision's own ImageNet weights from the local torch hub cache (never downloaded here);
``pretrained``
    a trunk state dict in cirtorch's layout written by ``darkside pretrain-backbone``: the mini
    preset's stand-in for ImageNet weights (see ``darkside.embed.pretrain``).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from darkside.config import BackboneSpec
from darkside.errors import DarksideError
from darkside.state import load_checked_state, read_state_file

log = logging.getLogger(__name__)

CIRTORCH_IMAGENET = "http://cmp.felk.cvut.cz/cnnimageretrieval/data/networks/imagenet/"


@dataclass(frozen=True)
class Arch:
    build: Callable[[float, tuple[int, ...] | None], tuple[nn.Sequential, int]]
    torchvision_file: str | None = None     # ImageNet V1 weights (cirtorch's era) in the torch hub cache
    caffe_url: str | None = None            # cirtorch's Caffe-converted trunk
    torchvision_keys: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None


#: arch name -> Arch, filled by the modules of this package (imported below) and by plugins
ARCHS: dict[str, Arch] = {}

INITS: tuple[str, ...] = ("random", "imagenet-caffe", "imagenet-torchvision", "pretrained")


def register_arch(name: str, arch: Arch) -> Arch:
    if name in ARCHS and ARCHS[name] is not arch:
        raise DarksideError(f"backbone arch {name!r} is registered twice")
    ARCHS[name] = arch
    return arch


def init_random(trunk: nn.Module, seed: int) -> None:
    """He (fan-out) normal convolutions, zero biases, unit BatchNorm, as torchvision does; seeded.

    Runs under a forked RNG so that building a network never perturbs the caller's random stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
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


def torchvision_weights_path(arch: str) -> Path:
    """Where torchvision's ImageNet weights of ``arch`` live in the local torch hub cache."""
    file = ARCHS[arch].torchvision_file
    if file is None:
        raise DarksideError(f"backbone arch {arch!r}: torchvision publishes no ImageNet weights for it")
    return Path(torch.hub.get_dir()) / "checkpoints" / file


def build_backbone(spec: BackboneSpec, seed: int = 0) -> tuple[nn.Sequential, int]:
    """Build the trunk described by ``spec``, initialise it, and return ``(trunk, output channels)``."""
    where = f"backbones.{spec.name}"
    if spec.arch not in ARCHS:
        raise DarksideError(f"{where}.arch: {spec.arch!r} is not one of {sorted(ARCHS)}")
    if spec.init not in INITS:
        raise DarksideError(f"{where}.init: {spec.init!r} is not one of {list(INITS)}")
    if not spec.width > 0:
        raise DarksideError(f"{where}.width: must be positive, got {spec.width}")
    with torch.random.fork_rng(devices=[]):
        # the layers' default initialisation draws from the global RNG too: keep it out of the caller's
        trunk, channels = ARCHS[spec.arch].build(spec.width, spec.blocks)
    init_random(trunk, seed)
    if spec.init in ("imagenet-caffe", "pretrained"):  # a trunk state dict in cirtorch's layout
        if not spec.weights:
            raise DarksideError(f"{where}.weights: init {spec.init!r} needs the weight file's path")
        path = Path(spec.weights)
        load_trunk_state(trunk, read_state_file(path, "backbone weight"), str(path))
        log.info("backbone %s: %s weights from %s", spec.name, spec.init, path)
    elif spec.init == "imagenet-torchvision":
        path = Path(spec.weights) if spec.weights else torchvision_weights_path(spec.arch)
        if not path.is_file():
            raise DarksideError(f"{path}: torchvision ImageNet weights not in the local torch hub cache "
                                "(no downloads here; place the file there or set weights:)")
        state = read_state_file(path, "backbone weight")
        convert = ARCHS[spec.arch].torchvision_keys
        if convert is not None and not set(state) & set(trunk.state_dict()):  # a classification net's keys
            state = convert(state)
        load_trunk_state(trunk, state, str(path))
        log.info("backbone %s: torchvision ImageNet weights from %s", spec.name, path)
    return trunk, channels


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
