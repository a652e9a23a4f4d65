"""DaCo's translator (darkside.gan.pair_translations, `darkside train-daco-translator`) and the daco section's
variants, translator and runs: ForkGAN's way back in its generator file, the translations of exactly the training
images, the CLI job, the checks of params.yaml and the DAG's jobs."""

import copy
import os

import numpy as np
import pytest
import torch
from PIL import Image
from test_embed_daco import pair_set  # noqa: F401  (a fixture: 4 training and 3 evaluation pairs)
from test_gan_forkgan import tiny

from darkside.errors import ConfigError, DarksideError
from darkside.gan import pair_translations
from darkside.gan.family import build, load_generator, save_generator

torch.set_num_threads(1)


def _rgb(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def test_forkgan_file_keeps_the_translation_branch_of_its_night_to_day_generator(tmp_path):
    """G_Y's translation branch (encoder + translation decoder, no noise) goes along: loaded with night_to_day it
    maps exactly as the bundle's own G_Y branch does, and differs from the day->night branch."""
    bundle = build(tiny(), "cpu", seed=3)
    path = save_generator(bundle, tmp_path / "generator.pt")
    x = torch.rand(1, 3, 16, 20)
    back = load_generator(path, night_to_day=True).translate(x)
    with torch.no_grad():
        expected = ((bundle.nets["generator_Y"].branch.eval()(x * 2 - 1) + 1) / 2).clamp(0, 1)
    assert torch.allclose(back, expected, atol=1e-6)
    assert not torch.allclose(back, load_generator(path).translate(x))


def test_translations_are_the_training_images_through_their_own_direction(pair_set, tmp_path):  # noqa: F811
    """Every training image and nothing else gets a translation at its manifest path: domain A's by the
    day->night generator, B's by the night->day one; the folder is renamed into place (no staging left)."""
    root, _ = pair_set
    _, ids_a, ids_b = pair_translations.training_images(root)
    assert ids_a == [f"train/day/{k}.png" for k in range(4)] and ids_b == [f"train/night/{k}.png" for k in range(4)]
    gen = save_generator(build(tiny(), "cpu", seed=1), tmp_path / "generator.pt")
    out = pair_translations.write_translations(gen, root, tmp_path / "translations")
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == sorted(ids_a + ids_b)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".translations")]
    for ids, back in ((ids_a, False), (ids_b, True)):
        translator = load_generator(gen, night_to_day=back)
        for i in ids[:2]:
            src = torch.from_numpy(_rgb(root / "images" / i)).permute(2, 0, 1)[None]
            expected = translator.translate(src)[0].permute(1, 2, 0).numpy()
            assert np.abs(_rgb(out / i) - expected).max() <= 0.5 / 255 + 1e-6


def test_a_set_without_cross_domain_pairs_is_refused(tmp_path):
    from darkside.data.manifest import GroundTruth, ImageRecord, write_dataset

    root = tmp_path / "not-pairs"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / "a.png")
    write_dataset(root, "not-pairs", [ImageRecord("a.png", "a.png", "train", "day", "c", "c", 8, 8)],
                  GroundTruth("training"))
    with pytest.raises(DarksideError, match=r"not-pairs: protocol 'training'; a DaCo translator trains on a "
                                            r"cross_domain pair set"):
        pair_translations.training_images(root)


def _params_with_tiny_translator(repo_root, family="forkgan"):
    import yaml

    from darkside.settings import to_plain

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    mini = params["presets"]["mini"]
    setup = tiny()
    mini["gan"]["common"] = {**mini["gan"]["common"], **to_plain(setup.common)}
    mini["gan"]["families"]["forkgan"] = to_plain(setup.settings)
    mini["daco"]["translator"] = {"family": family, "overrides": {"pairs_per_epoch": 2}}
    return params


def test_train_daco_translator_trains_the_family_and_translates(pair_set, tmp_path, repo_root):  # noqa: F811
    """The CLI job: daco.translator's family entry with its overrides (pairs_per_epoch 2) trains on domain A as
    day and B as night, and the translations come from the generator it wrote; a one-way family is refused before
    any training."""
    import json

    from darkside.cli import job_settings, main

    root, _ = pair_set
    params = _params_with_tiny_translator(repo_root)
    handed = job_settings("train-daco-translator", params, "mini", {}).to_json()
    assert sorted(json.loads(handed)["values"]["daco"]) == ["seed", "translator"]
    run, out = tmp_path / "run", tmp_path / "translations"
    assert main(["--settings", handed, "train-daco-translator", "--dataset", str(root), "--out-dir", str(run),
                 "--translations", str(out)]) == 0
    obj = torch.load(run / "generator.pt", weights_only=True)
    assert obj["family"] == "forkgan" and obj["setup"]["settings"]["pairs_per_epoch"] == 2
    assert "night_to_day_state_dict" in obj
    assert len(list(out.rglob("*.png"))) == 8
    one_way = copy.deepcopy(params)
    one_way["presets"]["mini"]["daco"]["translator"]["family"] = "cut"
    one_way["presets"]["mini"]["daco"]["translator"]["overrides"] = {}
    assert main(["--settings", job_settings("train-daco-translator", one_way, "mini", {}).to_json(),
                 "train-daco-translator", "--dataset", str(root), "--out-dir", str(tmp_path / "cut"),
                 "--translations", str(tmp_path / "cut-tr")]) == 2
    assert not (tmp_path / "cut").exists()


def test_a_variant_trains_its_learner_with_the_overrides(pair_set, tmp_path, repo_root):  # noqa: F811
    """`train-daco --learner <variant>`: the learner's entry with the variant's overrides (lambda 0), recorded in
    the model file; the job reads the learner's entry and the variant's, nothing of the other learners."""
    import json

    from test_embed_daco import _mini_params_with

    from darkside.cli import job_settings, main

    root, gen = pair_set
    params, section = _mini_params_with(repo_root, "tiny")
    section["variants"] = {"tiny-lambda00": {"learner": "tiny", "overrides": {"objective": {"daco": {"lam": 0.0}}}}}
    opts = {"learner": "tiny-lambda00", "dataset": str(root)}
    handed = job_settings("train-daco", params, "mini", opts).to_json()
    values = json.loads(handed)["values"]["daco"]
    assert list(values["learners"]) == ["tiny"] and list(values["variants"]) == ["tiny-lambda00"]
    assert main(["--settings", handed, "train-daco", "--learner", "tiny-lambda00", "--dataset", str(root),
                 "--translations", str(gen), "--out-dir", str(tmp_path / "v")]) == 0
    config = torch.load(tmp_path / "v" / "model.pt", weights_only=True)["config"]
    assert config["settings"]["objective"] == {"daco": {"lam": 0.0, "temperature": 0.1, "extra_cross": False}}
    with pytest.raises(ConfigError, match=r"daco\.learners: no learner or variant 'nope'"):
        job_settings("train-daco", params, "mini", {"learner": "nope", "dataset": str(root)})


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["variants"]["resnet50-daco-lambda00"]["overrides"]["objective"]["daco"].update(lam=-1),
     r"daco\.variants\.resnet50-daco-lambda00\.overrides\.objective\.daco\.lam: -1 is less than the minimum of 0"),
    (lambda d: d["variants"]["resnet50-daco-lambda00"]["overrides"]["objective"].update(simclr={"temperature": 1}),
     r"daco\.variants\.resnet50-daco-lambda00\.overrides\.objective: .*'simclr'.* has too many properties"),
    (lambda d: d["learners"]["resnet50-moco"]["objective"]["moco"].pop("negatives"),
     r"daco\.learners\.resnet50-moco\.objective\.moco: 'negatives' is a required property"),
    (lambda d: d["learners"]["resnet50-moco"].update(objective={"byol": {}}),
     r"daco\.learners\.resnet50-moco\.objective\.byol: unknown key"),
    (lambda d: d["variants"]["resnet50-daco-lambda00"]["overrides"].update(bogus=1),
     r"daco\.variants\.resnet50-daco-lambda00\.overrides\.bogus: unknown key"),
    (lambda d: d["variants"].update({"resnet50-simclr": {"learner": "resnet50-daco", "overrides": {}}}),
     r"daco\.variants\.resnet50-simclr: the name of a learner"),
    (lambda d: d["variants"]["resnet50-daco-lambda00"].update(learner="x"),
     r"daco\.variants\.resnet50-daco-lambda00\.learner: 'x' is not one of presets\.mini\.daco\.learners"),
    (lambda d: d["translator"]["overrides"].update(ngf=0),
     r"daco\.translator\.overrides\.ngf: 0 is less than the minimum of 1"),
    (lambda d: d["runs"]["daco_fog"].append("nope"),
     r"daco\.runs\.daco_fog\[3\]: 'nope' is no daco\.learners, daco\.variants or daco\.handcrafted entry"),
    (lambda d: d["runs"].update(daco_x=["resnet50-daco"]),
     r"daco\.runs\.daco_x: 'daco_x' is not one of presets\.mini\.data\.roles\.cross_domain"),
    (lambda d: d["variants"].update({"resnet50-daco-lambda0.5": {"learner": "resnet50-daco", "overrides": {}}}),
     r"daco\.variants: 'resnet50-daco-lambda0\.5' does not match"),
])
def test_params_daco_section_is_checked(repo_root, change, message):
    import yaml

    from darkside.config import validate

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    change(params["presets"]["mini"]["daco"])
    with pytest.raises(ConfigError, match=message):
        validate(params)


def test_dag_hands_each_run_the_translations_its_settings_name(repo_root):
    """DaCo reads its task's translator's folder (a DAG output), the renderer variant the pair set's own
    translations/ (the ceiling), SimCLR none; every learned run is scored by the score_daco job, the SIFT method's
    by score_daco_matches (--matches), into the metrics files the tables read."""
    from test_orchestration import _dag_jobs

    jobs = _dag_jobs(repo_root)
    train = {(j["wildcards"]["learner"], j["wildcards"]["dataset"]): j for j in jobs if j["rule"] == "train_daco"}
    assert set(train) == {(n, f"synth-daco-{t}") for t, ns in (
        ("night", ["resnet50-daco", "resnet50-simclr", "resnet50-daco-renderer"]),
        ("fog", ["resnet50-daco", "resnet50-simclr", "resnet50-daco-lambda00"]),
        ("rain", ["resnet50-daco", "resnet50-simclr"])) for n in ns}
    night = "synth-daco-night"
    assert " --translations results/daco/translations/synth-daco-night " in train["resnet50-daco", night]["cmd"]
    assert "results/daco/translations/synth-daco-night" in train["resnet50-daco", night]["input"]
    assert " --translations data/prepared/synth-daco-night/translations " in train["resnet50-daco-renderer",
                                                                                  night]["cmd"]
    assert "--translations" not in train["resnet50-simclr", night]["cmd"]
    # each learner writes its evaluation pairs' descriptors itself: no extraction job of its own
    assert (" --descriptors results/descriptors/resnet50-daco/synth-daco-night.h5 "
            in train["resnet50-daco", night]["cmd"])
    (score,) = [j for j in jobs if j["rule"] == "score_daco"]
    handcrafted = {(j["wildcards"]["method"], j["wildcards"]["dataset"]) for j in jobs
                   if j["rule"] == "extract_handcrafted"}
    assert handcrafted == {(m, night) for m in ("sift-matches", "sift-bow", "sift-vlad")}
    (matches,) = [j for j in jobs if j["rule"] == "score_daco_matches"]
    assert " score --matches " in matches["cmd"]
    assert [o for o, _ in matches["output"]] == [f"results/metrics/sift-matches/{night}.json"]
    assert sorted(o for o, _ in score["output"]) == sorted(f"results/metrics/{n}/{d}.json" for n, d in
                                                           [*train, ("sift-bow", night), ("sift-vlad", night)])
    assert sorted(score["input"]) == sorted({*[f for d in ("night", "fog", "rain") for f in (
        f"data/prepared/synth-daco-{d}/manifest.csv", f"data/prepared/synth-daco-{d}/dataset.json",
        f"data/prepared/synth-daco-{d}/groundtruth.json")], *(f"results/descriptors/{n}/{d}.h5" for n, d in
                                                             [*train, ("sift-bow", night), ("sift-vlad", night)])})
    (tables,) = [j for j in jobs if j["rule"] == "tables"]
    assert {o for o, _ in [*score["output"], *matches["output"]]} <= set(tables["input"])


def test_the_baselines_overlay_adds_the_learned_baselines_to_the_mini_runs(repo_root):
    """workflow/overlays/mini-daco-baselines.yaml: the mini runs plus MoCo, NPID, SimSiam, NetVLAD (night) and crop-only
    (fog), a valid params file once merged."""
    from darkside.config import load_params

    base = load_params(repo_root / "params.yaml")["presets"]["mini"]["daco"]["runs"]
    merged = load_params(repo_root / "params.yaml", [repo_root / "workflow/overlays/mini-daco-baselines.yaml"])
    runs = merged["presets"]["mini"]["daco"]["runs"]
    assert set(runs["daco_night"]) - set(base["daco_night"]) == {"resnet50-moco", "resnet50-npid", "resnet50-simsiam",
                                                                 "resnet50-netvlad"}
    assert set(runs["daco_fog"]) - set(base["daco_fog"]) == {"resnet50-daco-aug-crop"}
    assert all(set(base[r]) <= set(runs[r]) for r in base) and runs["daco_rain"] == base["daco_rain"]
