"""Adding an ingredient is one module plus its params entry, with no edit to any other file: a generator
family (tests/plugins/toygan.py) trains with `darkside train-gan`, translates the anchors of `toygan-cd` in
`darkside finetune` and appears as marked extra rows of Tables 7 and 8; a backbone (tests/plugins/toynet.py)
is fine-tuned by `darkside finetune` and extracted by `darkside extract`. Both only through the CLI, with
the params entries given as an overlay of params.yaml."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from darkside.cli import main
from darkside.data.manifest import GroundTruth, ImageRecord, Query, write_dataset
from darkside.extract.hdf5 import read_descriptors

PLUGINS = Path(__file__).resolve().parent / "plugins"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Day and night views of a few scenes with train/val pairs, a Tokyo-like query protocol, and the
    generator's day/night lists."""
    root = tmp_path_factory.mktemp("plugin-ds")
    rng = np.random.default_rng(0)
    records, pairs, queries = [], {"train": [], "val": []}, []
    for split, scenes in (("train", 5), ("val", 2)):
        for c in range(scenes):
            base = rng.uniform(0.2, 0.9, 3)
            ids = []
            for v, domain in enumerate(("day", "day", "day", "night")):
                iid = f"{split}{c}v{v}"
                img = np.clip(base * (0.25 if domain == "night" else 1.0) + rng.normal(0, 0.1, (28, 36, 3)), 0, 1)
                (root / "images").mkdir(exist_ok=True)
                Image.fromarray((img * 255).astype(np.uint8)).save(root / "images" / f"{iid}.png")
                records.append(ImageRecord(f"{iid}.png", iid, split, domain, f"{split}{c}", f"p{c}", 36, 28))
                ids.append(iid)
            pairs[split] += [(ids[0], ids[1]), (ids[1], ids[2])]
            queries += [Query(i, positives=[j for j in ids if j != i], junk=[i]) for i in ids]
    write_dataset(root, "plugin-ds", records, GroundTruth("tokyo", queries, pairs=pairs))
    (root / "lists").mkdir()
    (root / "lists" / "day.txt").write_text("".join(f"{r.path}\n" for r in records if r.domain == "day"))
    (root / "lists" / "night.txt").write_text("".join(f"{r.path}\n" for r in records if r.domain == "night"))
    return root


@pytest.fixture()
def overlay_params(repo_root, tmp_path, monkeypatch) -> Path:
    """params.yaml plus the new ingredients' entries (and small mini values, so the test takes seconds)."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    mini = params["presets"]["mini"]
    params["plugins"] = ["toygan", "toynet"]
    mini["gan"]["families"]["toygan"] = dict(batch_size=2, pairs_per_epoch=4, epochs_constant=1, epochs_decay=1,
                                             ngf=4, n_blocks=1, ndf=4, n_layers_d=2, norm="instance",
                                             init="normal", init_gain=0.02, tv_weight=0.1)
    mini["gan"]["common"].update(crop=16, sample_images=2)
    mini["backbones"]["toy"] = dict(arch="toynet", width=0.5, blocks=None, init="random", weights=None)
    mini["backbones"]["vgg16"].update(init="random", weights=None, width=0.0625)
    mini["finetune"]["margins"]["toy"] = 0.7
    mini["finetune"].update(epochs=1, anchors_per_epoch=10, anchor_pool=10, negative_pool=8, negatives=2,
                            tuples_per_batch=2, image_size=24, mining_batch_size=8)
    mini["extract"].update(image_size=32, scales=[1.0])
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _darkside(params: Path, *argv: str) -> None:
    assert main(["--params", str(params), *argv]) == 0


def test_a_family_from_one_module(overlay_params, dataset, tmp_path):
    run = tmp_path / "gans" / "toygan"
    summary = tmp_path / "metrics" / "gans" / "toygan.json"
    _darkside(overlay_params, "train-gan", "--family", "toygan", "--dataset", str(dataset),
              "--lists", str(dataset / "lists"), "--out-dir", str(run), "--summary", str(summary))
    assert json.loads(summary.read_text())["title"] == "ToyGAN"
    assert [e["epoch"] for e in json.loads((run / "log.json").read_text())["epochs"]] == [1, 2]

    init, model = tmp_path / "init" / "model.pt", tmp_path / "models" / "vgg16-toygan-cd"
    _darkside(overlay_params, "init-model", "--backbone", "vgg16", "--out", str(init))
    _darkside(overlay_params, "finetune", "--backbone", "vgg16", "--recipe", "toygan-cd", "--init", str(init),
              "--dataset", str(dataset), "--out-dir", str(model), "--generator", str(run / "generator.pt"))
    extra = torch.load(model / "model.pt", weights_only=True)["extra"]
    assert extra["recipe"]["generator"] == "toygan" and extra["generator_sha256"]
    log = json.loads((model / "training_log.json").read_text())
    assert " 0 translated" not in log["epochs"][0]["anchors"]  # the generator translated anchors

    # Tables 7 and 8: marked extra rows named by the family's title, a paired row against CLAHE CD
    rng = np.random.default_rng(1)
    for m in ("vgg16-toygan-cd", "vgg16-clahe-cd"):
        for ds, key in (("synth-tokyo", "mAP"), ("synth-roxford", "medium"), ("synth-rparis", "medium")):
            p = tmp_path / "metrics" / m / f"{ds}.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps({"per_query": {key: {"ids": [f"q{i}" for i in range(30)],
                                                         "ap": list(rng.uniform(0, 100, 30))}}}))
    out = tmp_path / "tables"
    _darkside(overlay_params, "tables", "--metrics", str(tmp_path / "metrics"), "--out", str(out),
              "--backbone", "vgg16", "--family", "toygan", "--table", "table7", "--table", "table8")
    t7 = list(csv.DictReader((out / "table7.csv").open()))
    assert any(r["method"] == "ToyGAN CD" and r["recipe"] == "toygan-cd" and r["ours"] for r in t7)
    assert any(r["method"] == "ToyGAN CD - CLAHE CD" and r["ours"] for r in t7)
    t8 = [r for r in csv.DictReader((out / "table8.csv").open()) if r["method"] == "ToyGAN"]
    assert t8 and all(r["ours"] for r in t8)
    assert re.search(r"^\| ToyGAN CD \* +\|", (out / "table7.md").read_text(), re.M)  # not a row of the paper
    assert re.search(r"^\| ToyGAN \* +\|", (out / "table8.md").read_text(), re.M)


def test_a_backbone_from_one_module(overlay_params, dataset, tmp_path):
    init, model = tmp_path / "toy-offtheshelf" / "model.pt", tmp_path / "toy-gem"
    _darkside(overlay_params, "init-model", "--backbone", "toy", "--out", str(init))
    _darkside(overlay_params, "finetune", "--backbone", "toy", "--recipe", "gem", "--init", str(init),
              "--dataset", str(dataset), "--out-dir", str(model))
    assert torch.load(model / "model.pt", weights_only=True)["spec"]["arch"] == "toynet"
    h5 = tmp_path / "toy-gem.h5"
    _darkside(overlay_params, "extract", "--model", str(model / "model.pt"), "--dataset", str(dataset),
              "--out", str(h5))
    ds = read_descriptors(h5)
    assert ds.descriptors.shape == (28, 16)  # every image, the toy trunk's 2 x (16 x 0.5) channels
    np.testing.assert_allclose(np.linalg.norm(ds.descriptors, axis=1), 1.0, rtol=1e-5)
