"""Outputs get the modes the user's umask gives (shared results folders), not mkstemp's 0600 / mkdtemp's 0700."""

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from darkside import atomic
from darkside.atomic import atomic_path, atomic_write_text, shared_temp_dir
from darkside.data.archive import extract


@pytest.fixture(params=[0o022, 0o027], ids=["umask022", "umask027"])
def umask(request):
    old = os.umask(request.param)
    atomic.process_umask.cache_clear()
    yield request.param
    os.umask(old)
    atomic.process_umask.cache_clear()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_text_file_mode(tmp_path, umask):
    out = atomic_write_text(tmp_path / "sub" / "table.csv", "a,b\n")
    assert _mode(out) == 0o666 & ~umask
    assert _mode(out.parent) == 0o777 & ~umask


def test_atomic_path_file_mode(tmp_path, umask):
    with atomic_path(tmp_path / "model.pt") as tmp:
        tmp.write_bytes(b"weights")
    assert _mode(tmp_path / "model.pt") == 0o666 & ~umask
    # a writer that makes a folder under the temporary name gets a folder mode, not 0644
    with atomic_path(tmp_path / "run.d", suffix="") as tmp:
        tmp.unlink()
        tmp.mkdir()
    assert _mode(tmp_path / "run.d") == 0o777 & ~umask


def test_shared_temp_dir_mode(tmp_path, umask):
    assert _mode(shared_temp_dir(tmp_path, prefix=".staging-")) == 0o777 & ~umask


def test_extracted_zip_folder_and_file(tmp_path, umask):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner/a.txt", "hello")
    archive = tmp_path / "a.zip"
    archive.write_bytes(buf.getvalue())
    out = extract(archive, tmp_path / "out")
    assert _mode(out) == 0o777 & ~umask
    assert _mode(out / "inner") == 0o777 & ~umask
    assert _mode(out / "inner" / "a.txt") == 0o666 & ~umask


def test_extracted_tar_folder(tmp_path, umask):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"hello"
        info = tarfile.TarInfo("a.txt")
        info.size, info.mode = len(data), 0o644
        tf.addfile(info, io.BytesIO(data))
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(buf.getvalue())
    out = extract(archive, tmp_path / "out")
    assert _mode(out) == 0o777 & ~umask
    assert _mode(out / "a.txt") == 0o644  # tar members keep the archive's mode (after the data filter)
