"""Safe, atomic extraction of tar (gz/bz2/xz) and zip archives.

Archives come from the internet, so every member is checked before it is written:

- absolute names and ``..`` components are refused;
- a symbolic link must point inside the target (its target is resolved lexically from the
  link's folder); a hard link must name an earlier regular member;
- no member may be written *through* a link (``a -> .`` then ``a/../x`` or a later regular file
  called ``a``), because lexical checks cannot see where a chain of links really ends; this is
  what makes "nothing is written outside the target" hold, not only "no name looks outside";
- device files and FIFOs are refused.

Refusals are one line naming the archive and the member. Extraction goes into a temporary
sibling folder that is renamed to the target only when everything succeeded, so a member refused
half-way (even the last one) leaves the target as it was; the real path of every extracted link
is checked again before that rename.

A tar archive is read once, front to back, as a stream: the rules above run as a ``tarfile``
extraction filter, member by member, followed by Python's own ``data`` filter (which resolves
names and link targets against what is already on disk). Listing the members first would mean
decompressing the whole archive twice (50 GB for cirtorch's ``ims.tar.gz``). The rules only look
back at earlier members, so checking each member as it arrives is the complete check.
A zip archive is checked from its central directory before anything is written.

The target folder gets the umask's mode (not ``mkdtemp``'s 0700); zip members get the umask's
modes as well, tar members the modes stored in the archive (after the ``data`` filter).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from darkside.atomic import shared_temp_dir
from darkside.errors import DarksideError


class UnsafeArchiveError(DarksideError):
    """An archive member would escape the target (or is a device/FIFO); nothing was extracted."""


@dataclass(frozen=True)
class _Member:
    name: str  # normalised, relative, '/'-separated
    kind: str  # file / dir / symlink / hardlink
    link: str = ""  # symlink target as stored, or the normalised hard-link target


def _normalise(archive: Path, raw: str) -> str:
    """Member name without leading './', refusing absolute names and '..' components."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {raw!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {raw!r} has a '..' component")
    return "/".join(parts)


class _Rules:
    """The member rules beyond names: links that resolve outside, writes through links, dangling hard links.

    Applied member by member in archive order; each rule looks only at earlier members, so the
    same object serves a zip's central directory and a tar read as a stream.
    """

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.links: set[str] = set()
        self.files: set[str] = set()

    def check(self, m: _Member) -> None:
        archive = self.archive
        if not m.name:
            return
        parents = m.name.split("/")[:-1]
        for i in range(1, len(parents) + 1):
            if "/".join(parents[:i]) in self.links:
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} would be written through a link")
        if m.name in self.links:
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} would overwrite a link")
        if m.kind == "symlink":
            if m.link.startswith("/") or (len(m.link) > 1 and m.link[1] == ":"):
                raise UnsafeArchiveError(f"{archive}: link {m.name!r} points to absolute path {m.link!r}")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.link))
            if resolved == ".." or resolved.startswith("../"):
                raise UnsafeArchiveError(f"{archive}: link {m.name!r} -> {m.link!r} points outside the target")
            self.links.add(m.name)
        elif m.kind == "hardlink":
            if m.link not in self.files:
                raise UnsafeArchiveError(f"{archive}: hard link {m.name!r} -> {m.link!r} does not name an earlier "
                                         "file of the archive")
            self.files.add(m.name)
        elif m.kind == "file":
            self.files.add(m.name)


def _check_members(archive: Path, members: list[_Member]) -> None:
    """Apply :class:`_Rules` to a whole member list (zip: its central directory)."""
    rules = _Rules(archive)
    for m in members:
        rules.check(m)


def _tar_member(archive: Path, ti: tarfile.TarInfo) -> _Member:
    """The checked name and kind of one tar member (device files and FIFOs refused)."""
    name = _normalise(archive, ti.name)
    if ti.issym():
        return _Member(name, "symlink", ti.linkname)
    if ti.islnk():
        return _Member(name, "hardlink", _normalise(archive, ti.linkname))
    if ti.isdir():
        return _Member(name, "dir")
    if ti.isfile():
        return _Member(name, "file")
    raise UnsafeArchiveError(f"{archive}: member {ti.name!r} is a device or FIFO")


class _TarFilter:
    """``tarfile`` extraction filter: the project's rules, then the standard ``data`` filter.

    tarfile calls it on each member just before writing that member, so the checks ride on the
    one pass that reads the data. A refusal raises out of ``extractall``; :func:`extract` then
    deletes the temporary folder with whatever earlier members had been written to it.
    """

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.rules = _Rules(archive)

    def __call__(self, member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        self.rules.check(_tar_member(self.archive, member))
        # second line of defence: resolves the name and link target against the folder as it is now
        return tarfile.data_filter(member, dest)


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> list[_Member]:
    out = []
    for info in zf.infolist():
        name = _normalise(archive, info.filename)
        if _zip_is_symlink(info):
            out.append(_Member(name, "symlink", zf.read(info).decode("utf-8", "replace")))
        else:
            out.append(_Member(name, "dir" if info.is_dir() else "file"))
    return out


def _extract_zip(zf: zipfile.ZipFile, members: list[_Member], dest: Path) -> None:
    # Our own loop (not zf.extractall) so that symlinks become links and names are the checked ones.
    for info, m in zip(zf.infolist(), members, strict=True):
        if not m.name:
            continue
        path = dest / m.name
        if m.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
        elif m.kind == "symlink":
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(m.link, path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, path.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def _verify_links(archive: Path, dest: Path) -> None:
    """After extraction: every link's real path must still be inside ``dest``."""
    root = dest.resolve()
    for dirpath, dirnames, filenames in os.walk(dest):
        for entry in dirnames + filenames:
            p = Path(dirpath) / entry
            if p.is_symlink():
                real = Path(os.path.realpath(p))
                if real != root and root not in real.parents:
                    raise UnsafeArchiveError(f"{archive}: link {p.relative_to(dest)} resolves outside the target")


def _extract_tar(src: Path, dest: Path) -> None:
    try:
        # "r|*" reads the archive as a stream: tarfile can then only move forward (a seek back
        # raises StreamError), so extraction is one decompression pass, checks included.
        with tarfile.open(src, "r|*") as tf:
            tf.extractall(str(dest), filter=_TarFilter(src))
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"{src}: member {exc.tarinfo.name!r} refused ({exc})") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DarksideError(f"{src}: not a readable tar or zip archive ({exc})") from None


def list_members(archive: str | Path) -> list[str]:
    """Checked member names of an archive (raises :class:`UnsafeArchiveError` like :func:`extract`)."""
    path = Path(archive)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            members = _zip_members(path, zf)
        _check_members(path, members)
        return [m.name for m in members if m.name]
    rules, names = _Rules(path), []
    with tarfile.open(path, "r|*") as tf:  # one pass, as for extraction
        for ti in tf:
            m = _tar_member(path, ti)
            rules.check(m)
            if m.name:
                names.append(m.name)
    return names


def extract(archive: str | Path, target: str | Path) -> Path:
    """Extract ``archive`` (tar, tar.gz, tar.bz2, tar.xz or zip) into ``target``; return ``target``.

    Every member is checked before it is written (see the module docstring); the extraction
    happens in a temporary sibling folder that replaces ``target`` only when complete, so a
    refused member or a crash leaves either the old folder or the new one, never half of it.
    """
    src, final = Path(archive), Path(target)
    if not src.is_file():
        raise DarksideError(f"{src}: archive does not exist")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = shared_temp_dir(final.parent, prefix=f".{final.name}.extract-")  # becomes the target: umask mode
    try:
        if zipfile.is_zipfile(src):
            try:
                with zipfile.ZipFile(src) as zf:
                    members = _zip_members(src, zf)
                    _check_members(src, members)
                    _extract_zip(zf, members, tmp)
            except (zipfile.BadZipFile, EOFError) as exc:
                raise DarksideError(f"{src}: corrupt or truncated archive ({exc})") from None
        else:
            _extract_tar(src, tmp)
        _verify_links(src, tmp)
        if final.exists():
            # private is fine here: it only holds the old target until it is deleted
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            final.rename(old / "x")
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
        raise
    return final
