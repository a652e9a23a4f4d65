"""Families train on tiny tensors; a run killed by SIGTERM resumes to the uninterrupted weights."""

import csv
import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from darkside.errors import ConfigError
from darkside.gan.edges import DetectorSettings
from darkside.gan.family import GanSetup, GanTraining, build, family_class, setup_for
from darkside.gan.train import iterate_epoch, train_gan
from darkside.gan.translator import load_translator
from darkside.settings import parse

torch.set_num_threads(1)

OWN = {"cyclegan": dict(variant="gandtr", cycle_weight=10.0, identity_weight=0.5, pool_size=3),
       "cut": dict(variant="gandtr", antialias=False, nce_layers=(4, 8, 10), num_patches=8, nce_temperature=0.07,
                   head_dim=8, gan_weight=1.0, nce_weight=1.0, nce_identity_weight=10.0, flip_equivariance=False),
       "cyeda": dict(base_width=2, n_masks=3, ndf=4, n_layers_d=3, init="normal", init_gain=0.02, lr=1e-4,
                     edge_weight=3.0, pool_size=3, reconstructions=True),
       "hedgan": dict(detector="hed", edge_weight=5.0),
       "hedngan": dict(detector="hed", edge_weight=5.0, student_lr=1e-6, student_beta1=0.9, student_beta2=0.999,
                       student_weight_decay=2e-4, student_lr_multipliers=True),
       "rcfngan": dict(detector="rcf", edge_weight=5.0, student_lr=1e-6, student_beta1=0.9, student_beta2=0.999,
                       student_weight_decay=2e-4)}


def tiny(family: str, **kw) -> GanSetup:
    common = GanTraining(crop=32, scale_min=0.8, lr=2e-4, beta1=0.5, beta2=0.999, sample_images=2, cache_images=True)
    entry = dict(batch_size=2, pairs_per_epoch=4, epochs_constant=1, epochs_decay=2, **OWN[family])
    if family != "cyeda":  # the ResNet-generator families
        entry.update(ngf=4, n_blocks=1, ndf=4, n_layers_d=2, norm="instance" if family == "cyclegan" else "batch",
                     init="normal" if family == "cyclegan" else "kaiming", init_gain=0.2)
    settings = parse(family_class(family).Settings, {**entry, **kw}, f"gan.families.{family}")
    detectors = {k: DetectorSettings(0.0625, "caffe255", None) for k in ("hed", "rcf")}
    return setup_for(family, common, settings, detectors)


@pytest.mark.parametrize("family", sorted(OWN))
def test_one_train_step_changes_generator(family):
    b = build(tiny(family), "cpu", seed=0)
    before = {k: v.clone() for k, v in b.generator().state_dict().items()}
    frozen = [n for n, r in b.roles.items() if r == "frozen"]
    frozen_before = [p.clone() for n in frozen for p in b.nets[n].parameters()]
    g = torch.Generator().manual_seed(1)
    losses = b.train_step((torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
                           torch.rand(2, 3, 32, 32, generator=g) * 2 - 1))
    assert all(np.isfinite(v) for v in losses.values())
    assert {"G", "G_adv"} <= set(losses)  # the generator losses dvc.yaml plots for every family
    after = b.generator().state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    assert all(torch.equal(a, p) for a, p in zip(frozen_before, (p for n in frozen for p in b.nets[n].parameters()),
                                                  strict=True))
    if family in ("hedngan", "rcfngan"):
        # the student starts as the teacher and moves
        assert "student" in losses
        s, t = b.nets["detector_student"], b.nets["detector_teacher"]
        assert any(not torch.equal(a, c) for a, c in zip(s.parameters(), t.parameters(), strict=True))
    # same seed -> same initial networks
    assert all(torch.equal(before[k], v) for k, v in build(tiny(family), "cpu", 0).generator().state_dict().items())


@pytest.mark.parametrize("family", ["cyclegan", "hedngan", "cut", "cyeda"])
def test_resume_after_sigterm_matches_uninterrupted(interrupted_and_resumed, family):
    s = tiny(family)
    ref, res, out, _ = interrupted_and_resumed(s)
    assert res.read_bytes() == ref.read_bytes()  # the same bytes as the uninterrupted run

    a, b = torch.load(ref, weights_only=True), torch.load(res, weights_only=True)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    log = json.loads((out / "log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2, 3]
    # CycleGAN's rule (1 + 2 epochs); CyEDA's keeps the base rate one epoch longer
    expected = [1.0, 1.0, 0.5] if family == "cyeda" else [1.0, 2 / 3, 1 / 3]
    assert [e["lr_factor"] for e in log["epochs"]] == pytest.approx(expected)
    assert all(e["images_per_s"] > 0 for e in log["epochs"])
    assert sorted(p.name for p in (out / "samples").iterdir()) == [f"epoch_00{i}.png" for i in (1, 2, 3)]
    assert Image.open(out / "samples" / "epoch_001.png").size == (2 * 32, 2 * 32)

    # the generator file loads through the translator registry and translates [0, 1] -> [0, 1]
    tr = load_translator(family, res, "cpu")
    y = tr.translate(torch.rand(1, 3, 30, 35))
    assert y.shape == (1, 3, 30, 35) and y.min() >= 0 and y.max() <= 1


def test_mismatched_checkpoint_is_not_resumed(tmp_path, gan_images):
    """A checkpoint of other settings/seed is set aside and training starts afresh (the DAG re-runs a
    job when its settings change)."""
    s = tiny("hedgan", epochs_constant=1, epochs_decay=1)

    def crash(epoch, step):  # leaves epoch 1's checkpoint (a finished run deletes its own)
        if (epoch, step) == (1, 0):
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train_gan(s, gan_images["day"], gan_images["night"], tmp_path / "a", "cpu", seed=0, on_step=crash)
    assert (tmp_path / "a" / "checkpoint.pt").is_file()
    train_gan(s, gan_images["day"], gan_images["night"], tmp_path / "a", "cpu", seed=1)
    train_gan(s, gan_images["day"], gan_images["night"], tmp_path / "b", "cpu", seed=1)
    assert (tmp_path / "a" / "checkpoint.stale.pt").is_file()
    assert (tmp_path / "a" / "generator.pt").read_bytes() == (tmp_path / "b" / "generator.pt").read_bytes()


def test_bf16_autocast_is_a_named_option_for_every_step(tmp_path, gan_images, monkeypatch):
    """gan.common.precision bf16 runs each training step under bfloat16 autocast (fp32, the paper's, is the default)
    and the generator it trains differs from fp32's."""
    import dataclasses

    s = tiny("cyclegan", epochs_constant=1, epochs_decay=0)
    assert s.common.precision == "fp32"
    modes = []
    bundle_cls = family_class("cyclegan")
    step = bundle_cls.train_step

    def spy(self, batch):
        modes.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
        return step(self, batch)

    monkeypatch.setattr(bundle_cls, "train_step", spy)
    a = train_gan(s, gan_images["day"], gan_images["night"], tmp_path / "a", "cpu", seed=0)
    assert modes and not any(modes)
    modes.clear()
    bf16 = dataclasses.replace(s, common=dataclasses.replace(s.common, precision="bf16"))
    b = train_gan(bf16, gan_images["day"], gan_images["night"], tmp_path / "b", "cpu", seed=0)
    assert modes and all(m == torch.bfloat16 for m in modes)
    assert a.read_bytes() != b.read_bytes()


class _Payload:
    """Stands for code a hostile pickle would run on load."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_checkpoint_needing_arbitrary_unpickling_is_refused(tmp_path, gan_images):
    """The resume path loads weights only: a checkpoint.pt that needs code to unpickle stops the run with
    one line naming the file, and nothing of it is executed or overwritten."""
    from darkside.errors import DarksideError

    s = tiny("hedgan", epochs_constant=1, epochs_decay=0)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"family": "hedgan", "payload": _Payload()}, run / "checkpoint.pt")
    before = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(DarksideError, match=r"checkpoint\.pt: unreadable checkpoint"):
        train_gan(s, gan_images["day"], gan_images["night"], run, "cpu", seed=0)
    assert (run / "checkpoint.pt").read_bytes() == before and not (run / "generator.pt").exists()


def test_fastcut_variant_trains_and_repeats_its_draws():
    """FastCUT (antialiased generator, flip-equivariance, no identity NCE): the same seed gives the same losses,
    since the patch locations and flips come from the bundle's own seeded generator."""
    setup = tiny("cut", variant="fastcut", n_blocks=5)
    assert (setup.settings.antialias, setup.settings.nce_identity_weight) == (True, 0.0)
    g = torch.Generator().manual_seed(2)
    batch = (torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1)
    runs = []
    for _ in range(2):
        torch.manual_seed(len(runs))  # the global RNG must not matter
        b = build(setup, "cpu", seed=0)
        runs.append([b.train_step(batch) for _ in range(3)])
    assert runs[0] == runs[1]
    assert all(step["NCE_Y"] == 0.0 for step in runs[0])


def test_preempted_run_rewrites_the_declared_outputs_the_workflow_deleted(tmp_path, gan_images, caplog, monkeypatch):
    """Snakemake deletes a failed (preempted) job's declared outputs (log.json, losses.csv, the samples folder)
    before the rerun; the resumed run restores every epoch's sample grid, byte for byte the uninterrupted run's,
    writes one log line per epoch and a progress bar of the epoch's steps."""
    import logging
    import shutil
    import signal

    import darkside.gan.train as gt
    from darkside.errors import Preempted

    bars = []

    class Bar:
        def __init__(self, total, **kw):
            bars.append({"total": total, "n": 0, "disable": kw.get("disable", False)})

        def update(self, n):
            bars[-1]["n"] += n

        def close(self):
            pass

    monkeypatch.setattr(gt, "tqdm", Bar)
    s = tiny("cyclegan")  # 3 epochs of 2 steps
    day, night = gan_images["day"], gan_images["night"]
    train_gan(s, day, night, tmp_path / "ref", "cpu", seed=3)

    def kill(epoch, step):
        if (epoch, step) == (1, 0):
            os.kill(os.getpid(), signal.SIGTERM)

    out = tmp_path / "run"
    with pytest.raises(Preempted):
        train_gan(s, day, night, out, "cpu", seed=3, on_step=kill)
    for name in ("log.json", "losses.csv"):
        (out / name).unlink()
    shutil.rmtree(out / "samples")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="darkside.gan.train"):
        train_gan(s, day, night, out, "cpu", seed=3)
    grids = [f"epoch_00{i}.png" for i in (1, 2, 3)]
    assert sorted(p.name for p in (out / "samples").iterdir()) == grids
    for g in grids:
        assert (out / "samples" / g).read_bytes() == (tmp_path / "ref" / "samples" / g).read_bytes(), g
    lines = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert len(lines) == 2, lines  # epochs 2 and 3: epoch 1 came from the checkpoint
    assert all(re.fullmatch(r"cyclegan epoch [23]/3: (\w+ [-0-9.e+]+, )*\w+ [-0-9.e+]+; [0-9.]+ images/s, "
                            r"[0-9.]+ s", line) for line in lines), lines
    assert "cycle " in lines[0] and "G_adv " in lines[0]
    # a bar per epoch over its steps, shown where there is a terminal: the reference run's 3, the interrupted run's
    # (stopped after the first step of epoch 2), the resumed run's 2
    assert all(b["total"] == 2 and b["disable"] is None for b in bars)
    assert [b["n"] for b in bars] == [2, 2, 2, 2, 1, 2, 2]

    # losses.csv: one row per epoch with the log's values; the columns dvc.yaml plots are among them
    from darkside.orchestration import PLOT_FIELDS

    log = json.loads((out / "log.json").read_text())["epochs"]
    with (out / "losses.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(PLOT_FIELDS["losses.csv"]) <= set(rows[0]) and set(log[0]["losses"]) <= set(rows[0])
    for r, e in zip(rows, log, strict=True):
        assert float(r["cycle"]) == pytest.approx(e["losses"]["cycle"], rel=1e-5)
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing else in the run folder: what the workflow declares, and the kept grids a resumed run rewrites
    # samples/ from; the checkpoint went once generator.pt was written
    assert {p.name for p in out.iterdir()} == {gt.GENERATOR, gt.LOG, gt.LOSSES, gt.CURVE, gt.SAMPLES,
                                               gt.CHECKPOINT_SAMPLES}


def test_a_job_stopped_after_its_last_checkpoint_rewrites_every_declared_output(tmp_path, gan_images, monkeypatch):
    """Preempted between the last epoch's checkpoint and generator.pt, the workflow deletes the job's declared
    outputs; the rerun has no epoch left to train and still writes all of them, the generator the same bytes."""
    import shutil

    import darkside.gan.train as gt
    from darkside.errors import Preempted

    s = tiny("hedgan", epochs_constant=1, epochs_decay=1)
    first = train_gan(s, gan_images["day"], gan_images["night"], tmp_path / "ref", "cpu", seed=0).read_bytes()
    out = tmp_path / "run"
    real_save = gt.save_generator

    def stopped(*a, **k):
        raise Preempted("SIGTERM")

    monkeypatch.setattr(gt, "save_generator", stopped)
    with pytest.raises(Preempted):
        train_gan(s, gan_images["day"], gan_images["night"], out, "cpu", seed=0)
    monkeypatch.setattr(gt, "save_generator", real_save)
    assert torch.load(out / gt.CHECKPOINT, weights_only=True)["epoch"] == 2
    declared = [gt.GENERATOR, gt.LOG, gt.LOSSES, gt.CURVE]
    for name in declared:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / gt.SAMPLES)
    monkeypatch.setattr(gt, "iterate_epoch", lambda *a, **k: pytest.fail("an epoch was trained again"))
    assert train_gan(s, gan_images["day"], gan_images["night"], out, "cpu", seed=0).read_bytes() == first
    assert not (out / gt.CHECKPOINT).exists()
    assert all((out / name).is_file() for name in declared)
    assert [e["epoch"] for e in json.loads((out / gt.LOG).read_text())["epochs"]] == [1, 2]
    assert sorted(p.name for p in (out / gt.SAMPLES).iterdir()) == ["epoch_001.png", "epoch_002.png"]


def test_a_familys_own_crop_replaces_the_common_one():
    assert tiny("cyclegan").common.crop == 32 and tiny("cyclegan").settings.crop is None
    own = tiny("cyclegan", crop=16)
    assert own.common.crop == 16  # every reader of the crop reads setup.common
    rng = np.random.default_rng(0)
    day = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(3)]
    night = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(3)]
    shapes = {tuple(t.shape) for batch in iterate_epoch(day, night, own, seed=0, epoch=1) for t in batch}
    assert shapes == {(2, 3, 16, 16)}
    with pytest.raises(ConfigError, match="crop"):
        tiny("cyclegan", crop=0)
