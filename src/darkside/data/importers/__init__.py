"""Importers: one module per native format, each turning raw files into a prepared manifest.

:data:`IMPORTERS` maps an importer name (the registry's ``importer`` field) to
``"module:function"``; every function has the signature ``(raw_root: Path, out_dir: Path) -> Path``.
Modules are imported only when used, so listing importers costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from darkside.errors import DarksideError

Importer = Callable[[Path, Path], Path]

IMPORTERS: dict[str, str] = {
    "sfm120k": "sfm120k:prepare",
    "sfm120k-whiten": "sfm120k:prepare_whiten",
    "gandtr-lists": "gandtr_lists:prepare",
    "tokyo247": "tokyo247:prepare",
    "roxford5k": "revisited:prepare_roxford5k",
    "rparis6k": "revisited:prepare_rparis6k",
    "kapture-aachen": "kapture:prepare_aachen",
    "kapture-robotcar": "kapture:prepare_robotcar",
    "foggy-cityscapes": "cityscapes_foggy:prepare",
    "synthia-seqs": "synthia:prepare",
    "sfm120k-nd": "sfm_nd:prepare",
}


def get_importer(name: str) -> Importer:
    """The importer function registered under ``name``."""
    try:
        module, func = IMPORTERS[name].split(":")
    except KeyError:
        raise DarksideError(f"unknown importer {name!r} (known: {', '.join(sorted(IMPORTERS))})") from None
    return getattr(importlib.import_module(f"{__name__}.{module}"), func)
