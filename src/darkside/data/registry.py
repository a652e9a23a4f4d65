"""Every real dataset the paper preset uses: where it comes from, how it is checked and imported.

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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkside.atomic import atomic_write_json, atomic_write_text
from darkside.data.archive import extract
from darkside.data.download import DownloadSettings, download, sha256_file
from darkside.data.importers import get_importer
from darkside.errors import DarksideError

SENTINEL = ".downloaded"
DIGESTS_FILE = "DIGESTS.json"

_CMP = "http://cmp.felk.cvut.cz/cnnimageretrieval/data"
_GANDTR = "http://ptak.felk.cvut.cz/personal/jenicto2/download/iccv23_gan"
_VL = "https://data.ciirc.cvut.cz/public/projects/2020VisualLocalization/kapture"
_NAVER = "https://download.europe.naverlabs.com/kapture"


@dataclass(frozen=True)
class RemoteFile:
    """One published file: saved as ``<raw>/<filename>``; archives extracted into ``<raw>/<extract_to>``."""

    url: str
    filename: str
    sha256: str | None = None
    extract_to: str | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset: its files, licence, size, native layout and importer."""

    name: str
    importer: str
    licence: str
    size: str
    layout: str
    files: tuple[RemoteFile, ...] = ()
    requires: tuple[str, ...] = ()  # datasets whose raw files the importer also reads
    manual: str = ""  # what to place where, for registration-only / unpublished data
    manual_check: tuple[str, ...] = ()  # any of these paths (relative to <raw>) existing = placed
    notes: str = ""


DATASETS: dict[str, DatasetEntry] = {
    e.name: e
    for e in (
        DatasetEntry(
            "sfm120k",
            "sfm120k",
            "no explicit licence (Flickr images, research use); no registration",
            "tens of GB (ims.tar.gz; cirtorch issue #52 says >50 GB)",
            "ims/<cid[-2:]>/<cid[-4:-2]>/<cid[-6:-4]>/<cid>, retrieval-SfM-120k.pkl, train_day.txt, train_night.txt",
            files=(
                RemoteFile(f"{_CMP}/train/ims/ims.tar.gz", "ims.tar.gz", None, "ims"),
                RemoteFile(f"{_CMP}/train/dbs/retrieval-SfM-120k.pkl", "retrieval-SfM-120k.pkl"),
                RemoteFile(f"{_GANDTR}/train_day.txt", "train_day.txt"),
                RemoteFile(f"{_GANDTR}/train_night.txt", "train_night.txt"),
            ),
            notes="91,642 train and 6,403 val images; day/night labels from gandtr's lists",
        ),
        DatasetEntry(
            "sfm120k-whiten",
            "sfm120k-whiten",
            "as sfm120k",
            "small (pickle); images shared with sfm120k",
            "retrieval-SfM-120k-whiten.pkl (images from ../sfm120k/ims)",
            files=(RemoteFile(f"{_CMP}/train/dbs/retrieval-SfM-120k-whiten.pkl", "retrieval-SfM-120k-whiten.pkl"),),
            requires=("sfm120k",),
        ),
        DatasetEntry(
            "sfm120k-daynight",
            "gandtr-lists",
            "gandtr release (MIT code); images as sfm120k",
            "none of its own (lists and images from sfm120k)",
            "../sfm120k/train_day.txt, train_night.txt, ims/",
            requires=("sfm120k",),
            notes="generator-training lists after the 512 px minimum side filter (paper: 86,385 day, 10,039 night)",
        ),
        DatasetEntry(
            "sfm120k-nd",
            "sfm120k-nd",
            "as sfm120k; the pair list is yours",
            "small (text)",
            "pairs.csv: night_cid,day_cid per line (images from ../sfm120k/ims)",
            requires=("sfm120k",),
            manual="Retrieval-SfM N/D is not published as a file: place a pair list at data/raw/sfm120k-nd/pairs.csv "
            "(one 'night_cid,day_cid' per line; '#' comments and a 'night,day' header allowed)",
            manual_check=("pairs.csv", "pairs.txt"),
        ),
        DatasetEntry(
            "tokyo247",
            "tokyo247",
            "no explicit licence (research use); no registration",
            "1,125 phone JPEGs + CSVs (size unverified)",
            "247query_v3/**/NNNNN.jpg + NNNNN.csv, gnd_247tokyo1k.pkl",
            files=(
                RemoteFile(
                    "http://www.ok.ctrl.titech.ac.jp/~torii/project/247/download/247query_v3.zip",
                    "247query_v3.zip",
                    None,
                    "247query_v3",
                ),
                RemoteFile(
                    "http://cmp.felk.cvut.cz/daynightretrieval/download/data/gnd_247tokyo1k.pkl", "gnd_247tokyo1k.pkl"
                ),
            ),
            notes="mirror of the images: https://data.ciirc.cvut.cz/public/projects/2015netVLAD/Tokyo247/queries/"
            "247query_v3.zip",
        ),
        DatasetEntry(
            "roxford5k",
            "roxford5k",
            "Flickr images (research use); VGG links reported dead at times: Kaggle "
            "skylord/oxbuildings (account needed) as fallback",
            "about 1.8 GB (unverified)",
            "jpg/**/<name>.jpg, gnd_roxford5k.pkl",
            files=(
                RemoteFile(
                    "https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/oxbuild_images-v1.tgz",
                    "oxbuild_images-v1.tgz",
                    None,
                    "jpg",
                ),
                RemoteFile(f"{_CMP}/test/roxford5k/gnd_roxford5k.pkl", "gnd_roxford5k.pkl"),
            ),
            manual="if the image archive cannot be downloaded, extract Oxford 5k images into data/raw/roxford5k/jpg/",
        ),
        DatasetEntry(
            "rparis6k",
            "rparis6k",
            "as roxford5k",
            "about 2.5 GB (unverified)",
            "jpg/paris_1/**, jpg/paris_2/**, gnd_rparis6k.pkl",
            files=(
                RemoteFile(
                    "https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/paris_1-v1.tgz",
                    "paris_1-v1.tgz",
                    None,
                    "jpg/paris_1",
                ),
                RemoteFile(
                    "https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/paris_2-v1.tgz",
                    "paris_2-v1.tgz",
                    None,
                    "jpg/paris_2",
                ),
                RemoteFile(f"{_CMP}/test/rparis6k/gnd_rparis6k.pkl", "gnd_rparis6k.pkl"),
            ),
            manual="if the image archives cannot be downloaded, extract Paris 6k images into data/raw/rparis6k/jpg/",
        ),
        DatasetEntry(
            "aachen-v11",
            "kapture-aachen",
            f"non-commercial, see {_VL}/Aachen-Day-Night-v1.1_LICENSE.txt",
            "several GB (unverified)",
            "mapping/, query_day/, query_night/ kapture folders",
            files=(
                RemoteFile(
                    f"{_VL}/Aachen-Day-Night-v1.1_mapping.tar.gz",
                    "Aachen-Day-Night-v1.1_mapping.tar.gz",
                    "f33b706baaaeecc11821112c9a557971c41114e43dd6f44df62ad51d287c231c",
                    "mapping",
                ),
                RemoteFile(
                    f"{_VL}/Aachen-Day-Night-v1.1_query_day.tar.gz",
                    "Aachen-Day-Night-v1.1_query_day.tar.gz",
                    "66c8bd81cfc4331ce987b7a7d001115106b94d9b455a07d6a7a83b0d961aaaf3",
                    "query_day",
                ),
                RemoteFile(
                    f"{_VL}/Aachen-Day-Night-v1.1_query_night.tar.gz",
                    "Aachen-Day-Night-v1.1_query_night.tar.gz",
                    "443a9157c02ab35f17208f6d65b624533a0c8ccae38351e185f166b00fe8ac19",
                    "query_night",
                ),
            ),
            notes="query ground truth not public: results go to visuallocalization.net",
        ),
        DatasetEntry(
            "robotcar-seasons",
            "kapture-robotcar",
            "non-commercial (Oxford RobotCar terms), see the kapture index",
            "tens of GB with images (unverified)",
            "mapping/, query/ kapture folders; images in */sensors/records_data",
            files=(
                RemoteFile(
                    f"{_NAVER}/RobotCar_Seasons-v1_mapping_wo_images.tar.gz",
                    "RobotCar_Seasons-v1_mapping_wo_images.tar.gz",
                    None,
                    "mapping",
                ),
                RemoteFile(
                    f"{_NAVER}/RobotCar_Seasons-v1_query_wo_images.tar.gz",
                    "RobotCar_Seasons-v1_query_wo_images.tar.gz",
                    None,
                    "query",
                ),
            ),
            manual="the v1 kapture archives come without images: extract the RobotCar Seasons images "
            "(https://data.ciirc.cvut.cz/public/projects/2020VisualLocalization/RobotCar-Seasons/) so that each "
            "kapture image path exists under data/raw/robotcar-seasons/{mapping,query}/sensors/records_data/",
            notes="query ground truth not public: results go to visuallocalization.net (rear camera only)",
        ),
        DatasetEntry(
            "foggy-cityscapes",
            "foggy-cityscapes",
            "Cityscapes terms: registration, non-commercial, no redistribution",
            "about 11 GB (leftImg8bit) + 30 GB (foggyDBF), unverified",
            "leftImg8bit/{train,val}/<city>/, leftImg8bit_foggyDBF/{train,val}/<city>/ (or DaCo's original/)",
            manual="register at https://www.cityscapes-dataset.com, download leftImg8bit_trainvaltest.zip and "
            "leftImg8bit_trainvaltest_foggyDBF.zip, extract both into data/raw/foggy-cityscapes/ (folders "
            "leftImg8bit/ and leftImg8bit_foggyDBF/)",
            manual_check=("leftImg8bit", "original", "domain_a"),
        ),
        DatasetEntry(
            "synthia-seqs",
            "synthia-seqs",
            "CC BY-NC-SA 3.0 (check the site); terms accepted on download",
            "several GB per sequence",
            "SYNTHIA-SEQS-XX-SUNSET/, SYNTHIA-SEQS-XX-RAINNIGHT/ (or DaCo's original/)",
            manual="download SYNTHIA-SEQS-XX-SUNSET and SYNTHIA-SEQS-XX-RAINNIGHT (DaCo: XX = 02, 05) from "
            "https://synthia-dataset.net/downloads/ and extract them into data/raw/synthia-seqs/",
            manual_check=("original", "domain_a", "SYNTHIA-SEQS-02-SUNSET", "SYNTHIA-SEQS-05-SUNSET"),
        ),
    )
}


def get_entry(name: str) -> DatasetEntry:
    """The registry entry of ``name`` (one-line error listing the known names)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DarksideError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})") from None


def _extracted_marker(raw: Path, f: RemoteFile) -> Path:
    return raw / f".{f.filename}.extracted"


def _fetch(entry: DatasetEntry, raw_root: Path, settings: DownloadSettings, progress: bool) -> dict[str, str]:
    """Download and extract every file of ``entry``; return ``{filename: sha256}``."""
    raw = raw_root / entry.name
    digests: dict[str, str] = {}
    for f in entry.files:
        marker = _extracted_marker(raw, f)
        if f.extract_to and (raw / f.extract_to).is_dir() and not marker.exists() and not (raw / f.filename).exists():
            digests[f.filename] = "placed by the user"  # manual fallback (e.g. dead image links)
            continue
        path = download(
            f.url,
            raw / f.filename,
            f.sha256,
            digests_file=raw_root / DIGESTS_FILE,
            settings=settings,
            progress=progress,
        )
        digest = sha256_file(path)
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
    return get_importer(entry.importer)(root, Path(prepared_root) / name)


def describe(name: str) -> dict[str, Any]:
    """A JSON-able summary of an entry (for ``darkside datasets`` listings and the README table)."""
    e = get_entry(name)
    return {
        "name": e.name,
        "licence": e.licence,
        "size": e.size,
        "layout": e.layout,
        "importer": e.importer,
        "files": [{"url": f.url, "sha256": f.sha256} for f in e.files],
        "requires": list(e.requires),
        "manual": e.manual,
        "notes": e.notes,
    }


def recorded_digests(raw_root: str | Path) -> dict[str, str]:
    """The digests recorded on first download (``<raw_root>/DIGESTS.json``)."""
    path = Path(raw_root) / DIGESTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
