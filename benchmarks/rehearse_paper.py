"""The paper preset, rehearsed: its whole DAG, download to tables, on tiny native-format data over loopback.

    python benchmarks/rehearse_paper.py --work /tmp/rehearsal --cores 1
    python benchmarks/rehearse_paper.py --work /tmp/rehearsal --interrupt-after 300   # the kill test

1. Builds tiny copies of every dataset and weight file the paper preset downloads, in their native formats
   (``tests/native_fixtures.py``: cirtorch's ``ims`` tree and pickles, gandtr's day/night lists, Tokyo's
   ``247query_v3`` zip with CSVs and ``gnd_247tokyo1k.pkl``, the Oxford/Paris archives and ``gnd_*.pkl``,
   the kapture archives, HED/RCF weights in their published key layouts at full architecture), under the
   file names of the registries' URLs.
2. Serves them on 127.0.0.1 (``http.server`` in a thread) as a mirror: ``<mirror>/<host>/<path>``
   (``data.download.mirror``), so ``darkside download`` fetches, verifies and extracts them unchanged.
3. Copies the repository (tracked and unignored files) into ``<work>/repo`` and writes an overlay
   (``<work>/overlay.yaml``) that changes only sizes and counts of the paper preset, and the mirror.
4. Places what a user places by hand (the paper preset's own manual steps): the N/D pair list, the
   RobotCar Seasons images (after the kapture archives, which come without them), CyEDA's published
   generators; and what no fixture can be served for: cirtorch's ImageNet trunks (their file names carry the
   first 7 hex digits of the published file's SHA-256) and Aachen's archives (SHA-256 pinned by kapture's
   index), placed the way the README's fallback says (files / extracted folders).
5. Runs ``snakemake --cores N --configfile overlay.yaml`` there, to the default target (tables, figures,
   report), on the CPU; then recomputes one Tokyo mAP from the descriptor file and the ground truth with
   numpy, independently of ``darkside.evaluate``, and compares.

Prints each step and the wall time; exits non-zero on any failure. With ``--interrupt-after S`` Snakemake is
sent SIGTERM after S seconds, restarted, and the tables CSV compared byte for byte with ``--reference`` (but
for the measured times, the ``wall_clock`` cells).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import native_fixtures as nf  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from darkside.data.registry import DATASETS  # noqa: E402

T0 = time.monotonic()

#: the overlay: sizes and counts only (and the mirror); everything else is the paper preset's
OVERLAY = {
    "data": {"download": {"retries": 2, "backoff_s": 0.2, "timeout_s": 30.0}},
    "day_night": {"min_side": 40},
    "extract": {"image_size": 64, "batch_size": 4},
    "whitening": {"image_size": 64},
    "finetune": {"epochs": 1, "anchors_per_epoch": 4, "anchor_pool": 8, "negative_pool": 12, "negatives": 2,
                 "tuples_per_batch": 2, "image_size": 48, "val_every": 1, "mining_batch_size": 4},
    "evaluate": {"chunk_size": 64, "bootstrap_samples": 20, "pairs_topk": 8},  # the figure shows 5
    "edges": {"quality": {"thresholds": 9, "limit": 4}},
    # 64 px crops (the mini preset's); DRIT++ alone at the paper's 256: its content discriminator's 7x7 kernels
    # need at least 224 (set in overlay())
    "gan": {"common": {"crop": 64, "sample_images": 1}},
    "figures": {"retrieval": {"queries": 2}},
    # HOW's scales and top-1000 stay; a codebook the tiny training split can fill
    "local": {"codebook": {"words": 32, "images": 8}},
    "networks": {"how": {"dims": 16},  # 128 whitened dimensions need more than 128 locations: ~100 here
                 # NetVLAD: 4 centres (2,048-D; the paper's 64 give 32,768-D, whose learned whitening needs two
                 # 8.6 GB covariance matrices) and a k-means the tiny split can fill
                 "netvlad": {"clusters": 4, "init_images": 8, "init_features": 10, "kmeans_iterations": 2}},
}
#: per family: one step of each schedule half, batches of one or two
GAN_COUNTS = {"pairs_per_epoch": 2, "epochs_constant": 1, "epochs_decay": 1}
GAN_BATCH = {"hedgan": 2, "hedngan": 2, "rcfngan": 2, "cyeda": 2, "drit": 2}
GAN_POOL = {"cyclegan", "cyeda", "forkgan"}


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f} s] {msg}", flush=True)


# ---------------------------------------------------------------- fixtures


def build_fixtures(stage: Path) -> dict[str, Path]:
    """Every file the paper preset downloads, by file name (the last part of its URL), plus the hand-placed
    ones under ``placed/`` (returned with keys ``placed:<relative path>``)."""
    files: dict[str, Path] = {}
    sfm = stage / "sfm120k"
    cids = nf.sfm_tree(sfm, {"train": [4] * 6, "val": [3] * 2}, whiten=[3] * 5)
    ims = sorted(p for p in (sfm / "ims").rglob("*") if p.is_file())  # cirtorch's cids have no extension
    files["ims.tar.gz"] = nf.tar_gz(stage / "out" / "ims.tar.gz", sfm, ims)
    for name in ("retrieval-SfM-120k.pkl", "retrieval-SfM-120k-whiten.pkl", "train_day.txt", "train_night.txt"):
        files[name] = sfm / name
    files["placed:data/raw/sfm120k-nd/pairs.csv"] = nf.nd_pairs(stage / "nd" / "pairs.csv", cids["train"], 6)

    tokyo = nf.tokyo(stage / "tokyo247", labels="DSN" * 6, size=(64, 48))
    files["247query_v3.zip"] = nf.zip_tree(stage / "out" / "247query_v3.zip", tokyo / "247query_v3")
    files["gnd_247tokyo1k.pkl"] = tokyo / "gnd_247tokyo1k.pkl"

    ox = stage / "roxford5k"
    nf.revisited(ox / "jpg", ox / "gnd_roxford5k.pkl", ["all_souls", "radcliffe_camera", "christ_church"])
    files["oxbuild_images-v1.tgz"] = nf.tar_gz(stage / "out" / "oxbuild_images-v1.tgz", ox / "jpg")
    files["gnd_roxford5k.pkl"] = ox / "gnd_roxford5k.pkl"
    pa = stage / "rparis6k"
    where = nf.revisited(pa / "jpg", pa / "gnd_rparis6k.pkl", ["paris_defense", "paris_eiffel", "paris_louvre"],
                         subdir=lambda lm: f"paris/{lm.split('_', 1)[1]}")
    for archive, landmarks in (("paris_1-v1.tgz", ("defense", "eiffel")), ("paris_2-v1.tgz", ("louvre",))):
        members = [p for n, p in where.items() if n.split("_")[1] in landmarks]
        files[archive] = nf.tar_gz(stage / "out" / archive, pa / "jpg", members)
    files["gnd_rparis6k.pkl"] = pa / "gnd_rparis6k.pkl"

    # Aachen: placed extracted (SHA-256 pinned); the archives are still built, for the record
    aachen = stage / "aachen-v11"
    nf.kapture_localization(aachen, "mapping/Aachen-v1.1/mapping", {"query_day/query": "day",
                                                                     "query_night/query": "night"})
    for part in ("mapping", "query_day", "query_night"):
        files[f"placed:data/raw/aachen-v11/{part}"] = aachen / part
    robotcar = stage / "robotcar-seasons"
    nf.kapture_robotcar(robotcar, size=64, images=True)  # RobotCar's cameras, rig and <condition>/<camera>/ names
    for part, archive in (("mapping", "RobotCar_Seasons-v1_mapping_wo_images.tar.gz"),
                          ("query", "RobotCar_Seasons-v1_query_wo_images.tar.gz")):
        members = [p for p in (robotcar / part).rglob("*") if p.is_file() and "records_data" not in p.parts]
        files[archive] = nf.tar_gz(stage / "out" / archive, robotcar / part, members)
        files[f"images:data/raw/robotcar-seasons/{part}/sensors/records_data"] = \
            robotcar / part / "sensors" / "records_data"

    weights = stage / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    for name, state in (("hed_sniklaus_github.pth", nf.hed_sniklaus_state()),
                        ("rcf_bsds500_pascal_model.pth", nf.rcf_published_state())):
        torch.save(state, weights / name)
        files[name] = weights / name
    for arch, name in (("vgg16", "imagenet-caffe-vgg16-features-d369c8e.pth"),
                       ("resnet101", "imagenet-caffe-resnet101-features-10a101d.pth")):
        torch.save(nf.caffe_backbone_state(arch), weights / name)
        files[f"placed:data/weights/{name}"] = weights / name
    # torchvision's ImageNet ResNet-18 (HOW's trunk) is read from the torch hub cache, TORCH_HOME=<repo>/.torch
    from torchvision.models import resnet18

    from darkside.embed.backbones import ARCHS

    torch.manual_seed(0)
    hub_file = ARCHS["resnet18"].torchvision_file
    torch.save(resnet18(weights=None).state_dict(), weights / hub_file)
    files[f"placed:.torch/hub/checkpoints/{hub_file}"] = weights / hub_file
    cyeda = nf.cyeda_authors_state()
    for name in ("bdd100k_net_G_A.pth", "gta_net_G_A.pth"):
        torch.save(cyeda, weights / name)
        files[f"placed:data/pretrained/cyeda/{name}"] = weights / name

    # DaCo's tasks, registration-only downloads placed as their sites ship them: Foggy Cityscapes' leftImg8bit and
    # leftImg8bit_foggyDBF trees, SYNTHIA-SEQS' SUNSET / RAINNIGHT sequences (more frames than the importer's 60
    # validation pairs, so some train), and Tokyo 24/7 in DaCo's own folders (its split of Tokyo's download needs
    # more than 300 scenes; that path is tested on its own in tests/test_importers.py)
    files["placed:data/raw/foggy-cityscapes"] = nf.foggy_cityscapes(stage / "foggy-cityscapes")
    files["placed:data/raw/synthia-seqs"] = nf.synthia_seqs(stage / "synthia-seqs", frames=64)
    files["placed:data/raw/tokyo247-daco"] = nf.daco_folders(stage / "tokyo247-daco", train=4, val=3)
    return files


def published_urls() -> list[str]:
    """Every URL the paper preset's downloads fetch: the registry's datasets and the weight files."""
    from darkside.cli import weight_urls

    return [f.url for e in DATASETS.values() for f in e.files] + list(weight_urls().values())


def build_mirror(files: dict[str, Path], mirror: Path) -> list[str]:
    """Lay out ``<mirror>/<host>/<path>`` for every published URL a fixture exists for; return those URLs."""
    served = []
    for url in published_urls():
        name = url.rsplit("/", 1)[-1]
        if name not in files:
            continue
        parts = urllib.parse.urlsplit(url)
        dest = mirror / parts.netloc / parts.path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[name], dest)
        served.append(url)
    return served


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path, port_file: Path) -> tuple[ThreadingHTTPServer, str]:
    """The mirror on 127.0.0.1, on the port of the folder's earlier runs where it is free: the mirror's URL is a
    setting the download jobs read, so a new port would make Snakemake redo every download and all after it."""
    handler = functools.partial(_Quiet, directory=str(directory))
    port = int(port_file.read_text()) if port_file.is_file() else 0
    try:
        srv = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port_file.write_text(f"{srv.server_address[1]}\n")
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


# ---------------------------------------------------------------- scratch repository, overlay


def overlay(params: dict, mirror_url: str) -> dict:
    """The paper preset's overlay: :data:`OVERLAY`, the GAN counts for every family, and the mirror."""
    paper = params["presets"]["paper"]
    over = json.loads(json.dumps(OVERLAY))
    over["data"]["download"]["mirror"] = mirror_url
    fams = {}
    for fam, entry in paper["gan"]["families"].items():
        fams[fam] = {**GAN_COUNTS, **({"batch_size": GAN_BATCH[fam]} if fam in GAN_BATCH else {})}
        if fam == "drit":
            fams[fam]["crop"] = 256
        if "pool_size" in entry:
            fams[fam]["pool_size"] = 2
        if "num_patches" in entry:
            fams[fam]["num_patches"] = 16
        if "nce_negatives" in entry:
            fams[fam]["nce_negatives"] = 4
    over["gan"]["families"] = fams
    # DaCo: two iterations of batches of four at 64 px, small banks and k-means; the hand-crafted baselines' SIFT
    # on images 64 px high and two k-means iterations
    learners = {}
    for name, entry in paper["daco"]["learners"].items():
        learners[name] = {"iterations": 2, "batch_size": 4, "crop": 64, "eval_resize": 64}
        (objective, values), = entry["objective"].items()
        if "negatives" in values:
            learners[name]["objective"] = {objective: {"negatives": 8}}
        if "netvlad" in entry["pooling"]:
            # 4 centres: a 64 px crop leaves ResNet-50 2 x 2 locations, so the tiny training sets give ~24 features
            learners[name]["pooling"] = {"netvlad": {"clusters": 4, "init_images": 4, "init_features": 10,
                                                     "kmeans_iterations": 2}}
    handcrafted = {}
    for name, entry in paper["daco"]["handcrafted"].items():
        (encoding, values), = entry["encoding"].items()
        handcrafted[name] = {"sift": {"height": 64},
                             **({"encoding": {encoding: {"iterations": 2}}} if "iterations" in values else {})}
    over["daco"] = {"learners": learners, "handcrafted": handcrafted}
    return {"preset": "paper", "presets": {"paper": over}}


def place(files: dict[str, Path], repo: Path, prefix: str) -> None:
    for key, src in files.items():
        if not key.startswith(prefix):
            continue
        dest = repo / key.split(":", 1)[1]
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dest)


# ---------------------------------------------------------------- Snakemake


def snakemake(repo: Path, cores: int, targets: list[str], log: Path, interrupt_after: float | None = None) -> int:
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1", "TORCH_HOME": str(repo / ".torch"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    cmd = [str(Path(sys.executable).parent / "snakemake"), "--cores", str(cores), "--configfile", "overlay.yaml",
           "--rerun-incomplete", "--keep-going", "--printshellcmds", *targets]
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=interrupt_after)
        except subprocess.TimeoutExpired:
            say(f"SIGTERM to snakemake (pid {proc.pid}) after {interrupt_after:.0f} s")
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            return -signal.SIGTERM
    return proc.returncode


# ---------------------------------------------------------------- the independent Tokyo check


def tokyo_ap_bounds(descriptors: Path, groundtruth: Path, tie: float = 1e-5) -> dict[str, tuple[float, float]]:
    """Each Tokyo query's AP (x100) from the descriptor file and ``groundtruth.json`` with numpy only (no
    ``darkside.evaluate``), as the interval its ties allow: every image is a query against all images, ranked by
    inner product in float64, junk (the query itself) removed; cirtorch's trapezoid AP (the j-th positive at rank r
    adds the mean of j / r, 1 at r = 0, and (j + 1) / (r + 1)). Scores within ``tie`` of each other may come out in
    either order in float32 on another BLAS, so the upper bound ranks each positive ``tie`` higher and the lower
    bound ``tie`` lower; an exact computation lies between them."""
    import h5py
    import numpy as np

    with h5py.File(descriptors, "r") as f:
        ids = [x.decode() if isinstance(x, bytes) else str(x) for x in f["image_ids"][()]]
        x = np.asarray(f["descriptors"][()], dtype=np.float64)
    row = {i: k for k, i in enumerate(ids)}

    def ap(order: np.ndarray, positives: set[int]) -> float:
        ranks = [r for r, i in enumerate(order) if i in positives]
        steps = (((j / r if r else 1.0) + (j + 1) / (r + 1)) / 2 for j, r in enumerate(ranks))
        return 100.0 * sum(steps) / len(positives)

    bounds = {}
    for q in json.loads(groundtruth.read_text())["queries"]:
        if not q["positives"]:
            continue
        keep = np.array(sorted(set(range(len(ids))) - {row[j] for j in q["junk"]}))
        scores = x[keep] @ x[row[q["query"]]]
        positive = np.isin(keep, [row[p] for p in q["positives"]])
        pos_rows = {int(i) for i in keep[positive]}
        hi = ap(keep[np.argsort(-(scores + tie * positive), kind="stable")], pos_rows)
        lo = ap(keep[np.argsort(-(scores - tie * positive), kind="stable")], pos_rows)
        bounds[q["query"]] = (lo, hi)
    return bounds


def check_tokyo(repo: Path, dataset: str = "tokyo247") -> tuple[int, int]:
    """Each global-descriptor model's Tokyo per-query APs against :func:`tokyo_ap_bounds`; prints each model's
    mAP, the independent one and how many queries fall outside their bounds; returns (models, queries outside).
    Models with local features are ranked by ASMK, not by the inner product of global descriptors: skipped."""
    import h5py

    gt = repo / "data" / "prepared" / dataset / "groundtruth.json"
    models = outside = 0
    for metrics in sorted((repo / "results" / "metrics").glob(f"*/{dataset}.json")):
        model = metrics.parent.name
        h5 = repo / "results" / "descriptors" / model / f"{dataset}.h5"
        if not h5.is_file():
            continue
        with h5py.File(h5, "r") as f:
            if "local" in f:
                print(f"  {model:28s} ranked by ASMK on local features: not an inner-product check")
                continue
        body = json.loads(metrics.read_text())
        ours = dict(zip(body["per_query"]["mAP"]["ids"], body["per_query"]["mAP"]["ap"], strict=True))
        bounds = tokyo_ap_bounds(h5, gt)
        bad = [q for q, (lo, hi) in bounds.items() if ours.get(q) is None or not lo - 1e-6 <= ours[q] <= hi + 1e-6]
        bad += [q for q, v in ours.items() if v is not None and q not in bounds]
        mid = sum((lo + hi) / 2 for lo, hi in bounds.values()) / len(bounds)
        width = max(hi - lo for lo, hi in bounds.values())
        print(f"  {model:28s} Tokyo mAP {body['metrics']['mAP']:8.4f}  numpy {mid:8.4f} (widest tie interval "
              f"{width:.2f})  queries outside their interval: {len(bad)}/{len(bounds)}")
        models += 1
        outside += len(bad)
    return models, outside


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reproducible_lines(table_csv: Path) -> list[str]:
    """The CSV's lines but its measured times (``wall_clock`` cells: Table 8's hours and their throughput
    note), which no two runs share: what two runs of one seed and preset must agree on byte for byte."""
    import csv

    with table_csv.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "wall_clock" not in rows[0]:
        raise SystemExit(f"{table_csv}: no wall_clock column (a table written before it; rerun that rehearsal)")
    wall = rows[0].index("wall_clock")
    return [",".join(r) for r in rows if r[wall] != "True"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (created; reused if it exists)")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--targets", nargs="*", default=[], help="Snakemake targets (default: the default target)")
    ap.add_argument("--interrupt-after", type=float, default=None, help="SIGTERM snakemake after S s, restart")
    ap.add_argument("--reference", type=Path, default=None, help="tables folder of an uninterrupted run")
    ap.add_argument("--dry-run", action="store_true", help="stop after snakemake -n")
    args = ap.parse_args(argv)

    work = args.work.resolve()
    repo, stage, mirror = work / "repo", work / "stage", work / "mirror"
    log = work / "snakemake.log"
    fresh = not repo.exists()
    if fresh:
        say(f"building native-format fixtures in {stage}")
        files = build_fixtures(stage)
        served = build_mirror(files, mirror)
        say(f"{len(served)} published files on the mirror; copying the repository to {repo}")
        nf.working_tree(ROOT, repo)
        place(files, repo, "placed:")
        (work / "files.json").write_text(json.dumps({k: str(v) for k, v in files.items()}, indent=1))
    files = {k: Path(v) for k, v in json.loads((work / "files.json").read_text()).items()}
    srv, url = serve(mirror, work / "mirror.port")
    say(f"mirror on {url}")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (repo / "overlay.yaml").write_text(yaml.safe_dump(overlay(params, url + "/"), sort_keys=False))
    if args.dry_run:
        env = {**os.environ, "PYTHONPATH": str(repo / "src")}
        out = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--configfile", "overlay.yaml",
                              "--quiet", "rules"], cwd=repo, env=env, capture_output=True, text=True)
        print(out.stdout[-6000:], out.stderr[-6000:])
        return out.returncode

    if not (repo / "data/raw/robotcar-seasons/.downloaded").exists():
        # the v1 kapture archives come without images: download them first, then place the images (README)
        say("download robotcar-seasons, then place its images")
        rc = snakemake(repo, args.cores, ["data/raw/robotcar-seasons/.downloaded"], log)
        if rc:
            say(f"FAILED: robotcar download (exit {rc}); see {log}")
            return 1
        place(files, repo, "images:")
    say(f"snakemake --cores {args.cores} {' '.join(args.targets) or '(default target)'}; log {log}")
    rc = snakemake(repo, args.cores, args.targets, log, args.interrupt_after)
    if rc == -signal.SIGTERM:
        say("restarting after the interrupt")
        rc = snakemake(repo, args.cores, args.targets, log)
    srv.shutdown()
    if rc:
        say(f"FAILED: snakemake exit {rc}; see {log}")
        return 1
    tables = sorted((repo / "results" / "tables").glob("*.csv"))
    say(f"done: {len(tables)} tables")
    for t in tables:
        print(f"  {t.relative_to(repo)}  sha256 {sha(t)[:16]}")
    if args.reference:
        diff = [t.name for t in tables if not (args.reference / t.name).is_file()
                or reproducible_lines(args.reference / t.name) != reproducible_lines(t)]
        say("tables identical to the reference" if not diff else f"tables DIFFER from the reference: {diff}")
        if diff:
            return 1
    models, outside = check_tokyo(repo)
    say(f"Tokyo per-query AP against the independent numpy computation: {models} models, {outside} queries "
        "outside their tie interval")
    if outside or not models:
        return 1
    say(f"wall time {time.monotonic() - T0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
