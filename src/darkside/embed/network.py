"""The descriptor network (optional stem -> backbone trunk -> pooling head -> L2) and its checkpoint file.

Which stem and head a network has is its module's business (:mod:`darkside.embed.networks`); the model
file records the network's name and settings (``meta.network``; absent: GeM) and :func:`load_model`
rebuilds it from them.

A checkpoint is a plain dict (``format``, ``spec``, ``meta``, ``preprocessing``, ``extra``,
``state_dict``) that ``torch.load(..., weights_only=True)`` can read: no pickled classes, so a model
file from an untrusted source cannot run code. ``preprocessing`` is how the model's images are
prepared (CLAHE with its clip limit and grid, or none): the model file is the authority, so
whitening and extraction read it there and nobody re-derives it from a recipe name.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darkside.config import BackboneSpec
from darkside.embed.backbones import build_backbone
from darkside.embed.pooling import L2N, GeM
from darkside.errors import DarksideError
from darkside.settings import to_plain
from darkside.state import save_torch

#: inputs are RGB in [0, 1] normalised with ImageNet statistics (also for the Caffe weights, as cirtorch)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
MODEL_FORMAT = "darkside-embedding"
MODEL_VERSION = 2  # 2: the model records its preprocessing


def spec_to_dict(spec: BackboneSpec) -> dict[str, Any]:
    """A BackboneSpec as plain types (blocks as a list) for checkpoints and HDF5 attributes."""
    return to_plain(spec)


def spec_from_dict(d: dict[str, Any]) -> BackboneSpec:
    """Inverse of :func:`spec_to_dict`."""
    return BackboneSpec(arch=str(d["arch"]), width=float(d["width"]),
                        blocks=tuple(int(b) for b in d["blocks"]) if d.get("blocks") is not None else None,
                        init=str(d["init"]), weights=d.get("weights"), name=str(d["name"]))


def min_input_side(trunk: nn.Module) -> int:
    """Smallest input side the trunk accepts: 2 ** (number of un-padded stride-2 max-pools).

    VGG16 (4 such pools after dropping the last) needs 16 px; ResNets (padded pools and
    convolutions) take any size. Multi-scale extraction uses it to leave out scales that a
    tiny image (a small query crop of the mini preset) cannot go through.
    """
    return 2 ** sum(1 for m in trunk.modules() if isinstance(m, nn.MaxPool2d)
                    and (m.padding if isinstance(m.padding, int) else max(m.padding)) == 0)


class EmbeddingNet(nn.Module):
    """[stem ->] trunk -> pooling head -> L2N: (B, 3, H, W) ImageNet-normalised images -> (B, dim) unit descriptors.

    ``pool`` maps the trunk's (B, channels, h, w) activations to (B, dim); GeM (p = ``p``, learnable) unless
    given. Its ``multiscale_p`` attribute, where it has one, is the power mean that combines scales at test
    time (GeM: its own p). ``stem`` maps the input images to what the trunk reads (its first convolution
    adapted to the stem's channels by the network's builder).
    """

    def __init__(self, backbone: nn.Sequential, dim: int, spec: BackboneSpec, p: float = 3.0, *,
                 pool: nn.Module | None = None, stem: nn.Module | None = None,
                 channels: int | None = None) -> None:
        super().__init__()
        self.stem = stem
        self.backbone = backbone
        self.pool = pool if pool is not None else GeM(p=p, learnable=True)
        self.norm = L2N()
        self.dim = int(dim)
        self.channels = int(dim if channels is None else channels)  # the trunk's output channels
        self.spec = spec
        self.min_side = min_input_side(backbone)
        self.meta: dict[str, Any] = {
            "architecture": spec.arch, "backbone": spec_to_dict(spec), "pooling": type(self.pool).__name__.lower(),
            "dim": self.dim, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "network": {"name": "gem", "settings": {}},
        }
        self.extra: dict[str, Any] = {}
        #: ``{"clahe": {"clip_limit", "grid"} | None}``; fine-tuning sets it from the recipe
        self.preprocessing: dict[str, Any] = {"clahe": None}
        # channels-last convolutions: on the CPU 1.5-3.7x faster inference and 1.1-1.3x faster training for
        # the mini trunks (benchmarks/bench_channels_last.py); on a GPU the layout mixed precision prefers
        self.to(memory_format=torch.channels_last)

    @property
    def network_name(self) -> str:
        return str(self.meta["network"]["name"])

    @property
    def gem_p(self) -> float:
        """The current GeM exponent (the multi-scale power mean uses it)."""
        return float(self.pool.p.detach().reshape(-1)[0])

    @property
    def multiscale_p(self) -> float:
        """The power mean that combines a descriptor's scales: the head's ``multiscale_p``, else GeM's p."""
        p = getattr(self.pool, "multiscale_p", None)
        return self.gem_p if p is None else float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            x = self.stem(x)
        return self.norm(self.pool(self.backbone(x.contiguous(memory_format=torch.channels_last))))


def build_embedding_net(spec: BackboneSpec, seed: int = 0) -> EmbeddingNet:
    """The off-the-shelf network of ``spec`` (trunk initialised per ``spec.init``; GeM p = 3)."""
    from darkside.embed import networks

    trunk, dim = build_backbone(spec, seed=seed)
    name = networks.DEFAULT_NETWORK
    return networks.build_network(name, networks.parse_network_settings(name, None, name), trunk, dim, spec)


def freeze_batchnorm(net: nn.Module) -> nn.Module:
    """Put every BatchNorm layer in eval mode (frozen running statistics), as cirtorch trains.

    Call it after ``net.train()`` (which switches them back); tuples of 7 images make batch
    statistics meaningless.
    """
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return net


def _check_plain(value: Any, where: str) -> None:
    """Reject anything ``weights_only`` loading would refuse (or that is not JSON-like)."""
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise DarksideError(f"{where}: dictionary keys must be strings, got {k!r}")
            _check_plain(v, f"{where}.{k}")
    elif not (value is None or isinstance(value, (str, bool, int, float)) or torch.is_tensor(value)):
        raise DarksideError(f"{where}: {type(value).__name__} is not a plain type (str, number, list, dict, tensor)")


def save_model(net: EmbeddingNet, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Write ``net`` (spec, meta, ``extra``, state dict on the CPU) atomically; return the path."""
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    _check_plain(net.preprocessing, "preprocessing")
    return save_torch(path, {
        "format": MODEL_FORMAT, "version": MODEL_VERSION, "spec": spec_to_dict(net.spec),
        "meta": dict(net.meta), "preprocessing": dict(net.preprocessing), "extra": extra,
        # contiguous: the file holds plain row-major tensors whatever layout the network computes in
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
    })


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw checkpoint dict of :func:`save_model`, checked; one-line errors naming the file."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: model file does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip / unpickling errors of many types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DarksideError(f"{p}: corrupt or unreadable model file ({reason})") from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT or "state_dict" not in obj:
        raise DarksideError(f"{p}: not a darkside embedding model file")
    if obj.get("version") != MODEL_VERSION:
        raise DarksideError(f"{p}: model file version {obj.get('version')!r}, expected {MODEL_VERSION}")
    return obj


def _rebuild(obj: dict[str, Any], spec: BackboneSpec, path: str | os.PathLike[str]) -> EmbeddingNet:
    """The network a model file records (``meta.network``; files without it hold GeM networks)."""
    from darkside.embed import networks

    record = (obj.get("meta") or {}).get("network") or {"name": networks.DEFAULT_NETWORK, "settings": {}}
    try:
        name, raw = str(record["name"]), dict(record["settings"])
    except (KeyError, TypeError, ValueError):
        raise DarksideError(f"{path}: model file has a malformed 'meta.network'") from None
    settings = networks.parse_network_settings(name, raw, f"{path}: meta.network.settings")
    trunk, channels = build_backbone(spec)
    return networks.build_network(name, settings, trunk, channels, spec)


def load_model(path: str | os.PathLike[str]) -> EmbeddingNet:
    """Rebuild the network of a :func:`save_model` file (CPU, eval mode); ``.extra`` holds its extras."""
    obj = read_model_file(path)
    try:
        spec = spec_from_dict(obj["spec"])
    except (KeyError, TypeError, ValueError):
        raise DarksideError(f"{path}: model file has a malformed 'spec'") from None
    # the trunk's weights come from the state dict: do not require the original weight file
    net = _rebuild(obj, dataclasses.replace(spec, init="random", weights=None), path)
    net.spec = spec
    net.meta["backbone"] = spec_to_dict(spec)
    try:
        net.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0]
        raise DarksideError(f"{path}: state dict does not fit the network ({reason})") from None
    net.extra = dict(obj.get("extra") or {})
    net.preprocessing = dict(obj["preprocessing"])
    return net.eval()
