"""params.yaml: one generated schema, one-line errors naming the key path, references between sections,
job views, and the paper preset's extraction/evaluation values (SPEC sections 7 and 8)."""

import copy
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from darkside.config import (
    SCHEMA_PATH,
    BackboneSettings,
    EvaluateSettings,
    ExtractSettings,
    JobSettings,
    ScoreSettings,
    load_params,
    validate,
)
from darkside.errors import ConfigError


@pytest.fixture()
def params(repo_root):
    return load_params(repo_root / "params.yaml")


def _error(params) -> str:
    with pytest.raises(ConfigError) as exc:
        validate(params)
    return str(exc.value)


def test_committed_params_are_valid(params):
    assert params["preset"] == "mini"
    assert set(params["presets"]) >= {"mini", "paper"}


def test_the_committed_schema_is_what_the_registries_give(repo_root):
    """The schema is generated from the settings dataclasses and the registries (families, architectures,
    detectors, datasets): a new ingredient without `darkside schema` fails here."""
    from darkside.schema import render_schema

    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), "run `darkside schema`"
    link = repo_root / "workflow" / "schemas" / "params.schema.yaml"
    assert link.resolve() == SCHEMA_PATH.resolve()
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    from darkside.data.registry import dataset_names
    from darkside.embed.backbones import ARCHS
    from darkside.gan.edges import DETECTORS
    from darkside.gan.family import FAMILIES

    assert schema["$defs"]["datasets"]["enum"] == dataset_names()
    assert schema["$defs"]["archs"]["enum"] == sorted(ARCHS)
    preset = schema["properties"]["presets"]["additionalProperties"]["properties"]
    assert sorted(preset["gan"]["properties"]["families"]["properties"]) == sorted(FAMILIES)
    assert sorted(preset["edges"]["properties"]["detectors"]["properties"]) == sorted(DETECTORS)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["extract"].update(scalez=[1]), "params.yaml: presets.mini.extract.scalez: unknown key"),
    (lambda m: m["evaluate"].pop("recall_ks"), "presets.mini.evaluate: 'recall_ks' is a required property"),
    (lambda m: m["backbones"]["vgg16"].update(init="imagenet"), "presets.mini.backbones.vgg16.init: 'imagenet'"),
    (lambda m: m["backbones"]["vgg16"].update(arch="vgg61"), "presets.mini.backbones.vgg16.arch: 'vgg61'"),
    (lambda m: m["gan"]["families"]["hedngan"].update(student_lrr=1e-5),
     "presets.mini.gan.families.hedngan.student_lrr: unknown key"),
    (lambda m: m["gan"]["families"].update(unet={}), "presets.mini.gan.families.unet: unknown key"),
    (lambda m: m["gan"]["families"]["cyclegan"].update(variant="fast"), "presets.mini.gan.families.cyclegan.variant"),
    (lambda m: m["finetune"]["margins"].update(vgg61=0.7),
     "presets.mini.finetune.margins.vgg61: 'vgg61' is not one of presets.mini.backbones (resnet101, resnet18, vgg16)"),
    (lambda m: m["recipes"].update(vgg61=["gem"]), "presets.mini.recipes.vgg61: 'vgg61' is not one of"),
    (lambda m: m["backbone_pretrain"]["steps"].update(vgg61=3), "presets.mini.backbone_pretrain.steps.vgg61"),
    (lambda m: m["edges"]["detectors"].pop("rcf"),
     "presets.mini.gan.families.rcfngan.detector: 'rcf' is not one of presets.mini.edges.detectors (hed)"),
    (lambda m: m["data"]["roles"].update(tokyo="tokyo-by-night"), "presets.mini.data.roles.tokyo: 'tokyo-by-night'"),
    # a variant's overrides are checked as its family's settings; its family must have an entry; its name is its own
    (lambda m: m["gan"]["variants"]["mduit-no-i2i"]["overrides"].update(translatoin="colour-jitter"),
     "params.yaml: presets.mini.gan.variants.mduit-no-i2i.overrides.translatoin: unknown key"),
    (lambda m: m["gan"]["variants"]["mduit-no-nce"]["overrides"].update(consistency="l2"),
     "presets.mini.gan.variants.mduit-no-nce.overrides.consistency: 'l2' is not one of ['nce', 'l1']"),
    (lambda m: m["gan"]["variants"]["mduit-no-nce"]["overrides"].update(ngf=0),
     "presets.mini.gan.variants.mduit-no-nce.overrides.ngf: 0 is less than the minimum of 1"),
    (lambda m: m["gan"]["variants"].update(x={"family": "mduit"}),
     "presets.mini.gan.variants.x: 'overrides' is a required property"),
    (lambda m: m["gan"]["variants"].update(x={"family": "unet", "overrides": {}}),
     "presets.mini.gan.variants.x.family: 'unet' is not one of"),
    (lambda m: m["gan"]["variants"].update(cut={"family": "mduit", "overrides": {}}),
     "presets.mini.gan.variants.cut: the name of a family or published generator"),
    (lambda m: m["gan"]["variants"].update(Big={"family": "mduit", "overrides": {}}),
     "presets.mini.gan.variants: 'Big' does not match"),
])
def test_bad_params_name_the_key_in_one_line(params, change, message):
    p = copy.deepcopy(params)
    change(p["presets"]["mini"])
    msg = _error(p)
    assert message in msg and "\n" not in msg


def test_wrong_type_is_named(params):
    p = copy.deepcopy(params)
    p["presets"]["paper"]["extract"]["scales"][1] = "half"
    assert _error(p).startswith("params.yaml: presets.paper.extract.scales[1]: 'half' is not of type 'number'")


def test_unknown_preset(params):
    p = copy.deepcopy(params)
    p["preset"] = "huge"
    assert "preset: 'huge'" in _error(p)


def test_cli_reports_schema_error_in_one_line(tmp_path, repo_root, capsys):
    from darkside.cli import main

    p = yaml.safe_load((repo_root / "params.yaml").read_text())
    p["presets"]["mini"]["evaluate"]["chunk_size"] = 0
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(p))
    assert main(["params", "--params", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "presets.mini.evaluate.chunk_size" in err


def test_snakemake_dry_run_reports_a_bad_key_in_one_line(repo_root, tmp_path):
    p = yaml.safe_load((repo_root / "params.yaml").read_text())
    p["presets"]["mini"]["gan"]["families"]["hedngan"]["student_lrr"] = 1e-5
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(p))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(cfg)], cwd=repo_root,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines()
             if line.strip() and not line.startswith("Config file params.yaml is extended")]  # Snakemake's note
    assert lines == ["darkside: error: params.yaml: presets.mini.gan.families.hedngan.student_lrr: unknown key"]


def test_presets_share_one_structure(params):
    """Same code, two scales: the presets differ in values only, never in keys."""
    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k not in ("backbones", "steps", "published", "normalisation", "cross_domain",
                                                   "variants", "overrides"):
                # maps of named entries (a dataset each, which differ by preset)
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(params["presets"]["mini"]) == keys(params["presets"]["paper"])


def test_overlay_files_merge_key_by_key(repo_root, tmp_path):
    over = tmp_path / "overlay.yaml"
    over.write_text("presets: {mini: {evaluate: {bootstrap_samples: 2000}}}\n")
    p = load_params(repo_root / "params.yaml", overlays=[over])
    assert p["presets"]["mini"]["evaluate"]["bootstrap_samples"] == 2000
    assert p["presets"]["mini"]["evaluate"]["chunk_size"] == 8192  # the rest of the section stays


def test_a_job_reads_exactly_its_leaves(params):
    job = JobSettings.select(params, ["evaluate.chunk_size", "finetune.margins.vgg16", "device"])
    assert job.values == {"evaluate": {"chunk_size": 8192}, "finetune": {"margins": {"vgg16": 0.75}},
                          "device": "cpu"}
    assert job.param_keys() == ["presets.mini.evaluate.chunk_size", "presets.mini.finetune.margins.vgg16",
                                "presets.mini.device"]
    again = JobSettings.from_json(job.to_json())
    assert again == job
    with pytest.raises(ConfigError, match=r"presets\.mini\.evaluate\.recall_ks: not among this job's settings"):
        job.get("evaluate.recall_ks")
    with pytest.raises(ConfigError, match=r"presets\.mini\.nope: missing key"):
        JobSettings.select(params, ["nope"])


def test_every_verb_reads_settings_that_parse(params):
    """Each verb's declared reads exist in both presets, and the CLI's job view parses into its settings."""
    from darkside.cli import VERBS, job_settings

    options = {"backbone": "vgg16", "family": "hedngan", "kind": "hed", "teacher": ["hed=x"], "item": [],
               "name": "cyeda-bdd", "learner": "resnet50-daco", "dataset": "data/prepared/tokyo247-daco",
               "method": "sift-bow"}
    for name, preset in (("mini", "mini"), ("paper", "paper")):
        for verb in VERBS:
            if verb == "import-generator" and not params["presets"][preset]["gan"]["published"]:
                with pytest.raises(ConfigError, match=r"gan\.published\.cyeda-bdd: no such published generator"):
                    job_settings(verb, params, preset, options)
                continue
            if verb == "train-daco" and "tokyo247-daco" not in params["presets"][preset]["daco"]["normalisation"]:
                with pytest.raises(ConfigError, match=r"daco\.normalisation: no entry for 'tokyo247-daco'"):
                    job_settings(verb, params, preset, options)
                continue
            job = job_settings(verb, params, preset, options)
            assert job.preset == name
    job = job_settings("score", params, "paper", options)
    s = job.section("evaluate", ScoreSettings)
    assert s.recall_ks == (1, 2, 4, 8)


# --- the paper preset carries the paper's values (SPEC sections 7 and 8) -------------------------------

def _paper(params, path, cls):
    return JobSettings.select(params, [path], "paper").section(path, cls)


def test_paper_preset_extraction_values(params):
    e = _paper(params, "extract", ExtractSettings)
    assert e.image_size == 1024  # test images at max side 1024
    assert e.scales == pytest.approx((1.0, 2 ** -0.5, 0.5))  # scales 1, 1/sqrt(2), 1/2
    paper = params["presets"]["paper"]
    # whitening fitted at 1024 px, all dims; NetVLAD's 32,768-D reduced to 4,096 by PCA first
    assert paper["whitening"] == {"image_size": 1024, "dims": None, "pca_dims": 4096}
    assert paper["data"]["roles"]["whiten"] == "sfm120k-whiten"
    assert paper["day_night"]["min_side"] == 512


def test_paper_preset_daco_values(params):
    """DaCo's main.py and utils.py (../shared/reference/anchors-generators.md section 3.11)."""
    from darkside.embed.daco import AveragePooling, DacoSettings, NetVladPooling, Normalisation
    from darkside.embed.objectives.daco import DacoObjectiveSettings
    from darkside.embed.objectives.moco import MocoSettings
    from darkside.embed.objectives.npid import NpidSettings
    from darkside.embed.objectives.simclr import SimclrSettings
    from darkside.embed.objectives.simsiam import SimsiamSettings

    d = _paper(params, "daco.learners.resnet50-daco", DacoSettings)
    assert d.objective == {"daco": DacoObjectiveSettings(lam=0.8, temperature=0.1, extra_cross=False)}
    assert d.hidden_dim == 512
    assert (d.batch_size, d.iterations, d.lr, d.weight_decay) == (16, 10000, 1e-3, 1e-6)
    assert (d.crop, d.crop_scale, d.eval_resize) == (256, (0.2, 1.0), 256)
    assert d.crop_ratio == pytest.approx((3 / 4, 4 / 3))  # torchvision's RandomResizedCrop default
    assert (d.jitter, d.jitter_p, d.grayscale_p, d.flip_p) == ((0.4, 0.4, 0.4, 0.1), 0.8, 0.2, 0.5)
    assert d.translations == "translator"
    # the baselines: DaCo's recipe but their objective, batch size (main.py, README) and no translated views
    baselines = {"resnet50-simclr": ({"simclr": SimclrSettings(temperature=0.1)}, 32),
                 "resnet50-moco": ({"moco": MocoSettings(temperature=0.1, negatives=4096, momentum=0.999)}, 32),
                 "resnet50-npid": ({"npid": NpidSettings(temperature=0.1, negatives=4096, momentum=0.5)}, 64),
                 "resnet50-simsiam": ({"simsiam": SimsiamSettings()}, 32)}
    assert set(params["presets"]["paper"]["daco"]["learners"]) == {"resnet50-daco", "resnet50-netvlad", *baselines}
    assert d.pooling == {"average": AveragePooling()}
    for name, (objective, batch) in baselines.items():
        got = _paper(params, f"daco.learners.{name}", DacoSettings)
        assert got == type(d)(**{**d.__dict__, "objective": objective, "batch_size": batch, "translations": "none"})
        got.check(name)
    # NetVLAD: SimCLR's learner with NetVLAD pooling, K 64 initialised as the authors (500 images x 100 features,
    # 100 k-means iterations, ratio 100: the suite's netvlad network)
    netvlad = _paper(params, "daco.learners.resnet50-netvlad", DacoSettings)
    assert netvlad == type(d)(**{**_paper(params, "daco.learners.resnet50-simclr", DacoSettings).__dict__,
                                 "pooling": {"netvlad": NetVladPooling(64, 500, 100, 100, 100.0)}})
    b = _paper(params, "daco.backbone", BackboneSettings)
    assert (b.arch, b.width, b.blocks, b.init, b.weights) == ("resnet50", 1.0, None, "random", None)
    assert params["presets"]["paper"]["daco"]["seed"] == 1
    norm = {k: _paper(params, f"daco.normalisation.{k}", Normalisation)
            for k in params["presets"]["paper"]["daco"]["normalisation"]}
    assert norm == {"tokyo247-daco": Normalisation((0.334, 0.332, 0.320), (0.241, 0.237, 0.242)),
                    "foggy-cityscapes": Normalisation((0.401, 0.437, 0.401), (0.186, 0.187, 0.187)),
                    "synthia-seqs": Normalisation((0.244, 0.221, 0.177), (0.192, 0.174, 0.144))}


def test_paper_preset_daco_runs_variants_and_translator(params):
    """DaCo's Table 4 (lambda 0.0-1.0 in steps of 0.1, 0.8 being DaCo itself), Table 5 (o2's two cross-domain
    terms) and Table 6 (random cropping with
    each subset of jitter, grey and flip at DaCo's probabilities) as variants of resnet50-daco, all on the fog
    task; Tables 1-3's DaCo and SimCLR on every task; ForkGAN with its own settings as the translator."""
    from darkside.config import daco_learner_entry
    from darkside.embed.daco import DacoSettings
    from darkside.settings import parse

    daco = params["presets"]["paper"]["daco"]
    lambdas = {f"resnet50-daco-lambda{round(10 * lam):02d}": lam for lam in
               (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9, 1.0)}
    augmentations = {f"resnet50-daco-aug-{name}": probs for name, probs in {
        "crop": (0, 0, 0), "crop-jitter": (0.8, 0, 0), "crop-gray": (0, 0.2, 0), "crop-flip": (0, 0, 0.5),
        "crop-jitter-gray": (0.8, 0.2, 0), "crop-jitter-flip": (0.8, 0, 0.5), "crop-gray-flip": (0, 0.2, 0.5)}.items()}
    assert set(daco["variants"]) == set(lambdas) | set(augmentations) | {"resnet50-daco-extra-cross"}
    base = parse(DacoSettings, daco["learners"]["resnet50-daco"], "resnet50-daco")
    for name in daco["variants"]:
        v = parse(DacoSettings, daco_learner_entry(daco, name), name)
        if name in lambdas or name == "resnet50-daco-extra-cross":  # Table 4's lambda, Table 5's two terms
            change = {"lam": lambdas[name]} if name in lambdas else {"extra_cross": True}
            objective = {"daco": dataclasses.replace(base.objective["daco"], **change)}
            assert v == type(base)(**{**base.__dict__, "objective": objective}), name
        else:
            j, g, f = augmentations[name]
            assert v == type(base)(**{**base.__dict__, "jitter_p": j, "grayscale_p": g, "flip_p": f}), name
    assert base.translations == "translator" and daco["learners"]["resnet50-simclr"]["translations"] == "none"
    assert daco["translator"] == {"family": "forkgan", "overrides": {}}
    tables = ["resnet50-daco", "resnet50-simclr", "resnet50-moco", "resnet50-npid", "resnet50-simsiam", "sift-matches",
              "sift-bow", "sift-vlad", "resnet50-netvlad"]
    assert daco["runs"] == {"daco_night": tables,
                            "daco_fog": [*tables, *lambdas, "resnet50-daco-extra-cross", *augmentations],
                            "daco_rain": tables}


def test_paper_preset_backbones(params):
    vgg = _paper(params, "backbones.vgg16", BackboneSettings)
    r101 = _paper(params, "backbones.resnet101", BackboneSettings)
    assert (vgg.arch, vgg.width, vgg.blocks, vgg.init) == ("vgg16", 1.0, None, "imagenet-caffe")
    assert vgg.weights.endswith("imagenet-caffe-vgg16-features-d369c8e.pth")
    assert (r101.arch, r101.width, r101.blocks, r101.init) == ("resnet101", 1.0, None, "imagenet-caffe")
    assert r101.weights.endswith("imagenet-caffe-resnet101-features-10a101d.pth")


def test_paper_preset_evaluation_values(params):
    ev = _paper(params, "evaluate", EvaluateSettings)
    assert ev.recall_ks == (1, 2, 4, 8)
    assert ev.localization_thresholds == ((0.25, 2.0), (0.5, 5.0), (5.0, 10.0))
    assert ev.pairs_topk == 20


def test_paper_preset_backbone_pretraining_adds_no_lighting_jitter(params):
    # the paper starts from ImageNet weights; its (unused) pre-training block leaves tone curves and colour alone
    bp = params["presets"]["paper"]["backbone_pretrain"]
    assert bp["gamma"] == [1.0, 1.0] and bp["grayscale"] == 0.0


def test_paper_preset_daco_handcrafted_baselines_and_match_kernel(params):
    """DaCo's reverted sift.py, bow.py and vlad.py: OpenCV's SIFT (every keypoint, contrast 0.04) on images 256 px
    high; Lowe's 0.7 ranked by the number of matches; 64 BoW words; VLAD on each image's own 4 centres."""
    from darkside.config import MatchCountSettings
    from darkside.extract.handcrafted import HandcraftedMethod, SiftSettings
    from darkside.extract.handcrafted.bow import BowSettings
    from darkside.extract.handcrafted.matches import MatchesSettings
    from darkside.extract.handcrafted.vlad import VladSettings

    sift = SiftSettings(height=256, contrast_threshold=0.04, max_keypoints=0)
    got = {n: _paper(params, f"daco.handcrafted.{n}", HandcraftedMethod)
           for n in params["presets"]["paper"]["daco"]["handcrafted"]}
    assert got == {"sift-matches": HandcraftedMethod(sift, {"matches": MatchesSettings()}),
                   "sift-bow": HandcraftedMethod(sift, {"bow": BowSettings(words=64, iterations=300, seed=0)}),
                   "sift-vlad": HandcraftedMethod(sift, {"vlad": VladSettings(clusters=4, codebook="per-image",
                                                                              iterations=300, seed=0)})}
    assert _paper(params, "evaluate.matches", MatchCountSettings) == MatchCountSettings(ratio=0.7, score="count")
