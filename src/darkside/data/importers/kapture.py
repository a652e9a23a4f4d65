"""Kapture datasets (Aachen Day-Night v1.1, RobotCar Seasons) for localization.

A kapture folder holds ``sensors/sensors.txt`` (``id, name, type, params...``: for a camera the
params start with the model, width, height), ``sensors/records_camera.txt`` (``timestamp,
device_id, image_path``), ``sensors/trajectories.txt`` (``timestamp, device_id, qw, qx, qy, qz,
tx, ty, tz``, world-to-device) and optionally ``sensors/rigs.txt`` (``rig_id, sensor_id, qw, qx,
qy, qz, tx, ty, tz``, rig-to-sensor); images live in ``sensors/records_data/``.

Each kapture folder found below the raw dataset folder becomes one part: folders whose path
says ``mapping`` give split ``database`` (with poses), ``query`` folders give split ``query``
(poses only where the files have them). The query ground truth of Aachen v1.1 and RobotCar
Seasons is NOT public: ``dataset.json`` says so, queries carry no positives, and results are
scored by uploading the exported poses to visuallocalization.net.

Each entry point also declares in ``dataset.json``'s ``metadata`` how the server names the images
(:mod:`darkside.evaluate.ltvl`): Aachen ``{"ltvl_style": "Default"}`` (the file name), RobotCar Seasons
``{"ltvl_style": "RobotCar_Seasons", "ltvl_cameras": ["rear"]}`` (``rear/<timestamp>.jpg``, rear camera only).
The import checks what that needs of the kapture data: where a camera is named, the folder an image sits in is its
sensor id (kapture's exporter prepends the sensor id, the suite reads the folder), and no two queries share a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkside.data.cameras import sensor_camera
from darkside.data.importers._common import DatasetEntry, RemoteFile, probe_image, write_prepared
from darkside.data.manifest import GroundTruth, ImageRecord, Query
from darkside.errors import DarksideError
from darkside.evaluate.ltvl import CAMERAS_KEY, STYLE_KEY, benchmark_names, ltvl_style
from darkside.geometry import compose_poses

Pose = tuple[float, float, float, float, float, float, float]

GT_NOTE = (
    "query ground-truth poses are not public: export the estimated poses in the LTVL2020 format "
    "(name qw qx qy qz tx ty tz, world-to-camera) and submit them to visuallocalization.net"
)


@dataclass(frozen=True)
class KapturePart:
    """One kapture folder and the split/domain its images get."""

    root: Path
    split: str  # database / query
    domain: str  # default domain (refined from the image path, see :func:`domain_of`)


def read_kapture_table(path: Path, min_fields: int) -> list[list[str]]:
    """Rows of a kapture text file: comma-separated, '#' comments, fields stripped."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < min_fields:
            raise DarksideError(f"{path}:{n}: expected at least {min_fields} comma-separated fields")
        rows.append(fields)
    return rows


def _pose(fields: list[str], path: Path) -> Pose:
    try:
        values = tuple(float(v) for v in fields[:7])
    except ValueError:
        raise DarksideError(f"{path}: pose fields must be numbers ({', '.join(fields[:7])})") from None
    return values  # type: ignore[return-value]


def compose(first: Pose, then: Pose) -> Pose:
    """Pose of ``then`` after ``first``: world->rig followed by rig->camera gives world->camera."""
    return tuple(float(v) for v in compose_poses(np.array(first), np.array(then)))  # type: ignore[return-value]


def read_poses(root: Path) -> dict[tuple[str, str], Pose]:
    """(timestamp, camera id) -> world-to-camera pose, through rigs where the trajectory is per rig."""
    sensors = root / "sensors"
    traj_path = sensors / "trajectories.txt"
    if not traj_path.is_file():
        return {}
    traj = {(r[0], r[1]): _pose(r[2:9], traj_path) for r in read_kapture_table(traj_path, 9)}
    rigs_path = sensors / "rigs.txt"
    if rigs_path.is_file():
        for rig, cam, *rest in read_kapture_table(rigs_path, 9):
            rig_to_cam = _pose(rest, rigs_path)
            for (ts, dev), world_to_rig in list(traj.items()):
                if dev == rig and (ts, cam) not in traj:
                    traj[(ts, cam)] = compose(world_to_rig, rig_to_cam)
    return traj


def read_cameras(root: Path) -> dict[str, tuple[tuple[int, int], str | None]]:
    """camera id -> ((width, height), the manifest's ``camera`` text or None) from ``sensors.txt``."""
    path = root / "sensors" / "sensors.txt"
    cameras: dict[str, tuple[tuple[int, int], str | None]] = {}
    if not path.is_file():
        return cameras
    for row in read_kapture_table(path, 3):
        if row[2] == "camera" and len(row) >= 6:
            try:
                size = (int(float(row[4])), int(float(row[5])))
            except ValueError:
                continue
            cameras[row[0]] = (size, sensor_camera(row[3:]))
    return cameras


def domain_of(image_path: str, default: str) -> str:
    """Lighting from the kapture image path (RobotCar conditions, Aachen ``query/night``), else default."""
    low = image_path.lower()
    if "night" in low:
        return "night"
    if any(k in low for k in ("dusk", "dawn", "sunset")):
        return "sunset"
    if "day" in low:
        return "day"
    return default


def find_parts(raw_dir: Path) -> list[KapturePart]:
    """Every kapture folder below ``raw_dir`` (one holding ``sensors/records_camera.txt``)."""
    parts = []
    for rec in sorted(raw_dir.rglob("sensors/records_camera.txt")):
        root = rec.parent.parent
        rel = root.relative_to(raw_dir).as_posix().lower()
        split = "query" if "query" in rel else "database"
        parts.append(KapturePart(root, split, "night" if "night" in rel else "day"))
    if not parts:
        raise DarksideError(f"{raw_dir}: no kapture folder (sensors/records_camera.txt) found")
    return parts


#: what the benchmarks' servers expect of the poses file's names (module docstring)
AACHEN_LTVL = {STYLE_KEY: "Default"}
ROBOTCAR_LTVL = {STYLE_KEY: "RobotCar_Seasons", CAMERAS_KEY: ["rear"]}


def import_kapture(parts: list[KapturePart], base_dir: str | Path, out_dir: str | Path, name: str,
                   source: str = "", benchmark: dict[str, object] | None = None) -> Path:
    """Prepared localization dataset: ``database`` rows with poses, ``query`` rows, protocol ``localization``.

    Image paths are relative to ``base_dir`` (the common parent of the parts); image ids are
    the kapture image names (what kapture-localization's pairs files name). Sizes come from ``sensors.txt``; the
    image header is read only where the camera has no size (or the images are present anyway
    and the camera is unknown). ``benchmark`` (``ltvl_style``, ``ltvl_cameras``) is written into the metadata.
    """
    base = Path(base_dir)
    benchmark = dict(benchmark or {})
    style, cameras = ltvl_style(benchmark)
    # kapture's exporter prepends the sensor id where the suite reads the image's folder: they must agree
    camera_folders = style == "RobotCar_Seasons" or cameras is not None
    records: list[ImageRecord] = []
    seen: set[str] = set()
    counts: dict[str, int] = {}
    for part in parts:
        rec_path = part.root / "sensors" / "records_camera.txt"
        cameras, poses = read_cameras(part.root), read_poses(part.root)
        for ts, cam, image_path, *_ in read_kapture_table(rec_path, 3):
            if image_path in seen:
                raise DarksideError(f"{rec_path}: image {image_path!r} appears twice in the dataset")
            seen.add(image_path)
            if camera_folders and Path(image_path).parent.name != cam:
                raise DarksideError(f"{rec_path}: image {image_path!r} of camera {cam!r} is not in a {cam!r} folder "
                                    "(the benchmark names an image <camera>/<file name>)")
            file = part.root / "sensors" / "records_data" / image_path
            (w, h), intrinsics = cameras.get(cam, ((0, 0), None))
            if cam not in cameras and file.is_file():
                w, h = probe_image(file)
            elif cam not in cameras:
                raise DarksideError(f"{rec_path}: camera {cam!r} has no size in sensors.txt and {file} is missing")
            records.append(ImageRecord(file.relative_to(base).as_posix(), image_path, part.split,
                                       domain_of(image_path, part.domain), cam, cam, w, h, poses.get((ts, cam)),
                                       intrinsics))
            key = f"{part.split}_{records[-1].domain}"
            counts[key] = counts.get(key, 0) + 1
    if not any(r.split == "database" for r in records):
        raise DarksideError(f"{base}: no mapping (database) images found")
    queries = [Query(r.image_id) for r in records if r.split == "query"]
    names = [n for n in benchmark_names(benchmark, [r for r in records if r.split == "query"]) if n is not None]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[0]
        raise DarksideError(f"{base}: two query images would be named {dup!r} in the benchmark's poses file")
    counts["query_with_pose"] = sum(r.split == "query" and r.pose is not None for r in records)
    counts["database_with_pose"] = sum(r.split == "database" and r.pose is not None for r in records)
    gt = GroundTruth(protocol="localization", queries=queries, database_split="database")
    meta = {"counts": counts, "query_ground_truth": "not public", "note": GT_NOTE, **benchmark}
    return write_prepared(out_dir, name, records, gt, base, source=source or "kapture", metadata=meta)


def prepare_aachen(raw_root: Path, out_dir: Path) -> Path:
    """Registry entry point for ``aachen-v11``."""
    raw = Path(raw_root) / "aachen-v11"
    return import_kapture(find_parts(raw), raw, out_dir, "aachen-v11", source="Aachen Day-Night v1.1 (kapture)",
                          benchmark=AACHEN_LTVL)


def prepare_robotcar(raw_root: Path, out_dir: Path) -> Path:
    """Registry entry point for ``robotcar-seasons``."""
    raw = Path(raw_root) / "robotcar-seasons"
    return import_kapture(find_parts(raw), raw, out_dir, "robotcar-seasons", source="RobotCar Seasons v1 (kapture)",
                          benchmark=ROBOTCAR_LTVL)


_VL = "https://data.ciirc.cvut.cz/public/projects/2020VisualLocalization/kapture"
_NAVER = "https://download.europe.naverlabs.com/kapture"
#: the datasets this module imports (darkside.data.registry collects them)
DATASETS = (
    DatasetEntry(
        "aachen-v11", prepare_aachen, f"non-commercial, see {_VL}/Aachen-Day-Night-v1.1_LICENSE.txt",
        "several GB (unverified)", "mapping/, query_day/, query_night/ kapture folders",
        files=(
            RemoteFile(f"{_VL}/Aachen-Day-Night-v1.1_mapping.tar.gz",
                       "f33b706baaaeecc11821112c9a557971c41114e43dd6f44df62ad51d287c231c", "mapping"),
            RemoteFile(f"{_VL}/Aachen-Day-Night-v1.1_query_day.tar.gz",
                       "66c8bd81cfc4331ce987b7a7d001115106b94d9b455a07d6a7a83b0d961aaaf3", "query_day"),
            RemoteFile(f"{_VL}/Aachen-Day-Night-v1.1_query_night.tar.gz",
                       "443a9157c02ab35f17208f6d65b624533a0c8ccae38351e185f166b00fe8ac19", "query_night"),
        ),
        notes="query ground truth not public: results go to visuallocalization.net",
    ),
    DatasetEntry(
        "robotcar-seasons", prepare_robotcar, "non-commercial (Oxford RobotCar terms), see the kapture index",
        "tens of GB with images (unverified)", "mapping/, query/ kapture folders; images in */sensors/records_data",
        files=(
            RemoteFile(f"{_NAVER}/RobotCar_Seasons-v1_mapping_wo_images.tar.gz", None, "mapping"),
            RemoteFile(f"{_NAVER}/RobotCar_Seasons-v1_query_wo_images.tar.gz", None, "query"),
        ),
        manual="the v1 kapture archives come without images: extract the RobotCar Seasons images "
                "(https://data.ciirc.cvut.cz/public/projects/2020VisualLocalization/RobotCar-Seasons/) so that each "
                "kapture image path exists under data/raw/robotcar-seasons/{mapping,query}/sensors/records_data/",
        notes="query ground truth not public: results go to visuallocalization.net (rear camera only)",
    ),
)
