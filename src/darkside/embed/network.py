"""The descriptor network (backbone trunk -> GeM -> L2) and its checkpoint file.

A checkpoint is a plain dict (``format``, ``spec``, ``meta``, ``extra``, ``state_dict``) that
``torch.load(..., weights_only=True)`` can read: no pickled classes, so a model file from an
untrusted source cannot run code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darkside.atomic import atomic_path
from darkside.config import BackboneSpec
from darkside.embed.backbones import build_backbone
from darkside.embed.pooling import L2N, GeM
from darkside.errors import DarksideError

#: inputs are RGB in [0, 1] normalised with ImageNet statistics (also for the Caffe weights, as cirtorch)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
MODEL_FORMAT = "darkside-embedding"
MODEL_VERSION = 1


def spec_to_dict(spec: BackboneSpec) -> dict[str, Any]:
    """A BackboneSpec as plain types (blocks as a list) for checkpoints and HDF5 attributes."""
    d = dataclasses.asdict(spec)
    d["blocks"] = list(spec.blocks) if spec.blocks is not None else None
    return d


def spec_from_dict(d: dict[str, Any]) -> BackboneSpec:
    """Inverse of :func:`spec_to_dict`."""
    return BackboneSpec(name=str(d["name"]), arch=str(d["arch"]), width=float(d["width"]),
                        blocks=tuple(int(b) for b in d["blocks"]) if d.get("blocks") is not None else None,
                        init=str(d["init"]), weights=d.get("weights"))


def min_input_side(trunk: nn.Module) -> int:
    """Smallest input side the trunk accepts: 2 ** (number of un-padded stride-2 max-pools).

    VGG16 (4 such pools after dropping the last) needs 16 px; ResNets (padded pools and
    convolutions) take any size. Multi-scale extraction uses it to leave out scales that a
    tiny image (a small query crop of the mini preset) cannot go through.
    """
    n = 0
    for m in trunk.modules():
        if isinstance(m, nn.MaxPool2d):
            pad = m.padding if isinstance(m.padding, int) else max(m.padding)
            if pad == 0:
                n += 1
    return 2**n


class EmbeddingNet(nn.Module):
    """Trunk -> GeM -> L2N: (B, 3, H, W) ImageNet-normalised images -> (B, dim) unit descriptors."""

    def __init__(self, backbone: nn.Sequential, dim: int, spec: BackboneSpec, p: float = 3.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = GeM(p=p, learnable=True)
        self.norm = L2N()
        self.dim = int(dim)
        self.spec = spec
        self.min_side = min_input_side(backbone)
        self.meta: dict[str, Any] = {
            "architecture": spec.arch, "backbone": spec_to_dict(spec), "pooling": "gem",
            "dim": self.dim, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
        }
        self.extra: dict[str, Any] = {}

    @property
    def gem_p(self) -> float:
        """The current GeM exponent (the multi-scale power mean uses it)."""
        return float(self.pool.p.detach().reshape(-1)[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.pool(self.backbone(x)))


def build_embedding_net(spec: BackboneSpec, seed: int = 0) -> EmbeddingNet:
    """The off-the-shelf network of ``spec`` (trunk initialised per ``spec.init``; GeM p = 3)."""
    trunk, dim = build_backbone(spec, seed=seed)
    return EmbeddingNet(trunk, dim, spec)


def freeze_batchnorm(net: nn.Module) -> nn.Module:
    """Put every BatchNorm layer in eval mode (frozen running statistics), as cirtorch trains.

    Call it after ``net.train()`` (which switches them back); tuples of 7 images make batch
    statistics meaningless.
    """
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return net


def parameter_groups(net: EmbeddingNet, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Optimizer groups: the backbone at (lr, weight_decay), GeM p at (10 x lr, no weight decay).

    The cirtorch convention gandtr keeps: p is one scalar that would barely move at the
    backbone's learning rate, and decaying it towards 0 would be meaningless.
    """
    pool_ids = {id(p) for p in net.pool.parameters()}
    backbone = [p for p in net.parameters() if p.requires_grad and id(p) not in pool_ids]
    groups: list[dict[str, Any]] = [{"params": backbone, "lr": lr, "weight_decay": weight_decay}]
    pool = [p for p in net.pool.parameters() if p.requires_grad]
    if pool:
        groups.append({"params": pool, "lr": lr * 10.0, "weight_decay": 0.0})
    return groups


def _check_plain(value: Any, where: str) -> None:
    """Reject anything ``weights_only`` loading would refuse (or that is not JSON-like)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise DarksideError(f"{where}: dictionary keys must be strings, got {k!r}")
            _check_plain(v, f"{where}.{k}")
        return
    if torch.is_tensor(value):
        return
    raise DarksideError(f"{where}: {type(value).__name__} is not a plain type "
                        "(str, number, list, dict, tensor)")


def save_model(net: EmbeddingNet, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Write ``net`` (spec, meta, ``extra``, state dict on the CPU) atomically; return the path."""
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    obj = {
        "format": MODEL_FORMAT, "version": MODEL_VERSION, "spec": spec_to_dict(net.spec),
        "meta": dict(net.meta), "extra": extra,
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


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


def load_model(path: str | os.PathLike[str]) -> EmbeddingNet:
    """Rebuild the network of a :func:`save_model` file (CPU, eval mode); ``.extra`` holds its extras."""
    obj = read_model_file(path)
    try:
        spec = spec_from_dict(obj["spec"])
    except (KeyError, TypeError, ValueError):
        raise DarksideError(f"{path}: model file has a malformed 'spec'") from None
    # the trunk's weights come from the state dict: do not require the original weight file
    net = build_embedding_net(dataclasses.replace(spec, init="random", weights=None))
    net.spec = spec
    net.meta["backbone"] = spec_to_dict(spec)
    try:
        net.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0]
        raise DarksideError(f"{path}: state dict does not fit the network ({reason})") from None
    net.extra = dict(obj.get("extra") or {})
    return net.eval()


def model_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the model's content (recorded in descriptor files to tie them to a checkpoint).

    Hashes the parameter names, dtypes, shapes and bytes plus the plain-typed metadata, not the file:
    ``torch.save`` writes a random serialization id into every file, so identical weights would
    otherwise hash differently from run to run.
    """
    obj = read_model_file(path)
    h = hashlib.sha256()
    for key in sorted(obj["state_dict"]):
        t = obj["state_dict"][key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    return h.hexdigest()


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a one-line error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise DarksideError(f"device: {name!r} requested but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DarksideError(f"device: {name!r} is not a torch device") from None
