"""DaCo's learner (darkside.embed.daco) on a tiny cross-domain pair set: its views, determinism, resumption."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from darkside.config import BackboneSpec
from darkside.data.manifest import GroundTruth, ImageRecord, write_dataset
from darkside.embed import daco
from darkside.embed.objectives.daco import DacoObjectiveSettings
from darkside.embed.objectives.simclr import SimclrSettings
from darkside.errors import ConfigError, DarksideError, Preempted

SETTINGS = daco.DacoSettings(
    objective={"daco": DacoObjectiveSettings(lam=0.8, temperature=0.1, extra_cross=False)}, hidden_dim=8, batch_size=4,
    iterations=6, lr=1e-3, weight_decay=1e-6, crop=16, crop_scale=(0.2, 1.0), crop_ratio=(3 / 4, 4 / 3),
    jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8, grayscale_p=0.2, flip_p=0.5, eval_resize=16, translations="translator",
    pooling={"average": daco.AveragePooling()})
NORM = daco.Normalisation(mean=(0.334, 0.332, 0.320), std=(0.241, 0.237, 0.242))
BACKBONE = BackboneSpec("resnet50", 0.0625, (1, 1, 1, 1), "random", None, "r50")


@pytest.fixture()
def pair_set(tmp_path):
    """4 training and 3 evaluation pairs of random textures, night = the day image darkened; the
    'translations' are other gains of the same texture."""
    rng = np.random.default_rng(0)
    root, gen = tmp_path / "toy-pairs", tmp_path / "gen"  # the folder is named as the dataset (train-daco)
    recs, pairs = [], {"train": [], "val": []}
    for split, n in (("train", 4), ("val", 3)):
        for k in range(n):
            base = rng.uniform(0, 255, (20, 24, 3))
            ids = []
            for dom, gain in (("day", 1.0), ("night", 0.3)):
                rel = f"{split}/{dom}/{k}.png"
                for folder, g in ((root / "images", gain), (gen, 1.3 - gain)):
                    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray((base * g).astype(np.uint8)).save(folder / rel)
                recs.append(ImageRecord(rel, rel, split, dom, f"{split}{k}", f"{split}{k}", 24, 20))
                ids.append(rel)
            pairs[split].append((ids[1], ids[0]))
    write_dataset(root, "toy-pairs", recs, GroundTruth("cross_domain", database_split="val", pairs=pairs))
    return root, gen


def _state(path):
    return torch.load(path, weights_only=True)["state_dict"]


def test_a_view_without_random_parts_is_the_normalised_resized_image():
    s = dataclasses.replace(SETTINGS, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), jitter_p=0.0, grayscale_p=0.0,
                            flip_p=1.0, crop=8)
    img = torch.rand(3, 16, 16)
    expect = TF.normalize(TF.hflip(TF.resize(img, [8, 8], antialias=True)), list(NORM.mean), list(NORM.std))
    assert torch.allclose(daco.simclr_view(img, s, NORM, np.random.default_rng(0)), expect, atol=1e-6)


def test_batched_views_are_torchvisions_transforms_of_each_image_with_its_own_draws():
    """The batch's jitter (grouped by operation at each step of each view's order) gives each view what
    torchvision's functions give it alone, with the same draws from the same generator."""
    g = torch.Generator().manual_seed(0)
    imgs = [torch.rand(3, 20 + 2 * i, 24, generator=g) for i in range(12)]
    s = dataclasses.replace(SETTINGS, jitter_p=0.9, grayscale_p=0.3)
    got = daco.simclr_views(imgs, s, NORM, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    adjust = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    orders = set()
    for img, view in zip(imgs, got, strict=True):
        d = daco.draw_view(img.shape[1], img.shape[2], s, rng)
        x = TF.resized_crop(img, *d.box, [s.crop, s.crop], antialias=True)
        if d.jitter is not None:
            orders.add(d.jitter[0])
            for op in d.jitter[0]:
                x = adjust[op](x, d.jitter[1][op])
        if d.grey:
            x = TF.rgb_to_grayscale(x, num_output_channels=3)
        if d.flip:
            x = TF.hflip(x)
        assert torch.allclose(view, TF.normalize(x.clamp(0, 1), list(NORM.mean), list(NORM.std)), atol=1e-5)
    assert len(orders) > 3  # the draws exercised several orders


def test_the_batched_hue_shift_is_torchvisions_adjust_hue():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 3, 16, 16, generator=g)
    x[0] = x[0, :1]  # grey pixels: no saturation, any hue
    x[1, :, :8] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)  # pure red: hue 0, the wrap-around
    factors = [-0.5, -0.31, -0.02, 0.0, 0.17, 0.5]
    got = daco._hue(x, torch.tensor(factors).view(-1, 1, 1, 1))
    for i, f in enumerate(factors):
        assert torch.allclose(got[i], TF.adjust_hue(x[i], f), atol=1e-5), f


def test_crop_boxes_keep_their_area_and_ratio_ranges():
    rng = np.random.default_rng(1)
    for _ in range(200):
        top, left, ch, cw = daco._crop_box(60, 80, SETTINGS, rng)
        assert top >= 0 and top + ch <= 60 and left >= 0 and left + cw <= 80
        assert 0.2 * 4800 * 0.8 <= ch * cw <= 4800  # rounding of the sides moves the area a little
        assert 3 / 4 * 0.85 <= cw / ch <= 4 / 3 * 1.15


def test_daco_trains_deterministically_and_keeps_the_best_epoch(pair_set, tmp_path):
    root, gen = pair_set
    a = daco.train_daco(root, gen, BACKBONE, SETTINGS, NORM, tmp_path / "a", seed=3)
    b = daco.train_daco(root, gen, BACKBONE, SETTINGS, NORM, tmp_path / "b", seed=3)
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    log = json.loads((tmp_path / "a" / "training_log.json").read_text())
    # 8 training images (both domains), batch 4: 2 steps per epoch, 6 iterations -> 3 epochs
    assert [e["epoch"] for e in log["epochs"]] == [1, 2, 3]
    means = [e["R@1"]["mean"] for e in log["epochs"]]
    assert log["best"]["mean"] == max(means) and log["best"]["epoch"] == 1 + int(np.argmax(means))
    assert not (tmp_path / "a" / "checkpoint.pt").exists()
    assert (tmp_path / "a" / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    c = daco.train_daco(root, gen, BACKBONE, SETTINGS, NORM, tmp_path / "c", seed=4)
    assert not all(torch.equal(sa[k], _state(c)[k]) for k in sa)


def preempted_in_epoch_two(monkeypatch, train) -> None:
    """Run ``train()`` with a SIGTERM (Preempted) in epoch 2's evaluation, after epoch 1's checkpoint."""
    real, calls = daco.evaluate_pairs, {"n": 0}

    def stop_in_epoch_two(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Preempted()
        return real(*args)

    with monkeypatch.context() as m:
        m.setattr(daco, "evaluate_pairs", stop_in_epoch_two)
        with pytest.raises(Preempted):
            train()


def test_a_preempted_run_resumes_to_the_same_weights(pair_set, tmp_path, monkeypatch):
    root, gen = pair_set
    ref = _state(daco.train_daco(root, gen, BACKBONE, SETTINGS, NORM, tmp_path / "ref", seed=3))
    preempted_in_epoch_two(monkeypatch, lambda: daco.train_daco(root, gen, BACKBONE, SETTINGS, NORM, tmp_path / "run",
                                                                seed=3))
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and not (tmp_path / "run" / "model.pt").exists()
    got = _state(daco.train_daco(root, gen, BACKBONE, SETTINGS, NORM, tmp_path / "run", seed=3))
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_simclr_needs_no_translations_and_daco_refuses_without_them(pair_set, tmp_path):
    root, gen = pair_set
    simclr = dataclasses.replace(SETTINGS, objective={"simclr": SimclrSettings(0.1)}, iterations=2,
                                 translations="none")
    assert daco.train_daco(root, None, BACKBONE, simclr, NORM, tmp_path / "s", seed=0).is_file()
    with pytest.raises(ConfigError, match="objective 'simclr' reads no translated view: translations none, not "
                                          "'translator'"):
        daco.train_daco(root, None, BACKBONE, dataclasses.replace(simclr, translations="translator"), NORM,
                        tmp_path / "s2", seed=0)
    with pytest.raises(ConfigError, match="objective 'daco' reads translated views"):
        daco.train_daco(root, gen, BACKBONE, dataclasses.replace(SETTINGS, translations="none"), NORM,
                        tmp_path / "d", seed=0)
    with pytest.raises(DarksideError, match="needs the translations"):
        daco.train_daco(root, None, BACKBONE, SETTINGS, NORM, tmp_path / "d", seed=0)
    (gen / "train" / "night" / "2.png").unlink()
    with pytest.raises(DarksideError, match=r"train/night/2\.png: translation of a training image missing"):
        daco.train_daco(root, gen, BACKBONE, SETTINGS, NORM, tmp_path / "d", seed=0)


def test_evaluation_descriptors_are_unit_norm_backbone_features(pair_set):
    root, _ = pair_set
    net = daco.build_daco_net(BACKBONE, 8, seed=0)
    paths = sorted((root / "images" / "val" / "day").glob("*.png"))
    d = daco.descriptors(net, paths, SETTINGS, NORM)
    assert d.shape == (3, net.head[0].in_features)
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)


def test_batched_evaluation_features_are_each_images_own():
    """Inputs of two shapes, batched by shape in chunks of 2: the same rows as one image at a time."""
    net = daco.build_daco_net(BACKBONE, 8, seed=0)
    g = torch.Generator().manual_seed(0)
    inputs = [torch.rand(3, 16, 16 + 4 * (i % 2), generator=g) for i in range(5)]
    one_by_one = np.concatenate([daco.features_of(net, [x]) for x in inputs])
    assert np.allclose(daco.features_of(net, inputs, batch_size=2), one_by_one, atol=1e-6)


def _mini_params_with(repo_root, learner: str) -> tuple[dict, dict]:
    """params.yaml whose mini daco section trains the tiny SETTINGS as ``learner`` on the toy pair set."""
    import yaml

    from darkside.settings import to_plain

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    section = params["presets"]["mini"]["daco"]
    section["learners"][learner] = to_plain(SETTINGS)
    section["normalisation"]["toy-pairs"] = to_plain(NORM)
    section["backbone"] = {"arch": "resnet50", "width": 0.0625, "blocks": [1, 1, 1, 1], "init": "random",
                           "weights": None}
    return params, section


def test_train_daco_runs_the_learner_and_normalisation_params_name(pair_set, tmp_path, repo_root):
    """The CLI job: daco.learners.<name> and daco.normalisation.<dataset folder> from the handed-over settings
    give the same weights as the function called with them; a dataset without normalisation is refused."""

    from darkside.cli import job_settings, main
    from darkside.errors import ConfigError

    root, gen = pair_set
    params, section = _mini_params_with(repo_root, "tiny")
    handed = job_settings("train-daco", params, "mini", {"learner": "tiny", "dataset": str(root)}).to_json()
    assert main(["--settings", handed, "train-daco", "--learner", "tiny", "--dataset", str(root), "--translations",
                 str(gen), "--out-dir", str(tmp_path / "cli")]) == 0
    direct = daco.train_daco(root, gen, dataclasses.replace(BACKBONE, name="tiny"), SETTINGS, NORM, tmp_path / "fn",
                             seed=section["seed"])
    a, b = _state(tmp_path / "cli" / "model.pt"), _state(direct)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match=r"daco\.normalisation: no entry for 'elsewhere' \(known: .*toy-pairs\)"):
        job_settings("train-daco", params, "mini", {"learner": "tiny", "dataset": "data/prepared/elsewhere"})


def test_trained_model_to_descriptors_to_score_to_daco_table(pair_set, tmp_path, repo_root):
    """The by-hand chain of the README: train-daco, extract-daco, score and tables fill DaCo Table 1's row with
    what the model's own evaluation measured on the same pairs."""
    import dataclasses as dc

    import h5py
    from test_tables import inputs_of  # tests/ is on sys.path (no package)

    from darkside.cli import job_settings, main
    from darkside.tables.build import build_table

    root, gen = pair_set
    params, _ = _mini_params_with(repo_root, "resnet50-daco")
    opts = {"learner": "resnet50-daco", "dataset": str(root)}
    run = tmp_path / "models" / "resnet50-daco"
    assert main(["--settings", job_settings("train-daco", params, "mini", opts).to_json(), "train-daco",
                 "--learner", "resnet50-daco", "--dataset", str(root), "--translations", str(gen),
                 "--out-dir", str(run), "--descriptors", str(tmp_path / "by-training.h5")]) == 0
    h5 = tmp_path / "toy-pairs.h5"
    assert main(["--settings", job_settings("extract-daco", params, "mini").to_json(), "extract-daco", "--model",
                 str(run / "model.pt"), "--dataset", str(root), "--out", str(h5)]) == 0
    with h5py.File(h5) as f, h5py.File(tmp_path / "by-training.h5") as g:  # the 3 evaluation pairs, A images first
        assert [i.decode() for i in f["image_ids"][()]] == [f"val/{d}/{k}.png" for d in ("day", "night")
                                                            for k in range(3)]
        # train-daco --descriptors (the DAG's way) writes what extract-daco does
        assert np.array_equal(f["descriptors"][()], g["descriptors"][()])
        assert np.array_equal(f["image_ids"][()], g["image_ids"][()])
    metrics = tmp_path / "metrics" / "resnet50-daco" / "toy-pairs.json"
    assert main(["--settings", job_settings("score", params, "mini").to_json(), "score", "--descriptors", str(h5),
                 "--dataset", str(root), "--out", str(metrics)]) == 0
    best = json.loads((run / "training_log.json").read_text())
    chosen = next(e for e in best["epochs"] if e["epoch"] == best["best"]["epoch"])["R@1"]
    scored = json.loads(metrics.read_text())["metrics"]
    for mode in ("A->B", "B->A", "A<->B"):  # the kept epoch's own evaluation, recomputed from the descriptors
        assert scored[mode]["R@1"] == pytest.approx(100 * chosen[mode])
    inputs = dc.replace(inputs_of(repo_root / "params.yaml", "mini"), cross_domain={"daco_night": "toy-pairs"})
    rows = {r.method: r for r in build_table("daco-table1", inputs, tmp_path / "metrics").blocks[0].rows}
    assert rows["DaCo"].cells[0].ours == pytest.approx(scored["A->B"]["R@1"])
    assert rows["DaCo"].cells[8].ours == pytest.approx(scored["A<->B"]["R@1"])
