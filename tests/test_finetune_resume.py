"""Fine-tuning end to end on a tiny synthetic manifest with a tiny stand-in network (CPU, seconds).

Checks: an interrupted run (exception or SIGTERM mid-epoch) resumed from its checkpoint ends with
exactly the weights of an uninterrupted run; exactly the hashed anchor subset is translated;
outputs (model, log JSON, curve PNG) are written; the translator registry rules.
"""

import json
import os
import re
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

import darkside.embed.finetune as ft
from darkside.atomic import atomic_path
from darkside.data.manifest import GroundTruth, ImageRecord, load_groundtruth, load_manifest, write_dataset
from darkside.embed.mining import hash_selected
from darkside.embed.pooling import L2N, GeM
from darkside.embed.tuples import (
    ImagePipeline,
    candidate_pairs,
    epoch_tuples,
    split_day_night_pairs,
    split_pairs,
    translation_flags,
)
from darkside.errors import ConfigError, DarksideError, Preempted
from darkside.gan.translator import Translator, load_translator
from darkside.recipes import FinetuneSettings, Recipe
from darkside.settings import parse

# what the fast training tests start from: the mini preset's own section, so they exercise what the suite runs
MINI_FINETUNE = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text()
                               )["presets"]["mini"]["finetune"]

torch.set_num_threads(1)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                      nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU())
        self.pool = GeM()
        self.norm = L2N()

    def forward(self, x):
        return self.norm(self.pool(self.backbone(x)))


def _save(net, path, extra=None):
    with atomic_path(path) as tmp:
        torch.save({"state_dict": net.state_dict(), "extra": extra,
                    "preprocessing": getattr(net, "preprocessing", None)}, tmp)
    return Path(path)


def _load(path):
    net = TinyNet()
    net.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    return net


def _freeze(net):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return net


@pytest.fixture()
def stand_in(monkeypatch):
    fake = SimpleNamespace(load_model=_load, save_model=_save, freeze_batchnorm=_freeze)
    monkeypatch.setattr(ft, "_network", lambda: fake)
    return fake


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(0)
    records, pairs = [], {"train": [], "val": []}
    for split, n_clusters in (("train", 6), ("val", 3)):
        for c in range(n_clusters):
            base = rng.uniform(0.1, 0.9, size=3)
            ids = []
            for v in range(4):
                iid = f"{split}{c}v{v}"
                img = np.clip(base + rng.normal(0, 0.15, size=(20, 24, 3)), 0, 1)
                (root / "images").mkdir(exist_ok=True)
                Image.fromarray((img * 255).astype(np.uint8)).save(root / "images" / f"{iid}.png")
                records.append(ImageRecord(f"{iid}.png", iid, split, "night" if v == 3 else "day",
                                           f"{split}-c{c}", f"p{c}", 24, 20))
                ids.append(iid)
            pairs[split] += [(ids[0], ids[1]), (ids[1], ids[2]), (ids[2], ids[0])]
    dn = [("train0v3", "train0v0"), ("val0v3", "val0v0")]
    write_dataset(root, "tiny", records, GroundTruth("training", pairs=pairs, day_night_pairs=dn))
    return root


def _settings(**kw) -> FinetuneSettings:
    d = {**MINI_FINETUNE, "margins": {"tiny": 0.7}, "epochs": 3, "anchors_per_epoch": 6, "anchor_pool": 12,
         "negative_pool": 14, "negatives": 2, "tuples_per_batch": 2, "image_size": 16, "val_every": 2,
         "mining_batch_size": 8, "lr": 1e-2, **kw}
    return parse(FinetuneSettings, d, "finetune")


RECIPE = Recipe("lab-inversion-cd", clahe=True, diverse_anchors=True, generator="lab-inversion",
                translate_fraction=0.5)


def _model_in(tmp_path: Path) -> Path:
    return _save(TinyNet(), tmp_path / "init.pt")


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def _fail_at(monkeypatch, call: int, action):
    """Make the loss call number ``call`` (1-based, across the run) do ``action`` (mid-epoch)."""
    real = ft.contrastive_loss
    count = {"n": 0}

    def wrapped(*a, **k):
        count["n"] += 1
        if count["n"] == call:
            action()
        return real(*a, **k)

    monkeypatch.setattr(ft, "contrastive_loss", wrapped)
    return lambda: monkeypatch.setattr(ft, "contrastive_loss", real)


def test_resume_after_crash_equals_uninterrupted(tmp_path, dataset, stand_in, monkeypatch):
    s = _settings()
    full = ft.finetune(_model_in(tmp_path), dataset, RECIPE, s, tmp_path / "full", seed=0, backbone="tiny")
    assert full == tmp_path / "full" / "model.pt"

    def boom():
        raise RuntimeError("killed")

    # epoch 1: loss calls 1-6 (6 tuples, no validation); epoch 2 trains with calls 7-12: 9 is mid-epoch
    undo = _fail_at(monkeypatch, 9, boom)
    out = tmp_path / "resumed"
    with pytest.raises(RuntimeError, match="killed"):
        ft.finetune(_model_in(tmp_path), dataset, RECIPE, s, out, seed=0, backbone="tiny")
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 1 and not (out / "model.pt").exists()
    undo()
    resumed = ft.finetune(_model_in(tmp_path), dataset, RECIPE, s, out, seed=0, backbone="tiny")
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    init = TinyNet().state_dict()
    assert not torch.equal(a["backbone.0.weight"], init["backbone.0.weight"])  # it did train

    log = json.loads((out / "training_log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2, 3]
    assert [e["val_loss"] is not None for e in log["epochs"]] == [False, True, True]  # every 2 + last
    # what each epoch's anchors were made of, after diverse picking (the N/D share is checkable afterwards)
    assert all(re.fullmatch(r"anchors: \d+ of \d+ candidates, \d+ translated, \d+ N/D night anchors", e["anchors"])
               for e in log["epochs"])
    lrs = [e["lr"] for e in log["epochs"]]
    assert lrs == pytest.approx([1e-2, 1e-2 * 0.99, 1e-2 * 0.99**2])  # stepped at the END of each epoch
    best = min((e for e in log["epochs"] if e["val_loss"] is not None), key=lambda e: e["val_loss"])
    assert log["best_epoch"] == best["epoch"]
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert torch.load(full, weights_only=True)["extra"]["best_epoch"] == log["best_epoch"]
    # the model records how its test images are prepared: the recipe's CLAHE, with the training settings
    assert torch.load(full, weights_only=True)["preprocessing"] == {"clahe": {"clip_limit": 1.0, "grid": 8}}


def test_sigterm_exits_with_last_checkpoint(tmp_path, dataset, stand_in, monkeypatch):
    s = _settings(epochs=2)
    _fail_at(monkeypatch, 8, lambda: os.kill(os.getpid(), signal.SIGTERM))
    out = tmp_path / "run"
    with pytest.raises(Preempted):  # the CLI turns it into exit status 143
        ft.finetune(_model_in(tmp_path), dataset, RECIPE, s, out, seed=0, backbone="tiny")
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not (out / "model.pt").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    assert signal.getsignal(signal.SIGTERM) is not None  # handler restored


def test_a_preempted_run_logs_each_epoch_and_rewrites_its_deleted_outputs(tmp_path, dataset, stand_in, monkeypatch,
                                                                          caplog):
    """One log line per epoch (loss, val loss where computed, seconds: what a SLURM log without tqdm shows); after
    a SIGTERM, with the declared outputs deleted as Snakemake does before the rerun, the resumed run writes the
    log, the curve and its data (one row per epoch, the columns dvc.yaml plots) again."""
    import csv
    import logging

    from darkside.orchestration import PLOT_FIELDS

    s = _settings()  # 3 epochs, validated at 2 and 3
    init = _model_in(tmp_path)  # one file: a checkpoint resumes only from the same starting weights' bytes
    undo = _fail_at(monkeypatch, 9, lambda: os.kill(os.getpid(), signal.SIGTERM))  # mid-epoch 2
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="darkside.embed.finetune"), pytest.raises(Preempted):
        ft.finetune(init, dataset, RECIPE, s, out, seed=0, backbone="tiny")
    undo()
    for name in ("training_log.json", "training_curve.png", "training_curve.csv"):
        (out / name).unlink(missing_ok=True)
    with caplog.at_level(logging.INFO, logger="darkside.embed.finetune"):
        ft.finetune(init, dataset, RECIPE, s, out, seed=0, backbone="tiny")
    lines = [r.getMessage() for r in caplog.records if re.match(r"tiny \S+ epoch \d/3: loss", r.getMessage())]
    assert [line.split(" epoch ")[1][:3] for line in lines] == ["1/3", "2/3", "3/3"], lines
    assert "val loss not computed" in lines[0] and re.search(r"val loss [0-9.]+, [0-9.]+ s$", lines[2]), lines

    log = json.loads((out / "training_log.json").read_text())["epochs"]
    with (out / "training_curve.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["epoch", *PLOT_FIELDS["training_curve.csv"]]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["loss"]) for r in rows] == pytest.approx([e["loss"] for e in log], rel=1e-5)
    assert [r["val_loss"] == "" for r in rows] == [e["val_loss"] is None for e in log] == [True, False, False]
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing else in the run folder: what the workflow declares; the checkpoint went once model.pt was written
    assert {p.name for p in out.iterdir()} == {ft.MODEL, ft.LOG, ft.CURVE, ft.CURVE_DATA}


def _interrupted_run(model_in: Path, dataset, s, out: Path, monkeypatch) -> None:
    """Stop a run of RECIPE mid-epoch 2, leaving epoch 1's checkpoint (a finished run deletes its own)."""
    def boom():
        raise RuntimeError("killed")

    undo = _fail_at(monkeypatch, 9, boom)  # epoch 1 is loss calls 1-6
    with pytest.raises(RuntimeError, match="killed"):
        ft.finetune(model_in, dataset, RECIPE, s, out, seed=0, backbone="tiny")
    undo()
    assert (out / ft.CHECKPOINT).is_file()


def test_checkpoint_of_other_recipe_is_not_resumed(tmp_path, dataset, stand_in, monkeypatch):
    """When the DAG re-runs a job after its recipe changed, the old checkpoint is set aside, not resumed."""
    s = _settings(epochs=2)
    _interrupted_run(_model_in(tmp_path), dataset, s, tmp_path / "o", monkeypatch)
    other = Recipe("clahe-c", clahe=True, diverse_anchors=False, generator=None)
    ft.finetune(_model_in(tmp_path), dataset, other, s, tmp_path / "o", seed=0, backbone="tiny")
    fresh = ft.finetune(_model_in(tmp_path), dataset, other, s, tmp_path / "fresh", seed=0, backbone="tiny")
    for k, v in _weights(fresh).items():  # the same weights as a run that never saw the old checkpoint
        assert torch.equal(_weights(tmp_path / "o" / "model.pt")[k], v)
    assert (tmp_path / "o" / "checkpoint.stale.pt").is_file()


def test_off_the_shelf_copies_weights(tmp_path, dataset, stand_in):
    r = Recipe("offtheshelf", clahe=False, diverse_anchors=False, generator=None, finetune=False)
    out = ft.finetune(_model_in(tmp_path), dataset, r, _settings(), tmp_path / "ots", backbone="tiny")
    for k, v in TinyNet().state_dict().items():
        assert torch.equal(_weights(out)[k], v)


def test_optimizer_groups_follow_settings():
    net = TinyNet()
    groups = ft.parameter_groups(net, parse(FinetuneSettings, {**MINI_FINETUNE, "lr": 5e-7}, "finetune"))
    assert groups[1]["params"] == [net.pool.p]
    assert groups[1]["lr"] == pytest.approx(5e-6) and groups[1]["weight_decay"] == 0.0
    assert groups[0]["weight_decay"] == 5e-4 and all(p is not net.pool.p for p in groups[0]["params"])


def test_exactly_hashed_anchor_subset_translated(dataset, monkeypatch):
    manifest = load_manifest(dataset)
    gt = load_groundtruth(dataset, manifest)
    pairs = split_pairs(gt, "train")
    nd = split_day_night_pairs(gt, manifest, "train")
    assert ("train0v3", "train0v0") in nd and ("val0v3", "val0v0") not in nd
    assert ("train0v3", "train0v0") not in pairs
    recipe = Recipe("r", clahe=False, diverse_anchors=False, generator="lab-inversion", translate_fraction=0.5)
    seen = []
    real = ImagePipeline.tensor

    def spy(self, image_id, translate=False):
        seen.append((image_id, translate))
        return real(self, image_id, translate)

    monkeypatch.setattr(ImagePipeline, "tensor", spy)
    pipe = ImagePipeline(manifest, 16, None, load_translator("lab-inversion", None), cache=True)
    s = _settings(anchors_per_epoch=100, negative_pool=100)
    ids = [r.image_id for r in manifest.select(split="train")]
    tuples = epoch_tuples(TinyNet(), pipe, pairs, ids, recipe, s, np.random.default_rng(0), torch.device("cpu"))
    anchors = {t.anchor for t in tuples}
    expected = {a for a in anchors if hash_selected(a, 0.5)}  # file name stem == image id here
    assert 0 < len(expected) < len(anchors)
    assert {t.anchor for t in tuples if t.translate} == expected
    assert {i for i, tr in seen if tr} == expected  # only anchors, exactly the hashed ones
    for t in tuples:
        pipe.tuple_tensors(t)
    assert {i for i, tr in seen if tr} == expected  # positives and negatives never translated
    flags = translation_flags(sorted(anchors), manifest, recipe, np.random.default_rng(0))
    assert int(flags.sum()) == len(expected)
    for t in tuples:
        assert manifest.records[manifest.index(t.anchor)].cluster not in {
            manifest.records[manifest.index(n)].cluster for n in t.negatives}


def test_translator_registry_and_lab_inversion():
    with pytest.raises(DarksideError, match="a recipe without generator has no translator"):
        load_translator(None, None)
    with pytest.raises(DarksideError, match="unknown kind 'nosuch'"):
        load_translator("nosuch", None)
    with pytest.raises(DarksideError, match="'cyclegan' needs a trained checkpoint"):
        load_translator("cyclegan", None)
    from darkside.gan.translator import BUILTIN
    from darkside.recipes import BUILTIN_TRANSLATORS
    assert set(BUILTIN) == set(BUILTIN_TRANSLATORS)  # the torch-free recipe list knows the same built-ins
    t = load_translator("lab-inversion", None)
    assert isinstance(t, Translator)
    x = torch.tensor([[[[0.0]], [[0.0]], [[0.0]]], [[[1.0]], [[1.0]], [[1.0]]]])  # black, white pixel
    y = t.translate(x)
    assert y.shape == x.shape
    assert torch.allclose(y[0], torch.ones(3, 1, 1), atol=1e-3)  # L 0 -> 100
    assert torch.allclose(y[1], torch.zeros(3, 1, 1), atol=1e-3)  # L 100 -> 0


def test_new_starting_weights_are_not_resumed(tmp_path, dataset, stand_in, monkeypatch):
    """A re-initialised backbone (or a re-trained generator) makes the old checkpoint meaningless."""
    s = _settings(epochs=2)
    _interrupted_run(_model_in(tmp_path), dataset, s, tmp_path / "o", monkeypatch)
    other_init = tmp_path / "other_init.pt"
    net = TinyNet()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    _save(net, other_init, {})
    ft.finetune(other_init, dataset, RECIPE, s, tmp_path / "o", seed=0, backbone="tiny")
    assert (tmp_path / "o" / "checkpoint.stale.pt").is_file()


def test_candidate_pairs_keep_the_recipes_night_share():
    day = [(f"d{i}", f"d{i}p") for i in range(100)]
    night = [(f"n{i}", f"d{i}") for i in range(10)]
    chosen, is_night = candidate_pairs(day, night, 40, 0.25, np.random.default_rng(0))
    assert len(chosen) == 40 and int(is_night.sum()) == 10
    assert all(a.startswith("n") for (a, _), n in zip(chosen, is_night, strict=True) if n)
    assert len({a for a, _ in chosen if a.startswith("d")}) == 30  # day anchors without replacement
    # fewer N/D pairs than the share asks for: drawn with replacement, the share still holds
    chosen, is_night = candidate_pairs(day, night[:3], 40, 0.25, np.random.default_rng(0))
    assert int(is_night.sum()) == 10 and {a for (a, _), n in zip(chosen, is_night, strict=True) if n} <= {
        "n0", "n1", "n2"}
    chosen, is_night = candidate_pairs(day, [], 40, 0.25, np.random.default_rng(0))
    assert len(chosen) == 40 and not is_night.any()


def test_nd_night_anchors_are_never_translated(dataset):
    manifest = load_manifest(dataset)
    gt = load_groundtruth(dataset, manifest)
    pairs, nd = split_pairs(gt, "train"), split_day_night_pairs(gt, manifest, "train")
    recipe = Recipe("r", clahe=False, diverse_anchors=False, generator="lab-inversion", translate_fraction=1.0,
                    day_night_pairs=True, day_night_fraction=0.5)
    pipe = ImagePipeline(manifest, 16, None, load_translator("lab-inversion", None), cache=True)
    ids = [r.image_id for r in manifest.select(split="train")]
    tuples = epoch_tuples(TinyNet(), pipe, pairs, ids, recipe, _settings(anchors_per_epoch=8, negative_pool=20),
                          np.random.default_rng(0), torch.device("cpu"), night_pairs=nd)
    night = [t for t in tuples if (t.anchor, t.positive) in nd]
    assert len(night) == 4 and not any(t.translate for t in night)
    assert all(t.translate for t in tuples if t not in night)


class _CountingTranslator:
    """lab-inversion that counts the images it translates."""

    def __init__(self) -> None:
        self.inner = load_translator("lab-inversion", None)
        self.images = 0

    def translate(self, images):
        self.images += len(images)
        return self.inner.translate(images)


def test_cached_translations_are_the_uncached_ones_and_made_once(dataset):
    """A translated anchor is translated once per run with the cache (mining, training and later epochs reuse
    it), and the cached tensor is the one an uncached pipeline computes afresh."""
    manifest = load_manifest(dataset)
    ids = [r.image_id for r in manifest.select(split="train")][:4]
    cached_t, fresh_t = _CountingTranslator(), _CountingTranslator()
    cached = ImagePipeline(manifest, 16, (2.0, 8), cached_t, cache=True)
    fresh = ImagePipeline(manifest, 16, (2.0, 8), fresh_t, cache=False)
    for _ in range(3):
        for i in ids:
            assert torch.equal(cached.tensor(i, True), fresh.tensor(i, True))
            assert torch.equal(cached.tensor(i, np.bool_(True)), fresh.tensor(i, True))
            assert torch.equal(cached.tensor(i), fresh.tensor(i))
            assert not torch.equal(cached.tensor(i, True), cached.tensor(i))
    assert cached_t.images == len(ids) and fresh_t.images == 3 * 2 * len(ids)


def test_bf16_autocast_is_a_named_option_that_trains_in_bfloat16_and_moves_the_weights(tmp_path, dataset, stand_in,
                                                                                       monkeypatch):
    """precision: bf16 runs the forward passes of training and mining under bfloat16 autocast and the loss in
    float32; the paper's fp32 stays the default, and the two give different weights: an option, not a free
    speed-up."""
    import darkside.embed.tuples as tuples

    seen = []
    for module in (ft, tuples):  # training's forward passes, and mining's
        real_embed = module.embed_tensors

        def spy(net, tensors, device, _real=real_embed, _where=module.__name__):
            seen.append((_where, torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu")))
            return _real(net, tensors, device)

        monkeypatch.setattr(module, "embed_tensors", spy)
    real_loss = ft.contrastive_loss
    loss_dtypes = []

    def loss(anchor, others, labels, margin):
        loss_dtypes.append(anchor.dtype)
        return real_loss(anchor, others, labels, margin)

    monkeypatch.setattr(ft, "contrastive_loss", loss)
    assert _settings().precision == "fp32"
    r = Recipe("gem", clahe=False, diverse_anchors=False, generator=None)
    fp32 = _weights(ft.finetune(_model_in(tmp_path), dataset, r, _settings(epochs=1), tmp_path / "a", backbone="tiny"))
    assert {w for w, _ in seen} == {ft.__name__, tuples.__name__} and not any(a for _, a in seen)
    seen.clear()
    bf16 = _weights(ft.finetune(_model_in(tmp_path), dataset, r, _settings(epochs=1, precision="bf16"), tmp_path / "b",
                                backbone="tiny"))
    assert seen and all(a == torch.bfloat16 for _, a in seen)
    assert set(loss_dtypes) == {torch.float32}
    assert any(not torch.equal(fp32[k], bf16[k]) for k in fp32)
    with pytest.raises(ConfigError, match="precision"):
        _settings(precision="fp16")


def test_the_netvlad_recipe_fine_tunes_the_gem_init_with_its_own_pooling(tmp_path, dataset, monkeypatch):
    """A real VGG16 trunk: the NetVLAD network is built around the off-the-shelf model's trunk, its centres set
    once from the training images' features before the first epoch, then everything trains as GeM's recipe."""
    import dataclasses

    from darkside.config import BackboneSpec
    from darkside.embed import networks
    from darkside.embed.network import build_embedding_net, load_model, save_model
    from darkside.recipes import named_recipes

    spec = BackboneSpec("vgg16", 0.0625, None, "random", None, "tiny")
    init = save_model(build_embedding_net(spec), tmp_path / "init.pt")
    network = networks.get_network("netvlad")
    calls = []
    counted = dataclasses.replace(network, prepare=lambda *a: (calls.append(list(a[2])), network.prepare(*a))[1])
    monkeypatch.setitem(networks.NETWORKS, "netvlad", counted)
    s = networks.parse_network_settings("netvlad", {"clusters": 2, "init_images": 4, "init_features": 10,
                                           "kmeans_iterations": 3}, "networks.netvlad")
    out = ft.finetune(init, dataset, named_recipes()["netvlad"], _settings(epochs=2, image_size=32),
                      tmp_path / "netvlad", backbone="tiny", network_settings=s)
    assert len(calls) == 1 and len(calls[0]) == 24  # once, from the training images
    net = load_model(out)
    assert net.network_name == "netvlad" and net.dim == 2 * 32
    initial = load_model(init).backbone.state_dict()
    assert any(not torch.equal(v, net.backbone.state_dict()[k]) for k, v in initial.items())  # the trunk trained
    assert net.pool.centres.abs().sum() > 0 and net.extra["network"]["name"] == "netvlad"


def test_a_batch_backward_gives_the_per_tuple_gradient():
    # finetune.backward: one backward of the fake batch's summed loss equals gandtr's backward per tuple (gradients
    # accumulated) up to float order; images of two sizes, so the batched forward stacks across tuples
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), GeM(), L2N())
    sizes = [(3, 12, 16), (3, 16, 12)]
    images = {f"i{k}": torch.randn(sizes[k % 2]) for k in range(9)}
    pipeline = SimpleNamespace(tuple_tensors=lambda t: [images[i] for i in (t.anchor, t.positive, *t.negatives)])
    tuples = [ft.TrainingTuple(f"i{a}", f"i{a + 1}", (f"i{a + 2}", f"i{(a + 5) % 9}")) for a in range(3)]
    grads, losses = {}, {}
    for mode in ("tuple", "batch"):
        opt = torch.optim.SGD(net.parameters(), lr=0.0)  # the gradient of the one step stays in .grad
        losses[mode] = ft.train_epoch(net, pipeline, tuples, opt, 0.7, 3, torch.device("cpu"), backward=mode)
        grads[mode] = [p.grad.clone() for p in net.parameters()]
    assert losses["batch"] == pytest.approx(losses["tuple"], rel=1e-6) and losses["tuple"] > 0
    for a, b in zip(grads["tuple"], grads["batch"], strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7) and a.abs().sum() > 0
    with pytest.raises(ConfigError, match=r"finetune\.backward"):
        ft.train_epoch(net, pipeline, tuples, opt, 0.7, 3, torch.device("cpu"), backward="image")
