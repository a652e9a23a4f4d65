"""Revisited Oxford / Paris (``roxford5k``, ``rparis6k``): a jpg folder and ``gnd_<name>.pkl``.

Native layout (``data/raw/<name>/``)::

    jpg/**/<name>.jpg          oxbuild_images-v1.tgz / paris_{1,2}-v1.tgz (nesting varies)
    gnd_<name>.pkl             {imlist, qimlist, gnd: [{bbx, easy, hard, junk}]}

The revisited protocol keeps queries out of the database, so every query is its own row of
split ``query`` (id ``query:<name>`` when the same image is also a database row), cropped at
evaluation to its ``bbx``; database rows have split ``database``.
"""

from __future__ import annotations

from pathlib import Path

from darkside.data.importers._common import (
    DatasetEntry,
    RemoteFile,
    as_int_list,
    index_images,
    load_gnd,
    probe_image,
    require,
    write_prepared,
)
from darkside.data.manifest import GroundTruth, ImageRecord, Query
from darkside.errors import DarksideError


def _landmark(stem: str) -> str:
    """'all_souls_000013' -> 'all_souls', 'paris_louvre_000012' -> 'paris_louvre' (scene hint only)."""
    head, _, tail = stem.rpartition("_")
    return head if head and tail.isdigit() else stem


def _bbox(value: object, where: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise DarksideError(f"{where}: expected bbx [x1, y1, x2, y2]") from None
    return x1, y1, x2, y2


def import_revisited(image_dir: str | Path, gnd_pkl: str | Path, out_dir: str | Path, name: str) -> Path:
    """Database rows (split ``database``) + query rows (split ``query``), protocol ``revisited``."""
    images, gnd_path = Path(image_dir), Path(gnd_pkl)
    imlist, qimlist, gnd = load_gnd(gnd_path)
    files = index_images(images)

    def record(stem: str, image_id: str, split: str) -> ImageRecord:
        img = files.get(stem)
        if img is None:
            raise DarksideError(f"{images}: image {stem}.jpg listed in {gnd_path.name} not found")
        w, h = probe_image(img)
        scene = _landmark(stem)
        return ImageRecord(img.relative_to(images).as_posix(), image_id, split, "other", scene, scene, w, h)

    records = [record(stem, stem, "database") for stem in imlist]
    db_ids = set(imlist)
    queries = []
    for i, (q, entry) in enumerate(zip(qimlist, gnd, strict=True)):
        where = f"{gnd_path}: gnd[{i}]"
        if not isinstance(entry, dict) or not {"easy", "hard", "junk", "bbx"} <= set(entry):
            raise DarksideError(f"{where}: expected a dict with bbx, easy, hard, junk")
        qid = f"query:{q}" if q in db_ids else q
        records.append(record(q, qid, "query"))
        ids = {k: [imlist[j] for j in as_int_list(entry[k], f"{where}.{k}")] for k in ("easy", "hard", "junk")}
        queries.append(Query(qid, positives=ids["easy"] + ids["hard"], junk=ids["junk"], easy=ids["easy"],
                             hard=ids["hard"], bbox=_bbox(entry["bbx"], f"{where}.bbx")))
    gt = GroundTruth(protocol="revisited", queries=queries, database_split="database")
    return write_prepared(out_dir, name, records, gt, images, source=f"revisitop {gnd_path.name}",
                          metadata={"counts": {"database": len(imlist), "queries": len(qimlist)}})


def prepare_roxford5k(raw_root: Path, out_dir: Path) -> Path:
    """Registry entry point for ``roxford5k``."""
    raw = Path(raw_root) / "roxford5k"
    images = require(raw / "jpg", "oxbuild_images-v1.tgz extracted")
    return import_revisited(images, raw / "gnd_roxford5k.pkl", out_dir, "roxford5k")


def prepare_rparis6k(raw_root: Path, out_dir: Path) -> Path:
    """Registry entry point for ``rparis6k``."""
    raw = Path(raw_root) / "rparis6k"
    images = require(raw / "jpg", "paris_1-v1.tgz and paris_2-v1.tgz extracted")
    return import_revisited(images, raw / "gnd_rparis6k.pkl", out_dir, "rparis6k")


_CMP = "http://cmp.felk.cvut.cz/cnnimageretrieval/data"
#: the datasets this module imports (darkside.data.registry collects them)
DATASETS = (
    DatasetEntry(
        "roxford5k", prepare_roxford5k,
        "Flickr images (research use); VGG links reported dead at times: Kaggle "
                "skylord/oxbuildings (account needed) as fallback",
        "about 1.8 GB (unverified)", "jpg/**/<name>.jpg, gnd_roxford5k.pkl",
        files=(
            RemoteFile("https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/oxbuild_images-v1.tgz", None, "jpg"),
            RemoteFile(f"{_CMP}/test/roxford5k/gnd_roxford5k.pkl"),
        ),
        manual="if the image archive cannot be downloaded, extract Oxford 5k images into data/raw/roxford5k/jpg/",
    ),
    DatasetEntry(
        "rparis6k", prepare_rparis6k, "as roxford5k", "about 2.5 GB (unverified)",
        "jpg/paris_1/**, jpg/paris_2/**, gnd_rparis6k.pkl",
        files=(
            RemoteFile("https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/paris_1-v1.tgz", None, "jpg/paris_1"),
            RemoteFile("https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/paris_2-v1.tgz", None, "jpg/paris_2"),
            RemoteFile(f"{_CMP}/test/rparis6k/gnd_rparis6k.pkl"),
        ),
        manual="if the image archives cannot be downloaded, extract Paris 6k images into data/raw/rparis6k/jpg/",
    ),
)
