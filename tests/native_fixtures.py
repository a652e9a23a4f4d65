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
        names = [f"query/{condition}/cam/{k}.jpg" for k in range(n_query)]
        kapture(root / folder, cam, "".join(f"{100 + k}, cam0, {n}\n" for k, n in enumerate(names)), images=names,
                size=size)
        roots.append(root / folder)
    return roots


# ---------------------------------------------------------------- weight files (published key layouts)


def caffe_backbone_state(arch: str) -> dict:
    """cirtorch's Caffe-converted ImageNet trunk of ``arch`` at full width (random values): our trunk's keys,
    which are cirtorch's, without BatchNorm's ``num_batches_tracked`` (the conversions predate it)."""
    from darkside.config import BackboneSpec
    from darkside.embed.backbones import build_backbone

    trunk, _ = build_backbone(BackboneSpec(arch, 1.0, None, "random", None, arch), seed=0)
    return {k: v for k, v in trunk.state_dict().items() if not k.endswith("num_batches_tracked")}


_ORD = ("One", "Two", "Thr", "Fou", "Fiv")


def hed_sniklaus_state(width: float = 1.0, prefix: str = "net") -> dict:
    """HED in sniklaus/pytorch-hed's layout (``netVggOne.0.weight`` ... ``netCombine.0.bias``), random values."""
    import torch

    from darkside.gan.edges import HED

    out = {}
    for k, v in HED(width).state_dict().items():
        head, rest = k.split(".", 1)
        if head.startswith("vgg"):
            out[f"{prefix}Vgg{_ORD[int(head[3]) - 1]}.{rest}"] = torch.randn_like(v) * 0.05
        elif head.startswith("score"):
            out[f"{prefix}Score{_ORD[int(head[5]) - 1]}.{rest}"] = torch.randn_like(v) * 0.05
        else:
            out[f"{prefix}Combine.{rest}"] = torch.randn_like(v) * 0.05
    return out


def rcf_published_state(width: float = 1.0) -> dict:
    """RCF's published BSDS500 layout (``conv1_1``..., ``conv*_down``, ``score_dsn*``, ``score_fuse``), random."""
    import torch

    from darkside.gan.edges import RCF

    return {k: torch.randn_like(v) * 0.05 for k, v in RCF(width).state_dict().items()}


def cyeda_authors_state(base_width: int = 32, n_masks: int = 3) -> dict:
    """CyEDA's ``pretrain/*_net_G_A.pth``: an ``nn.DataParallel`` state dict (``module.`` keys)."""
    import torch

    from darkside.gan.families.cyeda import UnetMaskGenerator

    torch.manual_seed(0)
    net = UnetMaskGenerator(base_width=base_width, n_masks=n_masks)
    return {f"module.{k}": v for k, v in net.state_dict().items()}
