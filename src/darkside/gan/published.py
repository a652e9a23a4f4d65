"""Generators their authors published, imported as darkside generator files (Table 7's "CyEDA [3] BDD CD" and
"CyEDA [3] GTA CD" rows).

A published generator is a params.yaml entry ``gan.published.<name>``: the family whose generator the file
holds and where the file is placed. ``darkside gan import --name N`` reads the authors' file (tensors only,
never pickled code), drops the ``module.`` prefix that ``nn.DataParallel`` leaves on every key, checks each key
and shape against the family's generator built from the preset's settings of that family, and writes a
generator file that the translator loads like a trained one, recording where it came from. The recipes
``<name>``, ``<name>-c``, ``<name>-cd``... then exist like a family's; the DAG trains them only where the file
is present, and the table cells say where to place it otherwise.

CyEDA's repository keeps ``pretrain/bdd100k_net_G_A.pth`` and ``pretrain/gta_net_G_A.pth`` (and ``_G_B``); its
scripts translate A -> B, and which of A and B is day is not stated: the suite takes ``G_A`` as day -> night
(the BDD100K pair is day <-> night), and ``file`` names the other generator where that is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from darkside.gan.family import GENERATOR_FORMAT, GanSetup, family_class, family_settings, generator_header
from darkside.hashing import sha256_file
from darkside.settings import setting
from darkside.state import load_checked_state, read_state_file, save_torch

DATA_PARALLEL_PREFIX = "module."


@dataclass(frozen=True)
class PublishedGenerator:
    """``gan.published.<name>``: an authors' day->night generator file and the family that builds it."""

    family: str = setting("the family whose generator the file holds (its preset entry gives the widths)",
                          choices=lambda: list(family_settings()))
    file: str = setting("where the file is placed, relative to the working directory")
    source: str = setting("where the file is published (said in the table cell while it is absent)")


def strip_data_parallel(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys without ``nn.DataParallel``'s ``module.`` prefix (all or none of them carry it)."""
    keys = list(state)
    if keys and all(k.startswith(DATA_PARALLEL_PREFIX) for k in keys):
        return {k[len(DATA_PARALLEL_PREFIX):]: v for k, v in state.items()}
    return dict(state)


def import_published(name: str, setup: GanSetup, source: str | Path, out: str | Path) -> Path:
    """Write ``out`` (a darkside generator file) from the authors' generator ``source``; return its path.

    One-line errors name the file: absent, unreadable, holding pickled objects, or weights that do not fit the
    family's generator at the preset's widths (first bad key and its shape)."""
    src = Path(source)
    cls = family_class(setup.family)
    state = strip_data_parallel(read_state_file(src, what=f"published {cls.title} generator"))
    net = cls.translator_net(setup, state)
    # batch-norm step counters are absent from files of PyTorch < 0.4.1; they are never read in eval mode
    load_checked_state(net, state, str(src), optional_suffixes=("num_batches_tracked",),
                       target=f"the {cls.title} generator of this preset")
    weights = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    provenance: dict[str, Any] = {"name": name, "file": str(src), "sha256": sha256_file(src)}
    return save_torch(out, {"format": GENERATOR_FORMAT, "family": setup.family, "setup": setup.to_plain(),
                            "state_dict": weights, "published": provenance})


def published_name(path: str | Path) -> str | None:
    """The ``gan.published`` name a generator file was imported as (None: trained by the suite)."""
    pub = generator_header(path).get("published")
    return str(pub["name"]) if isinstance(pub, dict) and "name" in pub else None
