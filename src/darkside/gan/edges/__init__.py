"""Edge detectors used by the edge-consistency GAN family: HED and RCF.

Both take RGB images in [0, 1] and return fused edge maps at the input size (sigmoid
probabilities, or logits with ``logits=True``). Published weights are downloaded at run time and
loaded through :func:`load_detector`; nothing here ships weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges.hed import HED, hed_param_groups, hed_state_from_published
from darkside.gan.edges.rcf import RCF, rcf_state_from_published
from darkside.settings import setting
from darkside.state import load_checked_state


@dataclass(frozen=True)
class DetectorGeometry:
    """``edges.detectors.<kind>``: how the edge detector is built (one teacher file serves every family)."""

    width: float = setting("channel multiplier (1 = published)", gt=0)
    input: Literal["caffe255", "gandtr01"] = setting("input scaling (see darkside.gan.edges.hed.caffe_input)")


@dataclass(frozen=True)
class DetectorSettings(DetectorGeometry):
    weights: str | None = setting("teacher weights: published (paper) or pre-trained by the DAG (mini)")


@dataclass(frozen=True)
class Detector:
    """An edge detector family: its network, the converter of its published weights, the 1x1 conv that
    fuses its five side outputs (pre-training supervises what goes in), and where its weights are."""

    network: Callable[..., nn.Module]  # (width=, input_mode=) -> an untrained detector
    from_published: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]
    fusion: str
    weights_url: str  # the published file (BSDS); its name is the data/weights/ file the paper preset reads


_GANDTR = "http://ptak.felk.cvut.cz/personal/jenicto2/download/iccv23_gan/"
#: kind -> detector. Adding one: its module (network + key converter) and an entry here.
DETECTORS: dict[str, Detector] = {
    "hed": Detector(HED, hed_state_from_published, "fusion", _GANDTR + "hed_sniklaus_github.pth"),
    "rcf": Detector(RCF, rcf_state_from_published, "score_fuse", _GANDTR + "rcf_bsds500_pascal_model.pth"),
}

__all__ = ["DETECTORS", "HED", "RCF", "Detector", "DetectorGeometry", "DetectorSettings", "build_detector",
           "detector_of", "detector_param_groups", "load_detector", "load_detector_file", "unwrap_state"]


def build_detector(kind: str, width: float = 1.0, input_mode: str = "caffe255") -> nn.Module:
    """An untrained detector of ``kind`` (a key of :data:`DETECTORS`) with channel widths scaled by ``width``."""
    if kind not in DETECTORS:
        raise ConfigError(f"edges.detectors: {kind!r} is not one of {list(DETECTORS)}")
    return DETECTORS[kind].network(width=width, input_mode=input_mode)


def detector_of(model: nn.Module) -> Detector:
    """The registry entry of a detector network."""
    for d in DETECTORS.values():
        if isinstance(model, d.network):  # type: ignore[arg-type]
            return d
    raise DarksideError(f"{type(model).__name__} is not a registered edge detector ({', '.join(DETECTORS)})")


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
    state = detector_of(model).from_published(unwrap_state(state, source))
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
