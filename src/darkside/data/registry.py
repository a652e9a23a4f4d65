"""Every real dataset the paper preset uses: where it comes from, how it is checked and imported.

Each importer module declares its datasets (:mod:`darkside.data.importers`); this module collects them.

``download_dataset(name, raw_root)`` fetches (resume, retries, SHA-256) and safely extracts a
dataset's files into ``<raw_root>/<name>/`` and writes the sentinel ``.downloaded``;
``prepare_dataset(name, raw_root, prepared_root)`` runs its importer into
``<prepared_root>/<name>/``. Registration-only or unpublished datasets have no URLs: their
"download" checks that the user placed the files described in ``manual`` and says exactly what
is missing otherwise.

Digests: the kapture archives of Aachen v1.1 have SHA-256 published in naver/kapture's
``dataset/kapture_dataset_index.yaml`` (the first 8 hex digits match the reference notes); no
other publisher gives one, so those are ``None`` and the first download records its digest in
``<raw_root>/DIGESTS.json``, which every later download must match.
"""

from __future__ import annotations

from pathlib import Path

from darkside.atomic import atomic_write_json, atomic_write_text
from darkside.data.archive import extract
from darkside.data.download import DownloadSettings, download_verified
from darkside.data.importers._common import DatasetEntry
from darkside.data.importers._common import RemoteFile as RemoteFile  # re-exported: entries are built from it
from darkside.errors import DarksideError

SENTINEL = ".downloaded"
DIGESTS_FILE = "DIGESTS.json"


def _collect() -> dict[str, DatasetEntry]:
    import darkside.data.importers as importers

    out: dict[str, DatasetEntry] = {}
    for module in importers.modules():
        for entry in getattr(module, "DATASETS", ()):
            if entry.name in out:
                raise DarksideError(f"dataset {entry.name!r} is declared twice ({module.__name__})")
            out[entry.name] = entry
    return out


#: every real dataset, declared by its importer module (one module per native format)
DATASETS: dict[str, DatasetEntry] = _collect()


def dataset_names() -> list[str]:
    """Every dataset a role may name: the real ones and the synthetic benchmark's."""
    from darkside.data.synthetic import DATASETS as SYNTHETIC

    return sorted([*DATASETS, *SYNTHETIC])


def get_entry(name: str) -> DatasetEntry:
    """The registry entry of ``name`` (one-line error listing the known names)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DarksideError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})") from None


def _fetch(entry: DatasetEntry, raw_root: Path, settings: DownloadSettings, progress: bool) -> dict[str, str]:
    """Download and extract every file of ``entry``; return ``{filename: sha256}``."""
    raw = raw_root / entry.name
    digests: dict[str, str] = {}
    for f in entry.files:
        marker = raw / f".{f.filename}.extracted"
        if f.extract_to and (raw / f.extract_to).is_dir() and not marker.exists() and not (raw / f.filename).exists():
            digests[f.filename] = "placed by the user"  # manual fallback (e.g. dead image links)
            continue
        # the digest comes with the file (hashed while it was transferred or checked): no second read
        path, digest = download_verified(f.url, raw / f.filename, f.sha256, digests_file=raw_root / DIGESTS_FILE,
                                         settings=settings, progress=progress)
        digests[f.filename] = digest
        if f.extract_to and not (marker.is_file() and marker.read_text(encoding="utf-8").strip() == digest):
            extract(path, raw / f.extract_to)
            atomic_write_text(marker, digest + "\n")
    return digests


def _check_manual(entry: DatasetEntry, raw_root: Path) -> None:
    raw = raw_root / entry.name
    if entry.manual_check and not any((raw / p).exists() for p in entry.manual_check):
        raise DarksideError(f"{raw}: {entry.name} is not there yet: {entry.manual}")


def download_dataset(
    name: str, raw_root: str | Path, settings: DownloadSettings | None = None, progress: bool = True
) -> Path:
    """Fetch, verify and extract ``name`` into ``<raw_root>/<name>``; return the sentinel it writes.

    Datasets needed by the importer (``requires``) must have been downloaded first (their own
    sentinel). For registration-only data the user's files are checked instead of downloaded.
    """
    entry, root = get_entry(name), Path(raw_root)
    for dep in entry.requires:
        if not (root / dep / SENTINEL).is_file():
            raise DarksideError(f"{root / dep / SENTINEL}: missing: run `darkside download --dataset {dep}` first")
    (root / name).mkdir(parents=True, exist_ok=True)
    digests = _fetch(entry, root, settings or DownloadSettings(), progress)
    _check_manual(entry, root)
    return atomic_write_json(root / name / SENTINEL, {"dataset": name, "files": digests})


def prepare_dataset(name: str, raw_root: str | Path, prepared_root: str | Path) -> Path:
    """Import ``<raw_root>/<name>`` into ``<prepared_root>/<name>`` (manifest, ground truth); return it."""
    entry, root = get_entry(name), Path(raw_root)
    _check_manual(entry, root)
    return entry.prepare(root, Path(prepared_root) / name)

