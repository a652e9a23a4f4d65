"""Learning-rate schedule: constant for ``n_constant`` epochs, then linear decay towards 0.

CycleGAN's ``lambda`` rule with epoch_count 1: factor(e) = 1 - max(0, e + 1 - n_constant) /
(n_decay + 1) for the 0-based epoch e, so the last decay epoch trains at 1/(n_decay + 1) of the
base rate and the rate would hit 0 one epoch later. The rate is a pure function of the epoch
(set at the start of each epoch), so a resumed run can never restart the schedule by mistake.
"""

from __future__ import annotations

import torch


def lr_factor(epoch: int, n_constant: int, n_decay: int) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch``."""
    return 1.0 - max(0, epoch + 1 - n_constant) / float(n_decay + 1)


def late_decay_factor(epoch: int, n_constant: int, n_decay: int) -> float:
    """CyEDA's (EnlightenGAN's) rule: after each epoch past ``n_constant`` the rate drops by base / n_decay, so
    0-based epoch e trains at 1 - max(0, e - n_constant) / n_decay (one epoch later than CycleGAN's rule; the
    last of 20 + 20 epochs at 0.05 of the base rate)."""
    return 1.0 - max(0, epoch - n_constant) / float(n_decay)


def set_epoch_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every param group's lr to its ``initial_lr`` (base rate x multiplier) times ``factor``."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor
