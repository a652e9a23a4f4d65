"""What every training loop shares (fine-tuning, generator training, pre-training): preemption,
random states, resumable checkpoints, and the device a job runs on.

SLURM preempts a job with SIGTERM. Inside :func:`preemptible` SIGTERM raises :class:`Preempted` (a
``BaseException``, so no ``except Exception`` swallows it) and the CLI exits with status 143
(128 + 15: never 0, so the workflow does not take the job as done); the last complete checkpoint
stays on disk and the requeued job resumes from it. Bad input exits with status 2 (a
:class:`~darkside.errors.DarksideError`). Checkpoints hold tensors, numbers and strings only, so
they load with ``weights_only``; one written for other settings (the DAG reruns a job whose
settings changed) cannot be continued and is kept aside as ``<name>.stale.pt``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darkside.errors import PREEMPTED_STATUS, DarksideError, Preempted
from darkside.state import save_torch

__all__ = ["PREEMPTED_STATUS", "Preempted", "checkpoint_path", "load_checkpoint", "preemptible", "reseed",
           "resolve_device", "rng_states", "save_checkpoint", "set_rng_states"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def preemptible() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Preempted` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Preempted()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager[Any]:
    """The forward passes' precision: ``fp32`` as the paper trained, or ``bf16`` autocast (on a GPU about twice
    the throughput and half the activation memory; it moves the numbers, so no preset uses it by default). Losses
    are reduced in float32 either way; bf16 needs no loss scaling."""
    if precision not in PRECISIONS:
        raise DarksideError(f"precision: {precision!r} is not one of {list(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def reseed(seed: int) -> None:
    """Reseed python, numpy and torch (cirtorch/mdir reseed every epoch with seed + epoch)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states(generator: np.random.Generator | None = None) -> dict[str, Any]:
    """The global RNG states (and a numpy Generator's) as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    out: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if generator is not None:
        out["generator"] = generator.bit_generator.state
    return out


def set_rng_states(s: Mapping[str, Any], generator: np.random.Generator | None = None) -> None:
    random.setstate((s["python"]["version"], tuple(s["python"]["state"]), s["python"]["gauss"]))
    n = s["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(s["torch"])
    if generator is not None:
        generator.bit_generator.state = s["generator"]


def checkpoint_path(out: str | Path) -> Path:
    """Where a run that writes ``out`` keeps its checkpoint: ``<out stem>.checkpoint.pt`` beside it (the
    pre-trainings; it goes once ``out`` is written)."""
    out = Path(out)
    return out.with_name(out.stem + ".checkpoint.pt")


def save_checkpoint(path: str | Path, config: Mapping[str, Any], state: Mapping[str, Any]) -> Path:
    """Write ``state`` with the ``config`` it belongs to (atomic)."""
    return save_torch(path, {"config": dict(config), **state})


def load_checkpoint(path: str | Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it was written for ``config``; None when there is none, or when
    it belongs to other settings (then it is kept aside as ``<stem>.stale.pt`` and a warning logged)."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # written whole (atomic), so this is foreign damage or a file that needs code
        raise DarksideError(f"{p}: unreadable checkpoint ({type(exc).__name__}); delete it to restart") from None
    if not isinstance(state, dict) or state.get("config") != dict(config):
        stale = p.with_name(f"{p.stem}.stale{p.suffix}")
        os.replace(p, stale)
        log.warning("%s: written for other settings; kept as %s, starting afresh", p, stale.name)
        return None
    return state


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
