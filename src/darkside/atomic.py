"""Write outputs under a temporary name and rename them into place.

A job killed half-way (SLURM preemption, Ctrl-C, out of memory) must never leave a file that
looks finished: Snakemake and DVC would take it for a valid output. Every writer in the suite
goes through :func:`atomic_path` or :func:`atomic_write_text`.

Outputs are shared (a lab's results folder, a DVC cache), so they get the permissions the user's
umask gives any new file (0644 / 0755 under umask 022), not the private 0600 / 0700 that
``tempfile.mkstemp`` / ``mkdtemp`` give their temporaries: the mode is set before the rename.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@functools.cache
def process_umask() -> int:
    """The process umask, read once: reading it means setting it, which would race with other threads.

    Code that changes the umask afterwards (tests) must call ``process_umask.cache_clear()``.
    """
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a newly created file under the process umask (``open``'s default)."""
    return 0o666 & ~process_umask()


def dir_mode() -> int:
    """Mode of a newly created folder under the process umask (``mkdir``'s default)."""
    return 0o777 & ~process_umask()


def shared_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """``tempfile.mkdtemp`` in ``parent``, with the umask's folder mode instead of 0700.

    For staging folders that are renamed into place as outputs.
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, dir_mode())
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, else delete it.

    The temporary file lives in the same directory so that the final ``os.replace`` is atomic
    on POSIX file systems. ``suffix`` defaults to the final name's suffix so that libraries
    which dispatch on the extension (h5py, PIL, matplotlib) still work.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=(final.suffix if suffix is None else suffix) + ".part",
        dir=final.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # the writer may have replaced the file (or made a folder): give whatever is there the usual mode
        os.chmod(tmp, dir_mode() if tmp.is_dir() else file_mode())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically and return the path."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")
