"""Safe extraction: escaping members are refused and nothing is written outside the target."""

from __future__ import annotations

import contextlib
import io
import random
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from darkside.data.archive import UnsafeArchiveError, extract, list_members
from darkside.errors import DarksideError

_TYPES = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE}


def _tar(path: Path, members: list[tuple[str, str, bytes | str]], mode: str = "w:gz") -> Path:
    """members: (kind, name, data-or-link target), kind in file/dir/sym/hard/chr (a character device)."""
    with tarfile.open(path, mode) as tf:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = _TYPES[kind]
            if kind == "dir":
                info.mode = 0o755
            else:
                info.linkname = data
            tf.addfile(info)
    return path


def _zip(path: Path, members: list[tuple[str, bytes]], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def sandbox(tmp_path):
    """work/ holds archive and target; outside/ must never change."""
    (tmp_path / "work").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("original")
    return tmp_path


@pytest.mark.parametrize("mode, suffix", [("w:gz", "tar.gz"), ("w:bz2", "tar.bz2")])
def test_good_tar_extracts_with_inside_link(sandbox, mode, suffix):
    arc = _tar(
        sandbox / "work" / f"a.{suffix}",
        [
            ("dir", "d", b""),
            ("file", "d/x.txt", b"hello"),
            ("file", "./y.txt", b"y"),
            ("sym", "d/link", "x.txt"),
            ("hard", "h.txt", "d/x.txt"),
        ],
        mode,
    )
    out = extract(arc, sandbox / "work" / "target")
    assert (out / "d" / "x.txt").read_bytes() == b"hello"
    assert (out / "d" / "link").read_bytes() == b"hello" and (out / "d" / "link").is_symlink()
    assert (out / "h.txt").read_bytes() == b"hello"
    assert sorted(list_members(arc)) == ["d", "d/link", "d/x.txt", "h.txt", "y.txt"]
    assert _snapshot(sandbox / "work") == {
        "a." + suffix,
        "target",
        "target/d",
        "target/d/x.txt",
        "target/y.txt",
        "target/d/link",
        "target/h.txt",
    }


def test_good_zip_extracts_and_replaces_existing_target(sandbox):
    target = sandbox / "work" / "target"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    arc = _zip(sandbox / "work" / "a.zip", [("sub/", b""), ("sub/a.txt", b"A")], {"sub/l": "a.txt"})
    extract(arc, target)
    assert _snapshot(target) == {"sub", "sub/a.txt", "sub/l"}
    assert (target / "sub" / "l").read_bytes() == b"A"
    assert _snapshot(sandbox / "work") == {"a.zip", "target", "target/sub", "target/sub/a.txt", "target/sub/l"}


BAD_TARS = {
    "dotdot": ([("file", "ok.txt", b"ok"), ("file", "../evil.txt", b"x")], "'../evil.txt'"),
    "absolute": ([("file", "/tmp/evil-abs.txt", b"x")], "'/tmp/evil-abs.txt'"),
    "symlink_out": ([("sym", "esc", "../outside")], "'esc'"),
    "symlink_abs": ([("sym", "esc", "/etc")], "'esc'"),
    "hardlink_out": ([("hard", "h", "../outside/keep.txt")], "'../outside/keep.txt'"),
    "write_through_link": ([("sym", "l", "."), ("file", "l/x.txt", b"x")], "'l/x.txt'"),
    "overwrite_link": ([("sym", "l", "a.txt"), ("file", "l", b"x")], "'l'"),
    # lexically 'l1/..' is '.', really it is the parent of the target: caught after extraction
    "link_chain": ([("sym", "l1", "."), ("sym", "l2", "l1/..")], "l2"),
}


@pytest.mark.parametrize("case", sorted(BAD_TARS))
def test_escaping_tar_members_are_refused_and_nothing_is_written(sandbox, case):
    members, named = BAD_TARS[case]
    arc = _tar(sandbox / "work" / "bad.tar.gz", members)
    with pytest.raises(UnsafeArchiveError) as err:
        extract(arc, sandbox / "work" / "target")
    msg = str(err.value)
    assert "\n" not in msg and named in msg and str(arc) in msg
    assert _snapshot(sandbox / "work") == {"bad.tar.gz"}  # no target, no temporary folder
    assert _snapshot(sandbox / "outside") == {"keep.txt"}
    assert (sandbox / "outside" / "keep.txt").read_text() == "original"
    assert not Path("/tmp/evil-abs.txt").exists()


@pytest.mark.parametrize(
    "members, links, named",
    [
        ([("../evil.txt", b"x")], None, "'../evil.txt'"),
        ([("/abs.txt", b"x")], None, "'/abs.txt'"),
        ([("ok.txt", b"x")], {"esc": "../../outside"}, "'esc'"),
    ],
)
def test_escaping_zip_members_are_refused(sandbox, members, links, named):
    arc = _zip(sandbox / "work" / "bad.zip", members, links)
    with pytest.raises(UnsafeArchiveError, match=named):
        extract(arc, sandbox / "work" / "target")
    assert _snapshot(sandbox / "work") == {"bad.zip"}
    assert _snapshot(sandbox / "outside") == {"keep.txt"}


def test_truncated_archive_is_a_one_line_error_and_leaves_nothing(sandbox):
    arc = _tar(sandbox / "work" / "t.tar.gz", [("file", "big.bin", bytes(range(256)) * 4000)])
    data = arc.read_bytes()
    arc.write_bytes(data[: len(data) // 2])
    with pytest.raises(DarksideError) as err:
        extract(arc, sandbox / "work" / "target")
    assert str(arc) in str(err.value) and "\n" not in str(err.value)
    assert _snapshot(sandbox / "work") == {"t.tar.gz"}


# The bad member comes after good ones that are large enough to have been written already:
# a streaming extraction has put them in its temporary folder when it meets the bad one.
BAD_LAST = {
    "dotdot": (("file", "../evil.txt", b"x"), "'../evil.txt'"),
    "symlink_out": (("sym", "d/esc", "../../outside"), "'d/esc'"),
    "write_through_link": (("file", "dl/x.txt", b"x"), "'dl/x.txt'"),
    "dangling_hardlink": (("hard", "h", "d/never.txt"), "'h'"),
    "device": (("chr", "d/tty", ""), "'d/tty'"),
}


@pytest.mark.parametrize("case", sorted(BAD_LAST))
def test_tar_refused_at_its_last_member_leaves_the_old_target_untouched(sandbox, case):
    bad, named = BAD_LAST[case]
    target = sandbox / "work" / "target"
    target.mkdir()
    (target / "old.txt").write_text("old")
    good = [("dir", "d", b""), ("file", "d/a.bin", bytes(range(256)) * 400), ("sym", "dl", "d"),
            ("file", "b.txt", b"b")]
    arc = _tar(sandbox / "work" / "bad.tar.gz", [*good, bad])
    with pytest.raises(UnsafeArchiveError) as err:
        extract(arc, target)
    msg = str(err.value)
    assert "\n" not in msg and named in msg and str(arc) in msg
    assert _snapshot(sandbox / "work") == {"bad.tar.gz", "target", "target/old.txt"}  # no temporary folder left
    assert (target / "old.txt").read_text() == "old"
    assert _snapshot(sandbox / "outside") == {"keep.txt"}


class _CountingReader:
    """A binary file that counts the bytes read through it and the seeks that go backwards."""

    def __init__(self, raw: io.BufferedReader) -> None:
        self.raw, self.bytes_read, self.backward_seeks = raw, 0, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        before = self.raw.tell()
        pos = self.raw.seek(offset, whence)
        self.backward_seeks += pos < before
        return pos

    def __getattr__(self, name: str):
        return getattr(self.raw, name)


def test_tar_gz_is_decompressed_in_one_pass(sandbox, monkeypatch):
    payload = {f"d/{i}.bin": random.Random(i).randbytes(200_000) for i in range(3)}  # incompressible
    arc = _tar(sandbox / "work" / "a.tar.gz", [("dir", "d", b""), *(("file", n, b) for n, b in payload.items())])
    readers: list[_CountingReader] = []
    real_open = tarfile.open
    with contextlib.ExitStack() as files:

        def counting_open(name=None, mode="r", fileobj=None, **kwargs):
            reader = _CountingReader(fileobj if fileobj is not None else files.enter_context(open(name, "rb")))
            readers.append(reader)
            return real_open(name, mode, reader, **kwargs)

        monkeypatch.setattr(tarfile, "open", counting_open)
        out = extract(arc, sandbox / "work" / "target")
    assert all((out / n).read_bytes() == b for n, b in payload.items())
    assert len(readers) == 1
    # every compressed byte read at most once, never rewound (a members-first pass reads it all twice)
    assert readers[0].bytes_read <= arc.stat().st_size
    assert readers[0].backward_seeks == 0
