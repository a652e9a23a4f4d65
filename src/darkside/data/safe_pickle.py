"""A restricted unpickler for the published ground-truth pickles.

The cirtorch / revisitop / Tokyo ``gnd_*.pkl`` files and ``retrieval-SfM-120k*.pkl`` come from the
internet. ``pickle.load`` would run any callable the file names (``os.system`` through
``__reduce__``), so we only resolve the handful of globals that plain containers and numpy
arrays/scalars need, and refuse everything else *before* it is called.

Why these globals:

- ``numpy.{_core,core}.multiarray._reconstruct`` + ``numpy.ndarray`` + ``numpy.dtype``: how numpy
  pickles an array at protocols 0-4 (``_reconstruct(ndarray, (0,), b'b')`` then ``__setstate__``).
- ``numpy.{_core,core}.numeric._frombuffer``: protocol 5 pickles of contiguous arrays.
- ``numpy.{_core,core}.multiarray.scalar``: numpy scalars (``np.float64(1.5)``).
- ``_codecs.encode``: protocol <= 2 pickles written by Python 3 store ``bytes`` as
  ``_codecs.encode(text, 'latin1')``; it only encodes a string.
- ``builtins.set/frozenset/bytes/bytearray/complex``: plain values that pickle through a global.

``numpy.core`` (numpy 1.x) and ``numpy._core`` (numpy 2.x) name the same functions; we resolve
both spellings to whichever module the installed numpy has, without importing the deprecated
``numpy.core`` shim on numpy 2.
"""

from __future__ import annotations

import builtins
import codecs
import importlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from darkside.errors import DarksideError

#: (module, name) pairs the unpickler resolves; both numpy module spellings are accepted.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {(f"numpy.{core}.multiarray", "_reconstruct") for core in ("core", "_core")}
    | {(f"numpy.{core}.multiarray", "scalar") for core in ("core", "_core")}
    | {(f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")}
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
    | {(m, n) for m in ("builtins", "__builtin__") for n in ("set", "frozenset", "bytes", "bytearray", "complex")}
)


class ForbiddenGlobalError(DarksideError):
    """The pickle names a global outside :data:`ALLOWED_GLOBALS` (it was not imported or called)."""


def _numpy_core_module(suffix: str) -> Any:
    """The installed numpy's ``_core.<suffix>`` (numpy 2) or ``core.<suffix>`` (numpy 1)."""
    major = int(np.__version__.split(".")[0])
    base = "numpy._core" if major >= 2 else "numpy.core"
    return importlib.import_module(f"{base}.{suffix}")


def _resolve(module: str, name: str) -> Any:
    """The object for an allowed (module, name); never called for anything else."""
    if module in ("builtins", "__builtin__"):
        return getattr(builtins, name)
    if module == "_codecs":
        return codecs.encode
    if module == "numpy":
        return getattr(np, name)
    # numpy.core.multiarray / numpy._core.numeric ...: take the last component.
    return getattr(_numpy_core_module(module.rsplit(".", 1)[1]), name)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedReader, source: Path, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise ForbiddenGlobalError(f"{self._source}: refusing to unpickle forbidden global {module}.{name} "
                                       "(only containers, numbers, strings, bytes and numpy arrays are allowed)")
        return _resolve(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise ForbiddenGlobalError(f"{self._source}: refusing to unpickle a persistent id ({pid!r})")


def load_pickle(path: str | Path, encoding: str = "latin1") -> Any:
    """Load a ground-truth pickle, allowing only plain data and numpy arrays/scalars.

    ``encoding='latin1'`` is what numpy needs to read arrays pickled by Python 2 (cirtorch's
    older pickles); for Python 3 pickles it has no effect on ``str`` values.
    Raises :class:`ForbiddenGlobalError` naming the file and the global for anything else, and
    :class:`DarksideError` for a missing, truncated or corrupt file.
    """
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: pickle file does not exist")
    try:
        with p.open("rb") as fh:
            return _RestrictedUnpickler(fh, p, encoding).load()
    except ForbiddenGlobalError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DarksideError(f"{p}: not a valid pickle ({reason})") from None
