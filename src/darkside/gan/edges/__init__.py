"""Edge detectors used by the edge-consistency GAN family: HED and RCF.

Both take RGB images in [0, 1] and return fused edge maps at the input size (sigmoid
probabilities, or logits with ``logits=True``). Published weights are downloaded at run time and
loaded through :func:`load_detector`; nothing here ships weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges.hed import HED, hed_param_groups, hed_state_from_published
from darkside.gan.edges.rcf import RCF, rcf_state_from_published
from darkside.state import load_checked_state

DETECTORS = ("hed", "rcf")

__all__ = ["DETECTORS", "HED", "RCF", "build_detector", "detector_param_groups", "load_detector",
           "unwrap_state"]


def build_detector(kind: str, width: float = 1.0, input_mode: str = "caffe255") -> nn.Module:
    """An untrained detector of ``kind`` ('hed' or 'rcf') with channel widths scaled by ``width``."""
    if kind == "hed":
        return HED(width=width, input_mode=input_mode)
    if kind == "rcf":
        return RCF(width=width, input_mode=input_mode)
    raise ConfigError(f"gan.detector: {kind!r} is not one of {list(DETECTORS)}")


def unwrap_state(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The tensor mapping inside a saved checkpoint: accepts a bare state dict or one wrapped under
    'state_dict' / 'model', and strips a DataParallel 'module.' prefix."""
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DarksideError(f"{source}: not a state dict of tensors")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_detector(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Load a published state dict (any supported key layout) into ``model``; one-line errors."""
    state = unwrap_state(state, source)
    convert = hed_state_from_published if isinstance(model, HED) else rcf_state_from_published
    state = convert(state)
    load_checked_state(model, state, source)
    return model


def load_detector_file(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights from a ``.pth`` file (tensors only, no pickled code)."""
    p = Path(path)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True) if p.is_file() else None
    except Exception as exc:
        raise DarksideError(f"{p}: cannot read detector weights ({type(exc).__name__})") from None
    if obj is None:
        raise DarksideError(f"{p}: detector weight file does not exist")
    return load_detector(model, obj, str(p))


def detector_param_groups(model: nn.Module, lr: float, weight_decay: float,
                          multipliers: bool) -> list[dict]:
    """Optimiser param groups of a student detector: Caffe HED per-layer multipliers when
    ``multipliers`` (HED only; RCF in gandtr has none), else one plain group."""
    if multipliers:
        if not isinstance(model, HED):
            raise ConfigError("gan.student_lr_multipliers: only defined for the HED detector")
        return hed_param_groups(model, lr, weight_decay)
    return [{"params": list(model.parameters()), "lr": lr, "weight_decay": weight_decay}]
