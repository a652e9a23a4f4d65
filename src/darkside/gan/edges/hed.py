"""HED (Xie & Tu 2015) as in the sniklaus PyTorch port that gandtr uses, written from its description.

VGG16 conv1_1..conv5_3 (a 2x2 max-pool before stages 2-5, no pool5, no FC), one 1x1 "score" conv per
stage, each bilinearly upsampled (align_corners False) to the input size, fused by a 1x1 conv; sigmoid.
Module names follow gandtr's re-hosted ``hed_sniklaus_github.pth`` (vgg1..5 / score1..5 / fusion) so
that file loads directly; sniklaus' own layout (netVggOne.. / moduleVggOne.. / netCombine) is renamed.
Paper width: 14,716,171 parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from darkside.errors import ConfigError

CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
INPUT_MODES = ("caffe255", "gandtr01")
#: channels of VGG16's 3x3 convs per stage (HED and RCF alike)
VGG_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
_ORDINALS = ("One", "Two", "Thr", "Fou", "Fiv")


def scaled(channels: int, width: float) -> int:
    """Channel count scaled for the mini preset (never below 1)."""
    return max(1, round(channels * width))


def caffe_input(x: torch.Tensor, mode: str) -> torch.Tensor:
    """RGB [0, 1] -> what the Caffe-trained VGG expects: BGR x255 minus the BGR mean ('caffe255',
    sniklaus/RCF), or BGR in [0, 1] minus mean/255 ('gandtr01', what gandtr's HED adapter fed)."""
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    bgr = x.flip(1)
    return bgr * 255.0 - mean if check_input_mode(mode) == "caffe255" else bgr - mean / 255.0


def check_input_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`INPUT_MODES`, else a ConfigError."""
    if mode not in INPUT_MODES:
        raise ConfigError(f"gan.detector_input: {mode!r} is not one of {list(INPUT_MODES)}")
    return mode


class HED(nn.Module):
    def __init__(self, width: float = 1.0, input_mode: str = "caffe255") -> None:
        super().__init__()
        self.input_mode = check_input_mode(input_mode)
        cin = 3
        for i, stage in enumerate(VGG_STAGES, start=1):
            layers: list[nn.Module] = [] if i == 1 else [nn.MaxPool2d(2, 2)]
            for c in stage:
                layers += [nn.Conv2d(cin, scaled(c, width), 3, padding=1), nn.ReLU(inplace=False)]
                cin = scaled(c, width)
            setattr(self, f"vgg{i}", nn.Sequential(*layers))
            setattr(self, f"score{i}", nn.Conv2d(cin, 1, 1))
        self.fusion = nn.Sequential(nn.Conv2d(5, 1, 1))

    def forward(self, x: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """Fused edge map (B, 1, H, W) of RGB images ``x`` in [0, 1]."""
        h, w = x.shape[-2:]
        feat = caffe_input(x, self.input_mode)
        sides = []
        for i in range(1, 6):
            feat = getattr(self, f"vgg{i}")(feat)
            side = getattr(self, f"score{i}")(feat)
            sides.append(F.interpolate(side, size=(h, w), mode="bilinear", align_corners=False))
        fused = self.fusion(torch.cat(sides, 1))
        return fused if logits else torch.sigmoid(fused)


def hed_state_from_published(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename sniklaus' keys (``netVggOne.0.weight``, older ``moduleVggOne...``, ``netScoreOne``,
    ``netCombine.0``) to ours; gandtr's layout (``vgg1.0.weight``...) passes through unchanged."""
    names = {f"{prefix}{kind}{name}": f"{kind.lower()}{i}" for prefix in ("net", "module")
             for kind in ("Vgg", "Score") for i, name in enumerate(_ORDINALS, start=1)}
    names |= {"netCombine": "fusion", "moduleCombine": "fusion"}
    out = {}
    for key, val in state.items():
        head, _, rest = key.partition(".")
        out[f"{names[head]}.{rest}" if head in names and rest else key] = val
    return out


# Caffe HED solver multipliers (lr, weight decay) for weight / bias per layer group.
HED_MULTIPLIERS = {
    "conv": ((1.0, 1.0), (2.0, 0.0)),
    "conv5": ((100.0, 1.0), (200.0, 0.0)),
    "score": ((0.01, 1.0), (0.02, 0.0)),
    "fusion": ((0.001, 1.0), (0.002, 0.0)),
}


def hed_group(name: str) -> str:
    """Layer group of a parameter name: conv (stages 1-4), conv5, score, fusion."""
    head = name.split(".")[0]
    if head in ("vgg1", "vgg2", "vgg3", "vgg4"):
        return "conv"
    if head == "vgg5":
        return "conv5"
    if head.startswith("score"):
        return "score"
    if head == "fusion":
        return "fusion"
    raise KeyError(name)


def hed_param_groups(model: HED, lr: float, weight_decay: float) -> list[dict]:
    """Param groups with the Caffe per-layer lr multipliers and no weight decay on biases."""
    buckets: dict[tuple[str, int], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        buckets.setdefault((hed_group(name), 0 if name.endswith("weight") else 1), []).append(p)
    groups = []
    for (grp, is_bias), params in buckets.items():
        lr_mult, wd_mult = HED_MULTIPLIERS[grp][is_bias]
        groups.append({"params": params, "lr": lr * lr_mult, "weight_decay": weight_decay * wd_mult,
                       "name": f"{grp}.{'bias' if is_bias else 'weight'}"})
    return groups
