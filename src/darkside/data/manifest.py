"""The manifest schema every dataset is converted to, and its validating loader.

A prepared dataset is a folder ``data/prepared/<name>/`` with three files:

``dataset.json``
    ``{"name", "image_root", "source"}``: ``image_root`` is relative to the folder (or absolute); an optional
    ``"metadata"`` object says what a dataset declares about itself (counts, caveats, the benchmark's image-name
    style ``ltvl_style`` / ``ltvl_cameras``: see :mod:`darkside.evaluate.ltvl`), read into :attr:`Manifest.metadata`.
``manifest.csv``
    One row per image, columns :data:`COLUMNS` (pose columns may be empty).
``groundtruth.json``
    Query ground truth and training pairs, see :class:`GroundTruth`. Never a pickle.

Everything downstream of ``prepare_*`` reads only these files.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkside.atomic import atomic_path, atomic_write_json
from darkside.data.cameras import parse_camera
from darkside.errors import ManifestError

#: Required columns, in file order.
COLUMNS: tuple[str, ...] = ("path", "image_id", "split", "domain", "cluster", "place", "width", "height")
#: Optional camera pose, world-to-camera (kapture / visuallocalization.net convention).
POSE_COLUMNS: tuple[str, ...] = ("qw", "qx", "qy", "qz", "tx", "ty", "tz")
#: Optional camera intrinsics: a COLMAP/kapture camera model and its parameters after width and height,
#: space-separated (e.g. ``PINHOLE 120 120 47.5 35.5``; see :mod:`darkside.data.cameras`). Written only
#: by datasets that have them, so other manifests keep their bytes.
CAMERA_COLUMN = "camera"
DOMAINS: frozenset[str] = frozenset({"day", "sunset", "night", "other"})
PROTOCOLS: frozenset[str] = frozenset({"revisited", "tokyo", "localization", "cross_domain", "training"})


@dataclass(frozen=True)
class ImageRecord:
    """One manifest row."""

    path: str  # relative to the dataset's image root
    image_id: str
    split: str  # e.g. train / val / whiten / database / query / test
    domain: str  # day / sunset / night / other
    cluster: str  # scene or 3D-model id: positives share it, negatives differ
    place: str  # place id (Tokyo: several scenes, i.e. directions, per place)
    width: int
    height: int
    pose: tuple[float, ...] | None = None  # (qw, qx, qy, qz, tx, ty, tz), world-to-camera
    camera: str | None = None  # intrinsics "MODEL p1 p2 ...", see darkside.data.cameras


@dataclass
class Manifest:
    """A validated manifest: records in file order plus where their images live."""

    name: str
    root: Path  # the dataset folder
    image_root: Path
    records: list[ImageRecord]
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)  # dataset.json's "metadata" ({} when absent)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {r.image_id: i for i, r in enumerate(self.records)}

    def __len__(self) -> int:
        return len(self.records)

    def index(self, image_id: str) -> int:
        """Row number of ``image_id``."""
        try:
            return self._index[image_id]
        except KeyError:
            raise ManifestError(f"{self.root / 'manifest.csv'}: unknown image id {image_id!r}") from None

    def image_path(self, record: ImageRecord) -> Path:
        return self.image_root / record.path

    def select(self, split: str | None = None, domain: str | None = None) -> list[ImageRecord]:
        """Records of a split and/or domain, in manifest order."""
        return [r for r in self.records
                if (split is None or r.split == split) and (domain is None or r.domain == domain)]

    @property
    def ids(self) -> list[str]:
        return [r.image_id for r in self.records]


@dataclass
class Query:
    """One query of a retrieval or localization protocol (ids refer to manifest rows)."""

    query: str
    positives: list[str] = field(default_factory=list)  # 'ok' (tokyo) or easy+hard (revisited)
    junk: list[str] = field(default_factory=list)
    easy: list[str] = field(default_factory=list)
    hard: list[str] = field(default_factory=list)
    bbox: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2 in query pixels


@dataclass
class GroundTruth:
    """Query ground truth and training pairs of a dataset.

    ``protocol``: ``revisited`` (easy/hard/junk, queries cropped to ``bbox``, database = rows of
    split ``database``), ``tokyo`` (every image queries all; ``positives``/``junk``),
    ``localization`` (queries of split ``query`` against split ``database``, scored with poses),
    ``cross_domain`` (DaCo's Recall@K: ``pairs[database_split]`` are the evaluation pairs (domain B, domain A)
    in DaCo's index order, the other splits' pairs train), ``training`` (no queries; ``pairs`` per split and
    optional ``day_night_pairs``).
    """

    protocol: str
    queries: list[Query] = field(default_factory=list)
    database_split: str | None = None  # None: every manifest row is in the database
    pairs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # split -> (query, positive)
    day_night_pairs: list[tuple[str, str]] = field(default_factory=list)  # (night, day) positives

    def evaluation_pair_ids(self) -> list[str]:
        """``cross_domain``: the evaluation pairs' image ids, every domain-A image then every domain-B one, in pair
        order (the rows of a cross-domain descriptor file)."""
        pairs = self.pairs.get(self.database_split or "", [])
        return [a for _, a in pairs] + [b for b, _ in pairs]

    def to_json(self) -> dict[str, Any]:
        queries = []
        for q in self.queries:
            entry: dict[str, Any] = {"query": q.query, "junk": list(q.junk)}
            if self.protocol == "revisited":
                entry["easy"], entry["hard"] = list(q.easy), list(q.hard)
            else:
                entry["positives"] = list(q.positives)
            entry["bbox"] = list(q.bbox) if q.bbox is not None else None
            queries.append(entry)
        return {
            "protocol": self.protocol,
            "database_split": self.database_split,
            "queries": queries,
            "pairs": {k: [list(p) for p in v] for k, v in self.pairs.items()},
            "day_night_pairs": [list(p) for p in self.day_night_pairs],
        }


def _gt_error(path: Path, where: str, msg: str) -> ManifestError:
    return ManifestError(f"{path}: {where}: {msg}")


def parse_groundtruth(obj: Any, path: Path, known_ids: set[str]) -> GroundTruth:
    """Validate a decoded ``groundtruth.json`` against the manifest's ids."""
    if not isinstance(obj, dict):
        raise _gt_error(path, "top level", "expected an object")
    unknown = set(obj) - {"protocol", "database_split", "queries", "pairs", "day_night_pairs"}
    if unknown:
        raise _gt_error(path, sorted(unknown)[0], "unknown key")
    protocol = obj.get("protocol")
    if protocol not in PROTOCOLS:
        raise _gt_error(path, "protocol", f"{protocol!r} is not one of {sorted(PROTOCOLS)}")

    def ids(value: Any, where: str) -> list[str]:
        if not isinstance(value, list):
            raise _gt_error(path, where, "expected a list of image ids")
        for v in value:
            if v not in known_ids:
                raise _gt_error(path, where, f"image id {v!r} is not in the manifest")
        return [str(v) for v in value]

    queries: list[Query] = []
    for i, q in enumerate(obj.get("queries", [])):
        where = f"queries[{i}]"
        if not isinstance(q, dict) or "query" not in q:
            raise _gt_error(path, where, "expected an object with a 'query' id")
        qid = ids([q["query"]], f"{where}.query")[0]
        bbox = q.get("bbox")
        if bbox is not None:
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
                raise _gt_error(path, f"{where}.bbox", "expected [x1, y1, x2, y2]")
            bbox = tuple(float(v) for v in bbox)
        if protocol == "revisited":
            for key in ("easy", "hard", "junk"):
                if key not in q:
                    raise _gt_error(path, f"{where}.{key}", "missing (revisited protocol needs easy, hard, junk)")
            queries.append(Query(qid, junk=ids(q["junk"], f"{where}.junk"), easy=ids(q["easy"], f"{where}.easy"),
                                 hard=ids(q["hard"], f"{where}.hard"), bbox=bbox,
                                 positives=ids(q["easy"], "") + ids(q["hard"], "")))
        else:
            if "positives" not in q:
                raise _gt_error(path, f"{where}.positives", "missing")
            queries.append(Query(qid, positives=ids(q["positives"], f"{where}.positives"),
                                 junk=ids(q.get("junk", []), f"{where}.junk"), bbox=bbox))
    def pair_list(plist: Any, where: str, shape: str) -> list[tuple[str, str]]:
        out = []
        for j, p in enumerate(plist):
            if not (isinstance(p, list) and len(p) == 2):
                raise _gt_error(path, f"{where}[{j}]", f"expected {shape}")
            a, b = ids(p, f"{where}[{j}]")
            out.append((a, b))
        return out

    pairs = {split: pair_list(plist, f"pairs.{split}", "[query, positive]")
             for split, plist in (obj.get("pairs") or {}).items()}
    dn = pair_list(obj.get("day_night_pairs") or [], "day_night_pairs", "[night, day]")
    if protocol == "cross_domain" and obj.get("database_split") not in pairs:
        raise _gt_error(path, "database_split", f"{obj.get('database_split')!r} names no split of 'pairs' "
                        f"(cross_domain scores the pairs of that split; splits: {sorted(pairs)})")
    return GroundTruth(protocol=protocol, queries=queries, database_split=obj.get("database_split"),
                       pairs=pairs, day_night_pairs=dn)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise ManifestError(f"{path}: missing (run the dataset's prepare step)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _parse_row(row: dict[str, str], path: Path, line: int) -> ImageRecord:
    for col in COLUMNS:
        if not row.get(col, ""):
            raise ManifestError(f"{path}:{line}: empty value in column {col!r}")
    if row["domain"] not in DOMAINS:
        raise ManifestError(f"{path}:{line}: unknown domain {row['domain']!r} (expected one of {sorted(DOMAINS)})")
    try:
        width, height = int(row["width"]), int(row["height"])
    except ValueError:
        raise ManifestError(f"{path}:{line}: width/height must be integers") from None
    pose = None
    values = [row.get(c, "") for c in POSE_COLUMNS]
    if any(values):
        try:
            pose = tuple(float(v) for v in values)
        except ValueError:
            raise ManifestError(f"{path}:{line}: pose columns must all be numbers or all empty") from None
    camera = row.get(CAMERA_COLUMN) or None
    if camera is not None:
        try:
            parse_camera(camera, width, height)
        except ManifestError as exc:
            raise ManifestError(f"{path}:{line}: column {CAMERA_COLUMN!r}: {exc}") from None
    return ImageRecord(row["path"], row["image_id"], row["split"], row["domain"], row["cluster"], row["place"],
                       width, height, pose, camera)


def load_manifest(dataset_dir: str | Path, check_files: bool = True) -> Manifest:
    """Load and validate ``dataset.json`` + ``manifest.csv`` of a prepared dataset.

    Raises :class:`ManifestError` naming the file and line for missing columns, unknown
    domains, duplicate ids and (with ``check_files``) image paths that do not exist.
    """
    root = Path(dataset_dir)
    meta_path, csv_path = root / "dataset.json", root / "manifest.csv"
    for p in (meta_path, csv_path):
        if not p.is_file():
            raise ManifestError(f"{p}: missing (run the dataset's prepare step)")
    meta = _read_json(meta_path)
    for key in ("name", "image_root"):
        if key not in meta:
            raise ManifestError(f"{meta_path}: missing key {key!r}")
    image_root = Path(meta["image_root"])
    if not image_root.is_absolute():
        image_root = root / image_root
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ManifestError(f"{csv_path}: missing column(s) {', '.join(missing)}")
        records = [_parse_row(row, csv_path, i + 2) for i, row in enumerate(reader)]
    seen: set[str] = set()
    for i, r in enumerate(records):
        if r.image_id in seen:
            raise ManifestError(f"{csv_path}:{i + 2}: duplicate image id {r.image_id!r}")
        seen.add(r.image_id)
        if check_files and not (image_root / r.path).is_file():
            raise ManifestError(f"{csv_path}:{i + 2}: image {image_root / r.path} does not exist")
    extra = meta.get("metadata") or {}
    if not isinstance(extra, dict):
        raise ManifestError(f"{meta_path}: 'metadata' must be an object")
    return Manifest(name=meta["name"], root=root, image_root=image_root, records=records,
                    source=meta.get("source", ""), metadata=extra)


def load_groundtruth(dataset_dir: str | Path, manifest: Manifest | None = None) -> GroundTruth:
    """Load and validate ``groundtruth.json`` against the dataset's manifest."""
    root = Path(dataset_dir)
    manifest = manifest or load_manifest(root, check_files=False)
    path = root / "groundtruth.json"
    return parse_groundtruth(_read_json(path), path, set(manifest.ids))


def write_dataset(dataset_dir: str | Path, name: str, records: list[ImageRecord], groundtruth: GroundTruth,
                  image_root: str = "images", source: str = "", metadata: dict[str, Any] | None = None) -> Path:
    """Write ``dataset.json``, ``manifest.csv`` and ``groundtruth.json`` atomically; return the folder.

    ``metadata`` goes into ``dataset.json`` under ``"metadata"`` (left out when empty, so datasets without any keep
    their bytes)."""
    root = Path(dataset_dir)
    root.mkdir(parents=True, exist_ok=True)
    parse_groundtruth(groundtruth.to_json(), root / "groundtruth.json", {r.image_id for r in records})
    with atomic_path(root / "manifest.csv") as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        cameras = any(r.camera is not None for r in records)
        writer.writerow(COLUMNS + POSE_COLUMNS + ((CAMERA_COLUMN,) if cameras else ()))
        for r in records:
            pose = [repr(float(v)) for v in r.pose] if r.pose is not None else [""] * len(POSE_COLUMNS)
            camera = [r.camera or ""] if cameras else []
            writer.writerow([r.path, r.image_id, r.split, r.domain, r.cluster, r.place, r.width, r.height, *pose,
                             *camera])
    atomic_write_json(root / "groundtruth.json", groundtruth.to_json())
    meta: dict[str, Any] = {"name": name, "image_root": image_root, "source": source, "images": len(records)}
    if metadata:
        meta["metadata"] = metadata
    atomic_write_json(root / "dataset.json", meta)
    return root
