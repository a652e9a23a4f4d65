"""Tiny copies of the paper's datasets and weight files in their exact native formats.

Shared by the importer tests and the paper preset's rehearsal (``benchmarks/rehearse_paper.py``):
the same pickles (numpy arrays inside, protocol 2, as cirtorch / revisitop wrote them), CSVs, lists,
kapture trees and archives, so what the tests read is what the rehearsal downloads. Weight files
have the published key layouts at full architecture (random values).
"""

from __future__ import annotations

import io
import math
import pickle
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from darkside.data.importers._common import cid_to_path

S2 = math.sqrt(0.5)


def working_tree(root: Path, dest: Path) -> Path:
    """Copy what a fresh clone of ``root`` plus its working tree holds (tracked and unignored files) to ``dest``."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = root / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def img(path: Path, w: int, h: int, fmt: str = "JPEG", seed: int | None = None) -> Path:
    """A ``w`` x ``h`` image; with ``seed`` a textured one (a colour of the seed plus noise), else flat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if seed is None:
        Image.new("RGB", (w, h), (90, 120, 200)).save(path, format=fmt)
        return path
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 216, 3)
    arr = np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def pkl(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


# ---------------------------------------------------------------- archives


def tar_gz(path: Path, root: Path, members: Iterable[Path] | None = None) -> Path:
    """``root``'s tree (or ``members``, paths below ``root``) as a .tar.gz named relative to ``root``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(members if members is not None else (p for p in root.rglob("*") if p.is_file()))
    with tarfile.open(path, "w:gz") as tf:
        for f in files:
            tf.add(f, arcname=f.relative_to(root).as_posix(), recursive=False)
    return path


def zip_tree(path: Path, root: Path) -> Path:
    """``root``'s tree as a .zip with names relative to ``root``'s parent (``247query_v3/...``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            zf.write(f, f.relative_to(root.parent).as_posix())
    return path


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ---------------------------------------------------------------- Retrieval-SfM-120k (cirtorch) + gandtr's lists


def sfm_db(clusters: dict[str, list[int]], seed: int = 0) -> tuple[dict, dict[str, list[str]]]:
    """cirtorch's ``retrieval-SfM-120k.pkl`` for ``{split: images per cluster}``: cids, cluster ids (numpy),
    and one (query, positive) pair per consecutive image pair of a cluster. Returns (db, {split: cids})."""
    db, cids_of = {}, {}
    n = 0
    for split, sizes in clusters.items():
        cids, cluster, q, p = [], [], [], []
        for c, size in enumerate(sizes):
            first = len(cids)
            for _ in range(size):
                cids.append(f"{n:08x}{seed:02d}")
                cluster.append(c + (1000 if split == "val" else 0))
                n += 1
            for i in range(first, first + size - 1):
                q.append(i)
                p.append(i + 1)
        db[split] = {"cids": cids, "cluster": np.array(cluster), "qidxs": q, "pidxs": np.array(p)}
        cids_of[split] = cids
    return db, cids_of


def sfm_tree(raw: Path, clusters: dict[str, list[int]], size: tuple[int, int] = (64, 48), night_every: int = 4,
             whiten: list[int] | None = None) -> dict[str, list[str]]:
    """``raw`` laid out as the registry's sfm120k download: ``ims/<cid path>``, the pickle, gandtr's
    ``train_day.txt`` / ``train_night.txt`` (every ``night_every``-th train image night, as
    ``<cid path>`` lines like gandtr's), and with ``whiten`` (images per cluster) the whitening pickle (SfM's
    cids, its own pairs)."""
    db, cids = sfm_db(clusters)
    for split, names in cids.items():
        for i, cid in enumerate(names):
            w, h = size if i % 3 else size[::-1]  # some portrait images
            img(raw / "ims" / cid_to_path(cid), w, h, seed=int(db[split]["cluster"][i]) * 7 + i % 2)
    pkl(raw / "retrieval-SfM-120k.pkl", db)
    train = cids["train"]
    night = [c for i, c in enumerate(train) if i % night_every == night_every - 1]
    (raw / "train_day.txt").write_text("".join(f"{cid_to_path(c)}\n" for c in train if c not in night))
    (raw / "train_night.txt").write_text("".join(f"{cid_to_path(c)}\n" for c in night))
    if whiten is not None:  # cirtorch's whitening pickle is one flat set (cids, qidxs, pidxs) of SfM images
        wdb, _ = sfm_db({"whiten": whiten})
        flat = wdb["whiten"]
        flat["cids"] = [c for s in cids.values() for c in s][: len(flat["cids"])]
        pkl(raw / "retrieval-SfM-120k-whiten.pkl", flat)
    return cids


def nd_pairs(path: Path, cids: list[str], n: int) -> Path:
    """The N/D pair list (``night,day`` header, one ``night_cid,day_cid`` per line): consecutive train images."""
    lines = ["night,day"] + [f"{cids[2 * i + 1]},{cids[2 * i]}" for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- Tokyo 24/7


def tokyo(root: Path, labels: str = "DSNDSNDSN", self_junk: bool = True, scene_order: list[int] | None = None,
          size: tuple[int, int] | None = None) -> Path:
    """Tokyo's native layout; the gnd's scene k holds images scene_order[3k : 3k + 3] (default: sorted triples).
    ``size`` None: flat images ``40 + i`` px wide (the importer tests check them); else textured, one look per
    consecutive triple (the default scenes), so that retrieval has something to find."""
    for i, lab in enumerate(labels, start=1):
        jpg = root / "247query_v3" / "nested" / f"{i:05d}.jpg"
        if size is None:
            img(jpg, 40 + i, 30)
        else:
            # a texture per place (day and night share it, sunset has its own): no two places look alike
            img(jpg, *size, seed=500 + 2 * ((i - 1) // 3) + (lab == "S"))
        (root / "247query_v3" / "nested" / f"{i:05d}.csv").write_text(f"{i:05d}.jpg,35.68,139.76,{i * 10},{lab},2014\n")
    names = [f"{i:05d}" for i in range(1, len(labels) + 1)]
    scene = {j: k // 3 for k, j in enumerate(scene_order or range(len(names)))}
    gnd = [
        {
            "ok": np.array([j for j in range(len(names)) if scene[j] == scene[i] and j != i]),
            "junk": np.array([i] if self_junk else [], dtype=np.int64),
            "bbx": None,
        }
        for i in range(len(names))
    ]
    pkl(root / "gnd_247tokyo1k.pkl", {"imlist": names, "qimlist": names, "gnd": gnd})
    return root


# ---------------------------------------------------------------- Revisited Oxford / Paris


def revisited(jpg: Path, gnd_path: Path, landmarks: list[str], per_landmark: int = 4,
              size: tuple[int, int] = (64, 48), subdir=lambda lm: "") -> dict[str, Path]:
    """Images ``<landmark>_<NNNNNN>.jpg`` (Oxford / Paris naming) and a revisitop ``gnd_*.pkl``: the first image
    of each landmark is its query (with a bbox), the next easy, the rest hard; one junk per query."""
    imlist, qimlist, gnd, where = [], [], [], {}
    for li, lm in enumerate(landmarks):
        names = [f"{lm}_{k:06d}" for k in range(per_landmark)]
        for k, name in enumerate(names):
            where[name] = img(jpg / subdir(lm) / f"{name}.jpg", *size, seed=900 + li * 5 + k % 2)
        imlist += names
        qimlist.append(names[0])
    for li, lm in enumerate(landmarks):
        idx = [imlist.index(f"{lm}_{k:06d}") for k in range(per_landmark)]
        other = imlist.index(f"{landmarks[(li + 1) % len(landmarks)]}_{per_landmark - 1:06d}")
        gnd.append({"bbx": np.array([1.0, 1.0, size[0] - 2.0, size[1] - 2.0]), "easy": np.array(idx[1:2]),
                    "hard": np.array(idx[2:]), "junk": np.array([other], dtype=np.int64)})
    pkl(gnd_path, {"imlist": imlist, "qimlist": qimlist, "gnd": gnd})
    return where


# ---------------------------------------------------------------- kapture (Aachen / RobotCar)


def kapture(root: Path, sensors: str, records: str, traj: str | None = None, rigs: str | None = None,
            images: Iterable[str] = (), size: tuple[int, int] = (32, 24)) -> None:
    """A kapture 1.1 folder: sensors, records_camera, optional trajectories and rigs, and the listed images."""
    (root / "sensors").mkdir(parents=True)
    (root / "sensors" / "sensors.txt").write_text(
        "# kapture format: 1.1\n# sensor_device_id, name, sensor_type, [sensor_params]+\n" + sensors
    )
    (root / "sensors" / "records_camera.txt").write_text("# timestamp, device_id, image_path\n" + records)
    if traj is not None:
        (root / "sensors" / "trajectories.txt").write_text(
            "# timestamp, device_id, qw, qx, qy, qz, tx, ty, tz\n" + traj
        )
    if rigs is not None:
        (root / "sensors" / "rigs.txt").write_text(
            "# rig_device_id, sensor_device_id, qw, qx, qy, qz, tx, ty, tz\n" + rigs
        )
    for k, name in enumerate(images):
        img(root / "sensors" / "records_data" / name, *size, seed=1300 + k % 5)


def kapture_localization(root: Path, mapping: str, queries: dict[str, str], n_db: int = 6, n_query: int = 2,
                         size: tuple[int, int] = (64, 48)) -> list[Path]:
    """A kapture localization set below ``root``: ``mapping`` (with poses) and one folder per entry of ``queries``
    (``{folder: condition}``, e.g. ``{"query_night/query": "night"}``); returns the part roots."""
    w, h = size
    cam = f"cam0, , camera, SIMPLE_PINHOLE, {w}, {h}, {w}, {w / 2}, {h / 2}\n"
    db = [f"db/{k}.jpg" for k in range(n_db)]
    kapture(root / mapping, cam, "".join(f"{k}, cam0, {n}\n" for k, n in enumerate(db)),
            traj="".join(f"{k}, cam0, 1, 0, 0, 0, {k}, 0, 0\n" for k in range(n_db)), images=db, size=size)
    roots = [root / mapping]
    for folder, condition in queries.items():
        # file names unique across conditions, as Aachen's are: the server knows a query by its file name
        names = [f"query/{condition}/cam/IMG_{condition}_{k}.jpg" for k in range(n_query)]
        kapture(root / folder, cam, "".join(f"{100 + k}, cam0, {n}\n" for k, n in enumerate(names)), images=names,
                size=size)
        roots.append(root / folder)
    return roots


def _pose_text(pose: tuple[float, ...]) -> str:
    return ", ".join(repr(float(v)) for v in pose)


#: RobotCar Seasons' cameras, and the rig ``car`` -> camera poses (kapture's rigs.txt is rig-to-sensor): the side
#: cameras look left and right, the rear one backwards
ROBOTCAR_RIG = {"left": (S2, 0.0, S2, 0.0, -0.6, 0.1, 0.2), "rear": (0.0, 0.0, 1.0, 0.0, 0.0, 0.3, -1.8),
                "right": (S2, 0.0, -S2, 0.0, 0.6, 0.1, 0.2)}


def kapture_robotcar(root: Path, n_map: int = 4, conditions: Iterable[str] = ("night", "dawn"), n_query: int = 2,
                     query_poses: bool = False, size: int = 1024, images: bool = False) -> dict[str, str]:
    """RobotCar Seasons v1 as kapture has it (``kapture_import_RobotCar_Seasons.py``): ``root/mapping`` and
    ``root/query``, sensors ``left``/``rear``/``right`` (PINHOLE 1024 x 1024), the rig ``car`` in ``rigs.txt``, image
    names ``<condition>/<camera>/<timestamp>.jpg`` recorded at that timestamp. The mapping (``overcast-reference``)
    has poses, its first half of timestamps per rig, the rest per camera (as the COLMAP import writes them). Query
    ``k`` of each condition is taken where mapping timestamp ``k + condition index`` (mod ``n_map``) was; with
    ``query_poses`` the query kapture has those poses as its trajectories (a known answer; the real one has none).
    Cameras ``size`` x ``size`` pixels (RobotCar's are 1024), image files only with ``images`` (the importer reads the
    sizes from sensors.txt). Returns query image name -> its mapping twin's image name."""
    f = 400.0 * size / 1024
    sensors = "".join(f"{cam}, , camera, PINHOLE, {size}, {size}, {f}, {f}, {size / 2 + i + 0.5}, {size / 2 - i}\n"
                      for i, cam in enumerate(ROBOTCAR_RIG))
    rigs = "".join(f"car, {cam}, {_pose_text(p)}\n" for cam, p in ROBOTCAR_RIG.items())
    map_ts = [1417176000000000 + 1000 * m for m in range(n_map)]
    per_rig = n_map // 2
    traj: dict[int, list[tuple[str, tuple[float, ...]]]] = {}  # mapping index -> (device, world->device) rows
    for m in range(n_map):
        if m < per_rig:
            rot = (1.0, 0.0, 0.0, 0.0) if m % 2 == 0 else (S2, 0.0, 0.0, S2)
            traj[m] = [("car", (*rot, 3.0 * m, -1.0, 0.5 * m))]
        else:
            traj[m] = [(cam, (0.5, 0.5, -0.5, 0.5 * (-1) ** i, float(m), float(i), 2.0))
                       for i, cam in enumerate(ROBOTCAR_RIG)]
    map_names = [f"overcast-reference/{cam}/{ts}.jpg" for ts in map_ts for cam in ROBOTCAR_RIG]
    kapture(root / "mapping", sensors,
            "".join(f"{n.split('/')[2][:-4]}, {n.split('/')[1]}, {n}\n" for n in map_names),
            traj="".join(f"{map_ts[m]}, {dev}, {_pose_text(p)}\n" for m in range(n_map) for dev, p in traj[m]),
            rigs=rigs, images=map_names if images else (), size=(size, size))
    twins: dict[str, str] = {}
    records, q_traj = [], []
    for ci, cond in enumerate(conditions):
        for k in range(n_query):
            ts, m = 1418235223450115 + 100000 * ci + 1000 * k, (k + ci) % n_map
            for cam in ROBOTCAR_RIG:
                records.append(f"{ts}, {cam}, {cond}/{cam}/{ts}.jpg\n")
                twins[f"{cond}/{cam}/{ts}.jpg"] = f"overcast-reference/{cam}/{map_ts[m]}.jpg"
            q_traj += [f"{ts}, {dev}, {_pose_text(p)}\n" for dev, p in traj[m]]
    kapture(root / "query", sensors, "".join(records), traj="".join(q_traj) if query_poses else None, rigs=rigs,
            images=list(twins) if images else (), size=(size, size))
    return twins


def kapture_aachen(root: Path, query_poses: bool = False) -> dict[str, str]:
    """Aachen Day-Night v1.1 as kapture has it: ``root/mapping`` (``db/<n>.jpg`` and a sequence frame, one camera
    each, one pose through a rig), ``root/query_night/query`` and ``root/query_day/query`` with Aachen's query names
    (``query/night/nexus5x/IMG_<date>_<time>.jpg``, ``query/day/milestone/<date>_<time>_<n>.jpg``, ...). Each query is
    taken where a database image was; with ``query_poses`` its kapture has that pose. Returns query -> twin."""
    db = ["db/1045.jpg", "db/2713.jpg", "db/3318.jpg", "db/778.jpg", "sequences/gopro3_undistorted/frame_0001.png"]
    sensors = "".join(f"cam{i:05d}, , camera, SIMPLE_RADIAL, 1600, 1200, 1000.0, 800.0, 600.0, 0.01\n"
                      for i in range(len(db)))
    poses = [(1.0, 0.0, 0.0, 0.0, 5.0, 6.0, 7.0), (S2, 0.0, S2, 0.0, -2.0, 1.0, 40.0),
             (0.5, 0.5, 0.5, 0.5, 100.0, -3.0, 1.0), (S2, S2, 0.0, 0.0, 0.25, 0.0, -9.0)]
    traj = "".join(f"{i}, cam{i:05d}, {_pose_text(p)}\n" for i, p in enumerate(poses))
    traj += f"{len(poses)}, rig, 1, 0, 0, 0, 1, 2, 3\n"  # the last one through its rig
    kapture(root / "mapping", sensors, "".join(f"{i}, cam{i:05d}, {n}\n" for i, n in enumerate(db)), traj=traj,
            rigs=f"rig, cam{len(poses):05d}, {S2}, 0, 0, {S2}, 0, 0, 1\n")
    parts = {"query_night/query": ["query/night/nexus5x/IMG_20161227_173116.jpg",
                                   "query/night/nexus5x_additional_night/IMG_20170702_003917.jpg"],
             "query_day/query": ["query/day/milestone/2010-10-30_17-47-25_73.jpg",
                                 "query/day/nexus4/IMG_20130210_163012.jpg"]}
    twins: dict[str, str] = {}
    n = 0
    for folder, names in parts.items():
        sens, rec, tr = "", "", ""
        for name in names:
            twin = n % len(poses)  # twins with a pose written per camera
            sens += f"q{n}, , camera, SIMPLE_RADIAL, 1600, 1200, 1400.0, 800.0, 600.0, -0.02\n"
            rec += f"{100 + n}, q{n}, {name}\n"
            tr += f"{100 + n}, q{n}, {_pose_text(poses[twin])}\n"
            twins[name] = db[twin]
            n += 1
        kapture(root / folder, sens, rec, traj=tr if query_poses else None)
    return twins


# ---------------------------------------------------------------- weight files (published key layouts)


def caffe_backbone_state(arch: str) -> dict:
    """cirtorch's Caffe-converted ImageNet trunk of ``arch`` at full width (random values): our trunk's keys,
    which are cirtorch's, without BatchNorm's ``num_batches_tracked`` (the conversions predate it)."""
    from darkside.config import BackboneSpec
    from darkside.embed.backbones import build_backbone

    trunk, _ = build_backbone(BackboneSpec(arch, 1.0, None, "random", None, arch), seed=0)
    return {k: v for k, v in trunk.state_dict().items() if not k.endswith("num_batches_tracked")}


_ORD = ("One", "Two", "Thr", "Fou", "Fiv")


def _seeded_normal(shapes: dict, seed: int) -> dict:
    """N(0, 0.05^2) values of the given shapes from a seeded generator: two rehearsals get the same weight
    files, so their tables can be compared."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in shapes.items()}


def hed_sniklaus_state(width: float = 1.0, prefix: str = "net", seed: int = 0) -> dict:
    """HED in sniklaus/pytorch-hed's layout (``netVggOne.0.weight`` ... ``netCombine.0.bias``), random values."""
    from darkside.gan.edges import HED

    out = {}
    for k, v in _seeded_normal(HED(width).state_dict(), seed).items():
        head, rest = k.split(".", 1)
        if head.startswith("vgg"):
            out[f"{prefix}Vgg{_ORD[int(head[3]) - 1]}.{rest}"] = v
        elif head.startswith("score"):
            out[f"{prefix}Score{_ORD[int(head[5]) - 1]}.{rest}"] = v
        else:
            out[f"{prefix}Combine.{rest}"] = v
    return out


def rcf_published_state(width: float = 1.0, seed: int = 0) -> dict:
    """RCF's published BSDS500 layout (``conv1_1``..., ``conv*_down``, ``score_dsn*``, ``score_fuse``), random."""
    from darkside.gan.edges import RCF

    return _seeded_normal(RCF(width).state_dict(), seed)


def cyeda_authors_state(base_width: int = 32, n_masks: int = 3) -> dict:
    """CyEDA's ``pretrain/*_net_G_A.pth``: an ``nn.DataParallel`` state dict (``module.`` keys)."""
    import torch

    from darkside.gan.families.cyeda import UnetMaskGenerator

    torch.manual_seed(0)
    net = UnetMaskGenerator(base_width=base_width, n_masks=n_masks)
    return {f"module.{k}": v for k, v in net.state_dict().items()}


FOGGY_CITIES = (("train", "aachen", 3), ("train", "bochum", 3), ("val", "lindau", 3))


def foggy_cityscapes(root: Path, cities: Iterable[tuple[str, str, int]] = FOGGY_CITIES,
                     size: tuple[int, int] = (64, 32), betas: Iterable[str] = ("0.005", "0.01", "0.02")) -> Path:
    """Cityscapes' ``leftImg8bit/{split}/{city}/<stem>_leftImg8bit.png`` and its ``leftImg8bit_foggyDBF`` twins,
    one per fog density ``beta`` (``<stem>_leftImg8bit_foggy_beta_<beta>.png``), textured per frame."""
    seed = 0
    for split, city, n in cities:
        for k in range(n):
            stem, seed = f"{city}_{k:06d}_000019", seed + 1
            img(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", *size, "PNG", seed=seed)
            for j, beta in enumerate(betas):
                img(root / "leftImg8bit_foggyDBF" / split / city / f"{stem}_leftImg8bit_foggy_beta_{beta}.png", *size,
                    "PNG", seed=1000 * (j + 1) + seed)
    return root


def synthia_seqs(root: Path, frames: int, sequence: str = "02", size: tuple[int, int] = (64, 48)) -> Path:
    """``SYNTHIA-SEQS-<sequence>-{SUNSET,RAINNIGHT}/RGB/Stereo_Left/Omni_F/<frame:06d>.png``, ``frames`` each."""
    for j, cond in enumerate(("SUNSET", "RAINNIGHT")):
        for i in range(frames):
            img(root / f"SYNTHIA-SEQS-{sequence}-{cond}" / "RGB" / "Stereo_Left" / "Omni_F" / f"{i:06d}.png", *size,
                "PNG", seed=10_000 * (j + 1) + i)
    return root


def daco_folders(root: Path, train: int, val: int, size: tuple[int, int] = (64, 48)) -> Path:
    """DaCo's pre-arranged ``original/{domain_a,domain_b}/{train,val}/`` (pairs by sorted index)."""
    for j, dom in enumerate(("domain_a", "domain_b")):
        for split, n in (("train", train), ("val", val)):
            for i in range(n):
                img(root / "original" / dom / split / f"{i:05d}.png", *size, "PNG", seed=20_000 * (j + 1) + 100 * n + i)
    return root
