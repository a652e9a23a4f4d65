"""Importers: one module per native format, each turning raw files into a prepared manifest.

Every module declares the datasets it imports (``DATASETS``: :class:`~darkside.data.importers._common.
DatasetEntry` with its files, licence and importer function ``(raw_root, out_dir) -> Path``);
:mod:`darkside.data.registry` collects them. Adding a dataset: one module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    """The importer modules of this package (not the shared ``_common``)."""
    return [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)
            if not m.name.startswith("_")]
