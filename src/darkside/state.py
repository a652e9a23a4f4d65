"""Loading weight files into networks with one-line errors: tensors only (``weights_only``, never
pickled code), and strict key and shape checks that name the file and the first bad key. Shared by
the backbones (``darkside.embed``) and the edge detectors (``darkside.gan``); and writing them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darkside.atomic import atomic_path
from darkside.errors import DarksideError


def read_state_file(path: str | Path, what: str = "weight") -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth`` file (a state dict, or a checkpoint holding one under ``state_dict``)."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: {what} file does not exist")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt / pickled-object files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DarksideError(f"{p}: unreadable {what} file ({reason})") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise DarksideError(f"{p}: not a state dict of tensors")
    return dict(state)


def load_checked_state(module: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                       optional_suffixes: tuple[str, ...] = (), target: str | None = None) -> None:
    """Load ``state`` into ``module`` after checking every key and shape; keys of the module ending in
    one of ``optional_suffixes`` may be absent (e.g. ``num_batches_tracked`` in old conversions).
    ``target`` names the module in the message (default: its class name)."""
    target = target or type(module).__name__
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(optional_suffixes or ("\0",))]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        what = f"missing key {missing[0]!r}" if missing else f"unexpected key {unexpected[0]!r}"
        raise DarksideError(f"{source}: weights do not fit {target} ({what}; "
                            f"{len(missing)} missing, {len(unexpected)} unexpected)")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise DarksideError(f"{source}: weights do not fit {target} (key {k!r} has shape "
                                f"{tuple(v.shape)}, expected {tuple(own[k].shape)}; wrong width?)")
    module.load_state_dict(dict(state), strict=False)


def save_torch(path: str | Path, obj: Any) -> Path:
    """``torch.save`` to ``path`` atomically. Through a file handle, because torch stores the file's name
    inside the archive: saved under a temporary name, identical objects would give different bytes."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        torch.save(obj, fh)
    return Path(path)
