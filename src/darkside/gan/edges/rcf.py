"""RCF (Liu et al. 2017), written from its description: richer side outputs of every VGG16 conv.

VGG16 with pool1-3 stride 2 (ceil mode), pool4 stride 1, conv5 dilated 2; each of the 13 convs
feeds a 1x1 conv to 21 channels, summed per stage, then a 1x1 conv to one score map per stage.
Stages 2-5 are upsampled by fixed bilinear transposed convs (kernel 4/8/16/16, stride 2/4/8/8) and
cropped at offsets 1/2/4/0, the five maps fused by a 1x1 conv; sigmoid. Module names follow the
published ``rcf_bsds500_pascal_model.pth`` (conv1_1.., conv1_1_down.., score_dsn1.., score_fuse).
The bilinear kernels are non-persistent buffers (not in that file, and CPU-constructible).
Paper width: 14,803,781 parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from darkside.errors import DarksideError
from darkside.gan.edges.hed import VGG_STAGES, caffe_input, check_input_mode, scaled

_UP = {2: (4, 2, 1), 3: (8, 4, 2), 4: (16, 8, 4), 5: (16, 8, 0)}  # stage: (kernel, stride, crop offset)
SIDE_CHANNELS = 21


def bilinear_kernel(size: int) -> torch.Tensor:
    """(1, 1, size, size) bilinear upsampling kernel (the FCN/HED deconvolution filter)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    r = torch.arange(size, dtype=torch.float64)
    f = 1 - (r - center).abs() / factor
    return (f[:, None] * f[None, :]).float().view(1, 1, size, size)


class RCF(nn.Module):
    def __init__(self, width: float = 1.0, input_mode: str = "caffe255") -> None:
        super().__init__()
        self.input_mode = check_input_mode(input_mode)
        cin = 3
        for s, stage in enumerate(VGG_STAGES, start=1):
            for j, c in enumerate(stage, start=1):
                dil = 2 if s == 5 else 1
                setattr(self, f"conv{s}_{j}", nn.Conv2d(cin, scaled(c, width), 3, padding=dil, dilation=dil))
                cin = scaled(c, width)
                setattr(self, f"conv{s}_{j}_down", nn.Conv2d(cin, SIDE_CHANNELS, 1))
            setattr(self, f"score_dsn{s}", nn.Conv2d(SIDE_CHANNELS, 1, 1))
        self.score_fuse = nn.Conv2d(5, 1, 1)
        self.pools = nn.ModuleList([nn.MaxPool2d(2, stride=2, ceil_mode=True) for _ in range(3)]
                                   + [nn.MaxPool2d(2, stride=1, ceil_mode=True)])
        for s, (k, _, _) in _UP.items():
            self.register_buffer(f"up{s}", bilinear_kernel(k), persistent=False)

    def forward(self, x: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """Fused edge map (B, 1, H, W) of RGB images ``x`` in [0, 1]."""
        h, w = x.shape[-2:]
        feat = caffe_input(x, self.input_mode)
        outs = []
        for s, stage in enumerate(VGG_STAGES, start=1):
            if s > 1:
                feat = self.pools[s - 2](feat)
            acc = None
            for j in range(1, len(stage) + 1):
                feat = F.relu(getattr(self, f"conv{s}_{j}")(feat))
                down = getattr(self, f"conv{s}_{j}_down")(feat)
                acc = down if acc is None else acc + down
            out = getattr(self, f"score_dsn{s}")(acc)
            if s > 1:
                _, stride, off = _UP[s]
                out = F.conv_transpose2d(out, getattr(self, f"up{s}"), stride=stride)
                if out.shape[-2] < off + h or out.shape[-1] < off + w:
                    raise DarksideError(f"RCF: input {h}x{w} too small for stage {s} upsampling")
                out = out[..., off:off + h, off:off + w]
            outs.append(out)
        fused = self.score_fuse(torch.cat(outs, 1))
        return fused if logits else torch.sigmoid(fused)


def rcf_state_from_published(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The published RCF layout already matches our names; drop non-parameter extras such as the
    deconvolution kernels some forks store (``weight_deconv2``...), which are fixed here."""
    return {k: v for k, v in state.items() if not k.startswith("weight_deconv")}


