"""The darkside command: every Snakemake rule and DVC stage calls one of its verbs.

Any stage can therefore be run by hand. Each verb declares the settings it reads (``reads``: dotted
paths of sections or leaves of one preset). Under Snakemake the DAG resolves them once, overlays
included, and hands them over with ``--settings``; by hand and under DVC the verb takes them from
params.yaml (``--params``, ``--preset``). Either way the job computes with exactly what the DAG
tracks for it. Heavy modules are imported inside the verbs to keep ``--help`` instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkside.errors import PREEMPTED_STATUS, ConfigError, DarksideError, Preempted

log = logging.getLogger("darkside")

Reads = Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]]
Arg = tuple[tuple[str, ...], dict[str, Any]]


def arg(*flags: str, **options: Any) -> Arg:
    """One option of a verb, as ``argparse.ArgumentParser.add_argument`` takes it."""
    return flags, options


@dataclass(frozen=True)
class Verb:
    help: str
    run: Callable[[argparse.Namespace, Any], object]
    reads: Reads | None  # None: the verb reads no settings (and so needs no params file)
    args: tuple[Arg, ...]


VERBS: dict[str, Verb] = {}


def verb(name: str, help: str, reads: Sequence[str] | Reads | None = None, args: Sequence[Arg] = ()) -> Callable:
    """Register ``run(args, job)`` as verb ``name`` with its options ``args``. ``reads``: the settings it
    reads, as paths whose ``{option}`` placeholders are the verb's options, or a function of (options,
    preset); ``job`` is then their :class:`~darkside.config.JobSettings` (None for a verb that reads none)."""
    def formatted(options: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
        return [r.format(**options) for r in reads]  # type: ignore[union-attr]

    def register(fn: Callable[[argparse.Namespace, Any], object]):
        VERBS[name] = Verb(help, fn, None if reads is None else reads if callable(reads) else formatted, tuple(args))
        return fn
    return register


def job_settings(verb_name: str, params: Mapping[str, Any], preset: str | None = None,
                 options: Mapping[str, Any] | None = None):
    """The :class:`~darkside.config.JobSettings` verb ``verb_name`` with these ``options`` reads from
    validated ``params`` (what the DAG hands each job, and what a job run by hand reads)."""
    from darkside.config import JobSettings

    name = preset or params["preset"]
    reads = VERBS[verb_name].reads
    return JobSettings.select(params, reads(options or {}, params["presets"][name]) if reads else [], name)


def _device(name: str) -> str:
    from darkside.training import resolve_device
    return str(resolve_device(name))


# --- params ------------------------------------------------------------------------------------------

@verb("params", "validate params.yaml against the schema and print the active preset")
def run_params(args: argparse.Namespace, job: Any) -> None:
    from darkside.config import load_params
    params = load_params(args.params)
    name = args.preset or params["preset"]
    print(json.dumps({"preset": name, **params["presets"][name]}, indent=2, sort_keys=True))


@verb("schema", "regenerate the params.yaml JSON schema from the settings dataclasses and the registries",
      args=[arg("--out", default=None, help="default: the package's schemas/params.schema.yaml")])
def run_schema(args: argparse.Namespace, job: Any) -> Path:
    from darkside.schema import SCHEMA_PATH, write_schema
    return write_schema(Path(args.out) if args.out else SCHEMA_PATH)


# --- data --------------------------------------------------------------------------------------------

@verb("synth", "generate the embedded synthetic day/night benchmark (all synth-* datasets)", ("data.synthetic",),
      args=[arg("--out", default="data/prepared", help="folder that receives data/prepared/synth-*"),
            arg("--calibration", default=None, help="where to put the night-model calibration JSON")])
def run_synth(args: argparse.Namespace, job: Any) -> list[Path]:
    from darkside.data.synthetic import SyntheticParams, generate
    # the calibration report is a metric: the DAG keeps it with the other metric files, outside data/
    calibration = Path(args.calibration) if args.calibration else None
    return generate(Path(args.out), job.section("data.synthetic", SyntheticParams), calibration)


@verb("download", "fetch, verify (SHA-256) and safely extract a real dataset into data/raw/<dataset>",
      ("data.download",),
      args=[arg("--dataset", required=True, help="a dataset of the registry (README, section Data)"),
            arg("--raw-root", default="data/raw")])
def run_download(args: argparse.Namespace, job: Any) -> Path:
    from darkside.data.download import DownloadSettings
    from darkside.data.registry import download_dataset
    return download_dataset(args.dataset, Path(args.raw_root), job.section("data.download", DownloadSettings))


@verb("prepare", "import a downloaded dataset into the manifest schema (data/prepared/<dataset>)",
      args=[arg("--dataset", required=True),
            arg("--raw-root", default="data/raw"),
            arg("--prepared-root", default="data/prepared")])
def run_prepare(args: argparse.Namespace, job: Any) -> Path:
    from darkside.data.registry import prepare_dataset
    return prepare_dataset(args.dataset, Path(args.raw_root), Path(args.prepared_root))


def weight_urls() -> dict[str, str]:
    """file name -> URL of every published weight file the registries know (backbones, edge detectors)."""
    from darkside.embed.backbones import ARCHS
    from darkside.gan.edges import DETECTORS
    urls = [a.caffe_url for a in ARCHS.values() if a.caffe_url] + [d.weights_url for d in DETECTORS.values()]
    return {u.rsplit("/", 1)[-1]: u for u in urls}


@verb("download-weights", "fetch a published weight file (Caffe-converted ImageNet backbones, HED/RCF)",
      ("data.download",),
      args=[arg("--out", required=True, help="data/weights/<file name>")])
def run_download_weights(args: argparse.Namespace, job: Any) -> Path:
    from darkside.data.download import DownloadSettings
    from darkside.data.weights import download_weights
    return download_weights(Path(args.out).name, Path(args.out).parent, weight_urls(),
                            job.section("data.download", DownloadSettings))


@verb("contact-sheet", "figure of the same synthetic views at day, sunset and night",
      args=[arg("--dataset", required=True, help="prepared Tokyo-like dataset folder"),
            arg("--out", required=True),
            arg("--views", type=int, default=6)])
def run_contact_sheet(args: argparse.Namespace, job: Any) -> Path:
    from darkside.data.synthetic import contact_sheet
    return contact_sheet(Path(args.dataset), Path(args.out), n_views=args.views)


@verb("filter-day-night", "split the generator-training images into day and night lists", ("day_night",),
      args=[arg("--dataset", required=True, help="prepared dataset folder"),
            arg("--split", default="train"),
            arg("--out", required=True, help="folder for day.txt, night.txt and domains.tsv (every lighting domain)"),
            arg("--report", required=True, help="JSON report (counts, classifier accuracy)")])
def run_filter_day_night(args: argparse.Namespace, job: Any) -> Path:
    from darkside.data.daynight import DayNightSettings, write_day_night_lists
    from darkside.data.manifest import load_manifest
    return write_day_night_lists(load_manifest(args.dataset), job.section("day_night", DayNightSettings), args.out,
                                 args.report, split=args.split)


# --- models and descriptors --------------------------------------------------------------------------

def _backbone(job: Any, name: str):
    from darkside.config import BackboneSettings, BackboneSpec
    return BackboneSpec.named(name, job.section(f"backbones.{name}", BackboneSettings))


def _pretrain_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    bp = preset["backbone_pretrain"]
    per_backbone = isinstance(bp["steps"], Mapping)  # one backbone's count: the others' do not concern it
    return ["device", f"backbones.{args['backbone']}",
            *[f"backbone_pretrain.{k}" for k in bp if k != "steps"],
            f"backbone_pretrain.steps.{args['backbone']}" if per_backbone else "backbone_pretrain.steps"]


@verb("pretrain-backbone", "train a backbone as a scene classifier (the mini preset's stand-in for ImageNet)",
      _pretrain_reads,
      args=[arg("--backbone", required=True),
            arg("--dataset", required=True, help="prepared dataset whose scenes are the classes"),
            arg("--out", required=True),
            arg("--seed", type=int, default=0)])
def run_pretrain_backbone(args: argparse.Namespace, job: Any) -> Path:
    from darkside.embed.pretrain import BackbonePretrainSettings, pretrain_backbone
    return pretrain_backbone(_backbone(job, args.backbone), Path(args.dataset),
                             job.section("backbone_pretrain", BackbonePretrainSettings), Path(args.out),
                             _device(job.get("device")), seed=args.seed)


def _init_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    # the recipe's network settings only where params.yaml has an entry for it (a content embedding's)
    network = _recipe_network(args, preset) if args.get("recipe") else None
    return [f"backbones.{args['backbone']}", *([f"networks.{network}"] if network in (preset.get("networks") or {})
                                               else [])]


def _translators(generator: Path | None) -> list[str]:
    """The translator names whose recipes a job knows: the registered families, and the published generator or
    the variant the ``generator`` file was imported or trained as (its header says which)."""
    from darkside.gan.family import family_settings, variant_name
    from darkside.gan.published import published_name
    named = (published_name(generator) or variant_name(generator)) if generator and generator.is_file() else None
    return [*family_settings(), *([named] if named else [])]


@verb("init-model", "build a model that is not fine-tuned: the backbone + GeM (ImageNet weights or seeded random "
      "init), or with --recipe <translator>-content a generator's content embedding (MDUIT's z_s)", _init_reads,
      args=[arg("--backbone", required=True, help="a key of the preset's `backbones`"),
            arg("--recipe", default=None, help="a content-embedding recipe (default: the off-the-shelf network)"),
            arg("--generator", default=None, help="generator.pt of the recipe's content_of translator"),
            arg("--out", required=True),
            arg("--seed", type=int, default=0)])
def run_init_model(args: argparse.Namespace, job: Any) -> Path:
    from darkside.extract.global_descriptors import init_model
    spec = _backbone(job, args.backbone)
    if args.recipe is None:
        return init_model(spec, Path(args.out), seed=args.seed)
    from darkside.embed.networks import parse_network_settings
    from darkside.embed.networks.content import init_content_model
    from darkside.recipes import recipe_by_name
    generator = Path(args.generator) if args.generator else None
    recipe = recipe_by_name(args.recipe, families=_translators(generator))
    if recipe.content_of is None:
        raise DarksideError(f"init-model --recipe {recipe.name}: not a content embedding (off-the-shelf: no "
                            f"--recipe; a fine-tuned recipe: darkside finetune)")
    if generator is None:
        raise DarksideError(f"init-model --recipe {recipe.name}: needs --generator (the generator.pt of "
                            f"{recipe.content_of})")
    where = job.where(f"networks.{recipe.network}")
    network = parse_network_settings(recipe.network, (job.values.get("networks") or {}).get(recipe.network), where)
    return init_content_model(spec, generator, network, Path(args.out), where=where)


def _decoders(threads: int) -> int:
    """Image-decoding threads for a job with ``threads`` CPUs: all but the one that feeds the network (none at 1:
    a laptop run's jobs run side by side instead)."""
    if threads < 1:
        raise DarksideError(f"--threads: expected at least 1, got {threads}")
    return threads - 1


@verb("whiten", "learn the whitening (Lw) of a model on a dataset's whitening pairs",
      ("device", "extract.scales", "extract.batch_size", "extract.on_corrupt", "whitening.image_size",
       "whitening.pca_dims"),
      args=[arg("--model", required=True, help="model.pt (it says whether its images get CLAHE)"),
            arg("--dataset", required=True, help="prepared dataset folder with whitening pairs"),
            arg("--split", default="whiten"),
            arg("--out", required=True),
            arg("--threads", type=int, default=1,
                help="CPU threads of the job: all but one decode and prepare images ahead of the network")])
def run_whiten(args: argparse.Namespace, job: Any) -> Path:
    from darkside.config import ExtractSettings
    from darkside.extract.global_descriptors import fit_whitening
    # the whitening images' size, with extraction's scales: one ExtractSettings for the extractor
    settings = ExtractSettings(job.get("whitening.image_size"), tuple(job.get("extract.scales")),
                               job.get("extract.batch_size"), job.get("extract.on_corrupt"))
    return fit_whitening(Path(args.model), Path(args.dataset), Path(args.out), settings,
                         device=_device(job.get("device")), split=args.split, num_workers=_decoders(args.threads),
                         pca_dims=job.get("whitening.pca_dims"))


def _extract_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    return ["device", "extract", "whitening.dims", *(["local.extract"] if args.get("local") else [])]


@verb("extract", "multi-scale global descriptors of one or more datasets to HDF5 (one file per dataset)",
      _extract_reads,
      args=[arg("--model", required=True, help="model.pt (it says whether its images get CLAHE)"),
            arg("--dataset", required=True, action="append", help="prepared dataset folder (repeatable)"),
            arg("--out", required=True, action="append", help="HDF5 file, one per --dataset, same order"),
            arg("--whitening", default=None),
            arg("--on-corrupt", choices=["error", "skip"], default=None,
                help="override the preset: stop on a corrupt image, or skip it and count it"),
            arg("--night-to-day", default=None,
                help="generator.pt of a two-way family: translate night images to day first (test time)"),
            arg("--threads", type=int, default=1,
                help="CPU threads of the job: all but one decode and prepare images ahead of the network"),
            arg("--local", action="store_true",
                help="the local descriptors too (/local: a HOW network; settings local.extract)")])
def run_extract(args: argparse.Namespace, job: Any) -> list[Path]:
    import dataclasses

    from darkside.config import ExtractSettings
    from darkside.embed.how import LocalExtractSettings
    from darkside.extract.global_descriptors import extract_dataset
    from darkside.gan.translator import load_night_to_day
    device = _device(job.get("device"))
    night_to_day = load_night_to_day(Path(args.night_to_day), device) if args.night_to_day else None
    settings = job.section("extract", ExtractSettings)
    if args.on_corrupt:
        settings = dataclasses.replace(settings, on_corrupt=args.on_corrupt)
    if len(args.dataset) != len(args.out):
        raise DarksideError(f"extract: {len(args.dataset)} --dataset but {len(args.out)} --out (give one each)")
    # one process for all datasets of a model: the model and torch are loaded once
    return [extract_dataset(Path(args.model), Path(d), Path(o), settings,
                            whitening_path=Path(args.whitening) if args.whitening else None,
                            device=device, preset_name=job.preset, whitening_dims=job.get("whitening.dims"),
                            night_to_day=night_to_day, night_to_day_file=args.night_to_day,
                            num_workers=_decoders(args.threads),
                            local=job.section("local.extract", LocalExtractSettings) if args.local else None)
            for d, o in zip(args.dataset, args.out, strict=True)]


@verb("codebook", "the ASMK codebook of a model with local features: k-means on the local descriptors of the first "
      "training images (scale 1)",
      ("device", "extract.image_size", "extract.on_corrupt", "local.extract.features", "local.codebook"),
      args=[arg("--model", required=True, help="model.pt of a HOW network"),
            arg("--dataset", required=True, help="prepared training dataset"),
            arg("--split", default="train"),
            arg("--out", required=True, help="codebook HDF5 file")])
def run_codebook(args: argparse.Namespace, job: Any) -> Path:
    from darkside.evaluate.asmk import CodebookSettings, kmeans, write_codebook
    from darkside.extract.local_descriptors import codebook_descriptors
    from darkside.hashing import sha256_file
    from darkside.settings import to_plain
    s = job.section("local.codebook", CodebookSettings)
    X = codebook_descriptors(Path(args.model), Path(args.dataset), job.get("extract.image_size"),
                             job.get("local.extract.features"), s.images, args.split, _device(job.get("device")),
                             skip_corrupt=job.get("extract.on_corrupt") == "skip")
    centroids = kmeans(X, s.words, s.iterations, s.seed)
    return write_codebook(Path(args.out), centroids, {"model": args.model, "model_sha256": sha256_file(args.model),
                                                      "descriptors": len(X), "settings": json.dumps(to_plain(s))})


class _InOrder(argparse.Action):
    """Keeps ``--part`` and ``--out`` in the order given (``args.in_order``), so each ``--out`` closes the group
    of ``--part`` files before it: one process combines every dataset of an ensemble."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        namespace.in_order = [*(getattr(namespace, "in_order", None) or []), (self.dest, values)]


def ensemble_groups(in_order: Sequence[tuple[str, str]]) -> list[tuple[list[str], str]]:
    """``[("part", a), ("part", b), ("out", c), ...]`` -> ``[([a, b], c), ...]``; one line where a group is
    not two or more parts followed by its out."""
    groups: list[tuple[list[str], str]] = []
    parts: list[str] = []
    for kind, value in in_order:
        if kind == "part":
            parts.append(value)
            continue
        if len(parts) < 2:
            raise DarksideError(f"ensemble: --out {value} needs two or more --part files before it")
        groups.append((parts, value))
        parts = []
    if parts or not groups:
        raise DarksideError(f"ensemble: --part {parts[0] if parts else ''} has no --out after it (give each "
                            f"dataset's parts, then its --out)")
    return groups


@verb("ensemble", "combine descriptor files of two or more models of the same dataset: per image the parts' "
      "L2-normalised descriptors concatenated, then L2 (Table 4's ensembles; no network)",
      args=[arg("--part", required=True, action=_InOrder, help="a part's HDF5 file (two or more per --out)"),
            arg("--out", required=True, action=_InOrder,
                help="the ensemble's HDF5 file of the --part files before it (repeatable: one per dataset)")])
def run_ensemble(args: argparse.Namespace, job: Any) -> list[Path]:
    from darkside.extract.ensemble import ensemble_descriptors
    return [ensemble_descriptors([Path(p) for p in parts], Path(out)) for parts, out in ensemble_groups(args.in_order)]


def _recipe_network(args: Mapping[str, Any], preset: Mapping[str, Any]) -> str:
    from darkside.recipes import recipe_by_name
    gan = preset["gan"]
    return recipe_by_name(args["recipe"], families=[*gan["families"], *gan["published"], *gan["variants"]]).network


def _finetune_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    # the margin of this backbone only: another backbone's margin does not concern the job; the settings of the
    # recipe's network only, where params.yaml has an entry for it
    network = _recipe_network(args, preset) if "recipe" in args else None
    return ["device", f"finetune.margins.{args['backbone']}",
            *[f"finetune.{k}" for k in preset["finetune"] if k != "margins"],
            *([f"networks.{network}"] if network in (preset.get("networks") or {}) else [])]


@verb("finetune", "metric learning of a GeM embedding for a backbone and a named recipe (resumable)",
      _finetune_reads,
      args=[arg("--backbone", required=True),
            arg("--recipe", required=True, help="e.g. gem, clahe-c, clahe-cd, clahe-nd-c, hedngan-cd"),
            arg("--init", required=True, help="the off-the-shelf model to start from"),
            arg("--dataset", required=True, help="prepared training dataset (train/val pairs)"),
            arg("--out-dir", required=True, help="model.pt, training log, curve (checkpoint.pt while it trains)"),
            arg("--generator", default=None, help="generator.pt of the recipe's trained family"),
            arg("--seed", type=int, default=None, help="fine-tuning seed (default: finetune.seed)")])
def run_finetune(args: argparse.Namespace, job: Any) -> Path:
    from darkside.embed.finetune import finetune
    from darkside.recipes import FinetuneSettings, recipe_by_name
    generator = Path(args.generator) if args.generator else None
    # the registered families' recipes, and those of the published generator or variant the --generator file is
    recipe = recipe_by_name(args.recipe, families=_translators(generator))
    from darkside.embed.networks import parse_network_settings
    entry = (job.values.get("networks") or {}).get(recipe.network)
    network = parse_network_settings(recipe.network, entry, job.where(f"networks.{recipe.network}"))
    return finetune(Path(args.init), Path(args.dataset), recipe, job.section("finetune", FinetuneSettings),
                    Path(args.out_dir), device=_device(job.get("device")), translator_checkpoint=generator,
                    seed=args.seed, backbone=args.backbone, network_settings=network)


def _gan_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    family, variant = args["family"], args.get("variant")
    gan = preset["gan"]
    if variant is not None and variant not in gan["variants"]:
        raise ConfigError(f"gan.variants.{variant}: no such variant (known: "
                          f"{', '.join(sorted(gan['variants'])) or 'none'})")
    # a variant's overrides may name another detector
    overrides = gan["variants"][variant]["overrides"] if variant else {}
    return ["device", "gan.common", f"gan.families.{family}", *([f"gan.variants.{variant}"] if variant else []),
            *_detector_reads(gan["families"].get(family, {}), overrides)]


def _detector_reads(entry: Mapping[str, Any], overrides: Mapping[str, Any]) -> list[str]:
    """The edge detector a family's entry names once ``overrides`` are applied (none: no read)."""
    merged = {**entry, **overrides}
    return [f"edges.detectors.{merged['detector']}"] if "detector" in merged else []


def _gan_setup(job: Any, family: str, variant: str | None = None):
    """The setup of ``family``'s run, or of its ``gan.variants`` entry ``variant`` (the overrides applied)."""
    from darkside.gan.family import GanVariant, family_class
    if variant is None:
        return _setup_with(job, family, job.section(f"gan.families.{family}", family_class(family).Settings))
    where = job.where(f"gan.variants.{variant}")
    v = job.section(f"gan.variants.{variant}", GanVariant)
    if v.family != family:
        raise ConfigError(f"{where}.family: {v.family!r}, but train-gan --family {family}")
    return _setup_with(job, family, v.settings(job.get(f"gan.families.{family}"), where))


def _setup_with(job: Any, family: str, settings: Any):
    """``family``'s setup with its typed ``settings``: the job's gan.common and edge detectors."""
    from darkside.gan.edges import DetectorSettings
    from darkside.gan.family import GanTraining, setup_for
    detectors = {k: job.section(f"edges.detectors.{k}", DetectorSettings)
                 for k in (job.values.get("edges", {}).get("detectors") or {})}
    return setup_for(family, job.section("gan.common", GanTraining), settings, detectors)


def _list_paths(list_file: Path, image_root: Path) -> list[Path]:
    return [image_root / line.strip() for line in list_file.read_text(encoding="utf-8").splitlines() if line.strip()]


def _daco_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    # the learner's own entry and the normalisation of the dataset it trains on (data/prepared/<name>), only
    # (a variant: its learner's entry and its own)
    daco, learner, dataset = preset["daco"], args["learner"], Path(args["dataset"]).name
    if dataset not in daco["normalisation"]:
        raise ConfigError(f"daco.normalisation: no entry for {dataset!r} (known: "
                          f"{', '.join(daco['normalisation']) or 'none'})")
    if learner in daco["variants"]:
        entries = [f"daco.learners.{daco['variants'][learner]['learner']}", f"daco.variants.{learner}"]
    elif learner in daco["learners"]:
        entries = [f"daco.learners.{learner}"]
    else:
        raise ConfigError(f"daco.learners: no learner or variant {learner!r} (known: "
                          f"{', '.join([*daco['learners'], *daco['variants']]) or 'none'})")
    return ["device", "daco.seed", "daco.backbone", *entries, f"daco.normalisation.{dataset}"]


@verb("train-daco", "a contrastive learner of DaCo's tables (DaCo with its training images' translations, or a "
      "baseline: SimCLR, MoCo, NPID, SimSiam) on a cross_domain pair set (resumable)", _daco_reads,
      args=[arg("--learner", required=True, help="a daco.learners or daco.variants entry (e.g. resnet50-daco, "
                "resnet50-moco, resnet50-daco-lambda00)"),
            arg("--dataset", required=True, help="prepared cross_domain pair set (data/prepared/<name>)"),
            arg("--translations", default=None, help="folder with each training image's translation at its "
                "manifest path (DaCo's generated/ tree); a learner without translated views needs none"),
            arg("--out-dir", required=True, help="model.pt and the training log (and checkpoint.pt while it trains)"),
            arg("--descriptors", default=None, help="also write the kept model's descriptors of the evaluation "
                "pairs here (the file extract-daco writes)")])
def run_train_daco(args: argparse.Namespace, job: Any) -> Path:
    from darkside.config import BackboneSettings, BackboneSpec, daco_learner_entry
    from darkside.data.manifest import load_manifest
    from darkside.embed.daco import DacoSettings, Normalisation, train_daco
    from darkside.settings import parse
    name = Path(args.dataset).name
    if (found := load_manifest(args.dataset, check_files=False).name) != name:
        raise ConfigError(f"{args.dataset}: holds dataset {found!r}, not {name!r} (daco.normalisation is keyed "
                          "by the folder's name)")
    backbone = BackboneSpec.named(args.learner, job.section("daco.backbone", BackboneSettings))
    learners, variants = job.get("daco.learners"), job.values["daco"].get("variants") or {}
    where = job.where(f"daco.variants.{args.learner}.overrides" if args.learner in variants
                      else f"daco.learners.{args.learner}")
    settings = parse(DacoSettings, daco_learner_entry({"learners": learners, "variants": variants}, args.learner),
                     where)
    settings.check(where)
    device = _device(job.get("device"))
    model = train_daco(Path(args.dataset), None if args.translations is None else Path(args.translations), backbone,
                       settings, job.section(f"daco.normalisation.{name}", Normalisation), Path(args.out_dir),
                       seed=int(job.get("daco.seed")), device=device)
    if args.descriptors is not None:
        from darkside.extract.daco_descriptors import extract_daco
        extract_daco(model, Path(args.dataset), Path(args.descriptors), job.preset, device)
    return model


def _daco_translator_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    entry = preset["daco"]["translator"]
    return ["device", "daco.seed", "gan.common", "daco.translator", f"gan.families.{entry['family']}",
            *_detector_reads(preset["gan"]["families"].get(entry["family"], {}), entry["overrides"])]


@verb("train-daco-translator", "train daco.translator (DaCo: ForkGAN) on a cross_domain pair set's training images "
      "(A as day, B as night; resumable), then translate each of them into the other domain once",
      _daco_translator_reads,
      args=[arg("--dataset", required=True, help="prepared cross_domain pair set (data/prepared/<name>)"),
            arg("--out-dir", required=True, help="the generator run: generator.pt, log.json, losses, samples"),
            arg("--translations", required=True, help="folder that receives each training image's translation at "
                "its manifest path (DaCo's generated/ tree)")])
def run_train_daco_translator(args: argparse.Namespace, job: Any) -> Path:
    from darkside.gan.family import GanVariant, family_class
    from darkside.gan.pair_translations import train_and_translate
    where = job.where("daco.translator")
    v = job.section("daco.translator", GanVariant)
    if family_class(v.family).night_to_day_name is None:  # before training: B's images need the way back
        raise ConfigError(f"{where}.family: {v.family} is a one-way family; DaCo translates both domains")
    setup = _setup_with(job, v.family, v.settings(job.get(f"gan.families.{v.family}"), where))
    return train_and_translate(setup, args.dataset, args.out_dir, args.translations, _device(job.get("device")),
                               seed=int(job.get("daco.seed")))


@verb("extract-daco", "descriptors of a train-daco model for the cross_domain score: the evaluation pairs' images",
      ("device",),
      args=[arg("--model", required=True, help="model.pt of train-daco (it carries its settings and normalisation)"),
            arg("--dataset", required=True, help="prepared cross_domain pair set"),
            arg("--out", required=True, help="HDF5 file")])
def run_extract_daco(args: argparse.Namespace, job: Any) -> Path:
    from darkside.extract.daco_descriptors import extract_daco
    return extract_daco(Path(args.model), Path(args.dataset), Path(args.out), job.preset, _device(job.get("device")))


def _handcrafted_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    methods = preset.get("daco", {}).get("handcrafted", {})
    if args.get("method") not in methods:
        raise ConfigError(f"daco.handcrafted: no method {args.get('method')!r} (known: "
                          f"{', '.join(methods) or 'none'})")
    return [f"daco.handcrafted.{args['method']}"]


@verb("extract-handcrafted", "a hand-crafted baseline of DaCo's tables (SIFT, then matches, BoW or VLAD) on the "
      "evaluation pairs' images of a cross_domain pair set", _handcrafted_reads,
      args=[arg("--method", required=True, help="a daco.handcrafted entry (sift-matches, sift-bow, sift-vlad)"),
            arg("--dataset", required=True, help="prepared cross_domain pair set"),
            arg("--out", required=True, help="HDF5 file (with /local for a method ranked by matches)")])
def run_extract_handcrafted(args: argparse.Namespace, job: Any) -> Path:
    from darkside.extract.handcrafted import HandcraftedMethod, extract_handcrafted
    method = job.section(f"daco.handcrafted.{args.method}", HandcraftedMethod)
    return extract_handcrafted(args.method, method, Path(args.dataset), Path(args.out), job.preset)


@verb("train-gan", "train a day->night generator family on the filtered day and night lists (resumable)",
      _gan_reads,
      args=[arg("--family", required=True, help="a registered family (cyclegan, hedgan, hedngan, rcfngan)"),
            arg("--variant", default=None, help="a gan.variants entry of the family: its run, overrides applied"),
            arg("--dataset", required=True, help="prepared dataset the lists refer to"),
            arg("--lists", required=True, help="folder with day.txt and night.txt (filter-day-night); a "
                "multi-domain family (mduit) also reads its domains.tsv"),
            arg("--out-dir", required=True),
            arg("--seed", type=int, default=0),
            arg("--summary", default=None, help="also write the Table 8 summary (times, parameters) here")])
def run_train_gan(args: argparse.Namespace, job: Any) -> Path:
    from darkside.data.manifest import load_manifest
    from darkside.gan.family import family_class
    from darkside.gan.summary import write_training_summary
    from darkside.gan.train import train_gan
    manifest = load_manifest(args.dataset, check_files=False)
    lists = Path(args.lists)
    day = _list_paths(lists / "day.txt", manifest.image_root)
    night = _list_paths(lists / "night.txt", manifest.image_root)
    setup = _gan_setup(job, args.family, args.variant)
    domains = None
    if family_class(args.family).multi_domain:  # trains on every lighting domain
        from darkside.data.daynight import read_domains
        domains = read_domains(lists / "domains.tsv", manifest.image_root)
    device = _device(job.get("device"))
    generator = train_gan(setup, day, night, Path(args.out_dir), device, seed=args.seed, domains=domains,
                          variant=args.variant)
    if args.summary:  # Table 8: times from the run's own log, parameter counts
        write_training_summary(args.out_dir, setup, device, args.summary)
    return generator


@verb("gan", "generator utilities: `darkside gan params --family F [--json]` prints parameter counts",
      lambda args, preset: _gan_reads(args, preset)[1:],
      args=[arg("action", choices=["params"]),
            arg("--family", required=True),
            arg("--json", action="store_true")])
def run_gan(args: argparse.Namespace, job: Any) -> None:
    from darkside.gan.params import count_parameters, format_counts
    res = count_parameters(_gan_setup(job, args.family))
    print(json.dumps(res, indent=2, sort_keys=True) if args.json else format_counts(res))


def _published_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    entry = preset["gan"]["published"].get(args["name"])
    if entry is None:
        raise ConfigError(f"gan.published.{args['name']}: no such published generator (known: "
                          f"{', '.join(sorted(preset['gan']['published'])) or 'none'})")
    return [f"gan.published.{args['name']}", *_gan_reads({"family": entry["family"]}, preset)[1:]]


@verb("import-generator", "a generator its authors published (gan.published.<name>) as a darkside generator file",
      _published_reads,
      args=[arg("--name", required=True, help="a key of gan.published, e.g. cyeda-bdd"),
            arg("--file", default=None, help="the authors' file (default: the entry's `file`)"),
            arg("--out", required=True, help="generator.pt to write")])
def run_import_generator(args: argparse.Namespace, job: Any) -> Path:
    from darkside.gan.published import PublishedGenerator, import_published
    entry = job.section(f"gan.published.{args.name}", PublishedGenerator)
    return import_published(args.name, _gan_setup(job, entry.family), Path(args.file or entry.file), Path(args.out))


def _geometry(job: Any, kind: str):
    from darkside.gan.edges import DetectorGeometry
    return job.section(f"edges.detectors.{kind}", DetectorGeometry)


@verb("pretrain-edges", "train a HED/RCF teacher on ground-truth edges (where no published weights exist)",
      ("device", "edges.pretrain", "edges.detectors.{kind}.width", "edges.detectors.{kind}.input"),
      args=[arg("--kind", required=True, help="a registered detector (hed, rcf)"),
            arg("--dataset", required=True, help="prepared dataset with edges/ ground truth"),
            arg("--out", required=True),
            arg("--seed", type=int, default=0)])
def run_pretrain_edges(args: argparse.Namespace, job: Any) -> Path:
    from darkside.gan.edges.pretrain import EdgePretrainSettings, pretrain_edges
    return pretrain_edges(args.kind, Path(args.dataset), job.section("edges.pretrain", EdgePretrainSettings),
                          Path(args.out), _geometry(job, args.kind), _device(job.get("device")), seed=args.seed)


def _teacher(job: Any, kind: str, path: str, device: str):
    """A frozen teacher: the detector built as edges.detectors.<kind> says, with the file's weights."""
    from darkside.gan.edges import build_detector, load_detector_file
    g = _geometry(job, kind)
    return load_detector_file(build_detector(kind, g.width, g.input), path).to(device).eval()


@verb("edge-quality", "score a frozen teacher and the night-trained student (HED vs HED^N) against edge ground truth",
      ("device", "edges.quality", "edges.detectors.{kind}.width", "edges.detectors.{kind}.input"),
      args=[arg("--kind", required=True, help="a registered detector (hed, rcf)"),
            arg("--teacher", required=True, help="the frozen teacher's weight file"),
            arg("--run-dir", action="append", default=[],
                help="training folder of a family using this detector (repeatable); its student, if any, is scored"),
            arg("--dataset", required=True, help="prepared dataset with edges/ ground truth"),
            arg("--out", required=True)])
def run_edge_quality(args: argparse.Namespace, job: Any) -> Path:
    import numpy as np

    from darkside.gan.edges.quality import EdgeQualitySettings, edge_quality_report, night_students
    device = _device(job.get("device"))
    q = job.section("edges.quality", EdgeQualitySettings)
    detectors = {args.kind.upper(): _teacher(job, args.kind, args.teacher, device),
                 **night_students(args.run_dir, device)}
    return edge_quality_report(Path(args.out), Path(args.dataset), detectors, domains=q.domains, split=q.split,
                               limit=q.limit, device=device, thresholds=np.linspace(0.01, 0.99, q.thresholds),
                               tolerance_px=q.tolerance_px)


def _figure_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    kinds = [t.split("=", 1)[0] for t in args.get("teacher") or ()]
    return ["device", *[f"edges.detectors.{k}.{leaf}" for k in kinds for leaf in ("width", "input")]]


@verb("figure", "figures: `translations` (paper Figure 1) or `edges` (paper Figure 2)", _figure_reads,
      args=[arg("kind", choices=["translations", "edges"]),
            arg("--dataset", required=True),
            arg("--item", action="append", default=[], help="translations: FAMILY=generator.pt (repeatable)"),
            arg("--teacher", action="append", default=[], help="edges: KIND=teacher weights (repeatable)"),
            arg("--run-dir", action="append", default=[],
                help="edges: a generator run whose night student is shown beside its teacher (repeatable)"),
            arg("--rows", type=int, default=4),
            arg("--out", required=True)])
def run_figure(args: argparse.Namespace, job: Any) -> Path:
    from darkside.data.manifest import load_manifest
    from darkside.gan import figures
    device = _device(job.get("device"))
    manifest = load_manifest(args.dataset)
    domain = "day" if args.kind == "translations" else "night"
    images = [manifest.image_path(r) for r in manifest.select(domain=domain)][: args.rows]
    if args.kind == "translations":
        from darkside.gan.family import FAMILIES, family_settings
        family_settings()  # registers the built-in families: a column is titled as the tables title the family
        items = [i.split("=", 1) for i in args.item]
        gens = figures.load_generators({(FAMILIES[k].title if k in FAMILIES else k): (k, path) for k, path in items},
                                       device)
        return figures.translations_figure(images, gens, Path(args.out))
    from darkside.gan.edges.quality import night_students
    students = night_students(args.run_dir, device)
    detectors = {}
    for kind, path in (t.split("=", 1) for t in args.teacher):  # each teacher, then its night students
        detectors[kind.upper()] = _teacher(job, kind, path, device)
        detectors.update({n: d for n, d in students.items() if n.startswith(f"{kind.upper()}^N")})
    return figures.edges_figure(images, detectors, Path(args.out))


# --- evaluation and tables ---------------------------------------------------------------------------

#: what scoring reads (chance levels run the same scorer)
_SCORE_READS = ("evaluate.chunk_size", "evaluate.recall_ks", "evaluate.pairs_topk", "evaluate.localization_thresholds")


def _score_reads(args: Mapping[str, Any], preset: Mapping[str, Any]) -> list[str]:
    return [*_SCORE_READS, *(["local.asmk"] if args.get("codebook") else []),
            *(["evaluate.matches"] if args.get("matches") else [])]


@verb("score", "retrieval / localization metrics of descriptor files to JSON (one per dataset)",
      _score_reads,
      args=[arg("--descriptors", required=True, action="append", help="HDF5 file (repeatable)"),
            arg("--dataset", required=True, action="append", help="prepared dataset, one per --descriptors"),
            arg("--out", required=True, action="append", help="metrics JSON, one per --descriptors"),
            arg("--pairs-dir", action="append", default=None,
                help="where to export retrieval pairs / poses files, one per --descriptors"),
            arg("--codebook", default=None,
                help="an ASMK codebook: rank by ASMK on the files' local features (HOW), not by their global rows"),
            arg("--matches", action="store_true",
                help="rank by ratio-test matches of the files' local features (evaluate.matches: DaCo's SIFT)")])
def run_score(args: argparse.Namespace, job: Any) -> list[Path]:
    from darkside.config import MatchCountSettings, ScoreSettings
    from darkside.evaluate.asmk import AsmkSettings
    from darkside.evaluate.score import score_dataset
    from darkside.settings import parse
    # the ranking reads evaluate's scoring keys; evaluate.matches only with --matches (parsed below)
    settings = parse(ScoreSettings, {k: v for k, v in job.get("evaluate").items() if k != "matches"},
                     job.where("evaluate"))
    codebook = Path(args.codebook) if args.codebook else None
    if codebook is not None and args.matches:
        raise DarksideError("score: --codebook (ASMK) and --matches rank by different kernels; give one")
    asmk = job.section("local.asmk", AsmkSettings) if codebook else None
    matches = job.section("evaluate.matches", MatchCountSettings) if args.matches else None
    lists = (args.descriptors, args.dataset, args.out)
    if len({len(v) for v in lists}) != 1 or (args.pairs_dir and len(args.pairs_dir) != len(args.dataset)):
        raise DarksideError("score: give one --descriptors, --dataset, --out (and --pairs-dir) per dataset")
    pairs = args.pairs_dir or [None] * len(args.dataset)
    return [score_dataset(Path(h5), Path(d), settings, Path(o), Path(pd) if pd else None, codebook, asmk, matches)
            for h5, d, o, pd in zip(args.descriptors, args.dataset, args.out, pairs, strict=True)]


@verb("chance", "chance levels of test datasets: random unit descriptors through the same scorer",
      _SCORE_READS,
      args=[arg("--dataset", required=True, action="append", help="prepared dataset (repeatable)"),
            arg("--out", required=True, action="append", help="chance JSON, one per --dataset"),
            arg("--draws", type=int, default=20, help="random descriptor sets averaged"),
            arg("--dim", type=int, default=128, help="descriptor dimension"),
            arg("--seed", type=int, default=0)])
def run_chance(args: argparse.Namespace, job: Any) -> list[Path]:
    from darkside.config import ScoreSettings
    from darkside.evaluate.chance import write_chance_levels
    if len(args.dataset) != len(args.out):
        raise DarksideError(f"chance: {len(args.dataset)} --dataset but {len(args.out)} --out (give one each)")
    settings = job.section("evaluate", ScoreSettings)
    return [write_chance_levels(Path(d), settings, Path(o), args.draws, args.dim, args.seed)
            for d, o in zip(args.dataset, args.out, strict=True)]


@verb("tables", "regenerate the paper's tables from the metric files",
      ("seeds", "evaluate.bootstrap_samples", "evaluate.bootstrap_seed", "data.roles.tokyo", "data.roles.roxford",
       "data.roles.rparis", "data.roles.localization", "data.roles.cross_domain"),
      args=[arg("--metrics", default="results/metrics"),
            arg("--out", default="results/tables"),
            arg("--backbone", action="append", default=[], help="a backbone the preset trains (repeatable)"),
            arg("--family", action="append", default=[], help="a generator family the preset trains (repeatable)"),
            arg("--table", action="append", default=None, help="only this table (e.g. table1); repeatable"),
            arg("--headline", default=None,
                help="also write the tables' headline cells here as JSON (the DAG: results/metrics/headline.json)")])
def run_tables(args: argparse.Namespace, job: Any) -> list[Path]:
    from darkside.config import BootstrapSettings
    from darkside.tables.build import TableInputs, build_tables
    boot = job.section("evaluate", BootstrapSettings)
    inputs = TableInputs(preset=job.preset, tokyo=job.get("data.roles.tokyo"), roxford=job.get("data.roles.roxford"),
                         rparis=job.get("data.roles.rparis"), localization=tuple(job.get("data.roles.localization")),
                         cross_domain=dict(job.get("data.roles.cross_domain")), seeds=tuple(job.get("seeds")),
                         bootstrap_samples=boot.bootstrap_samples,
                         bootstrap_seed=boot.bootstrap_seed, backbones=tuple(args.backbone),
                         families=tuple(args.family))
    return build_tables(inputs, Path(args.metrics), Path(args.out), tables=args.table,
                        headline=None if args.headline is None else Path(args.headline))


#: the localize job's reads: everything but the features' and the map's own settings (their files carry them)
_LOCALIZE_READS = ("localize.topk", "localize.matching", "localize.triangulation", "localize.pose", "localize.seed",
                   "evaluate.localization_thresholds")


@verb("local-features", "keypoints and descriptors (SIFT by default) of a localization dataset's images, to HDF5",
      ("localize.features",),
      args=[arg("--dataset", required=True), arg("--out", required=True)])
def run_local_features_verb(args: argparse.Namespace, job: Any) -> Path:
    from darkside.localize.features import LocalFeatureSettings
    from darkside.localize.run import run_local_features
    return run_local_features(Path(args.dataset), Path(args.out), job.section("localize.features",
                                                                              LocalFeatureSettings))


@verb("global-map", "paradigm 2b's map: mapping images matched with their pose neighbours, triangulated once",
      ("localize.matching", "localize.triangulation", "localize.global_map"),
      args=[arg("--dataset", required=True), arg("--features", required=True), arg("--out", required=True)])
def run_global_map_verb(args: argparse.Namespace, job: Any) -> Path:
    from darkside.localize.geometry import TriangulationSettings
    from darkside.localize.global_map import GlobalMapSettings
    from darkside.localize.matching import MatchSettings
    from darkside.localize.run import MapSettings, run_global_map
    s = MapSettings(job.section("localize.matching", MatchSettings),
                    job.section("localize.triangulation", TriangulationSettings),
                    job.section("localize.global_map", GlobalMapSettings))
    return run_global_map(Path(args.dataset), Path(args.features), Path(args.out), s)


@verb("localize", "a model's queries localized by paradigms 2a (local SfM) and 2b (global map) from its retrieval "
      "pairs: metrics JSON and LTVL2020 poses per paradigm (one group of options per dataset)", _LOCALIZE_READS,
      args=[arg("--dataset", required=True, action="append", help="prepared localization dataset (repeatable)"),
            arg("--features", required=True, action="append", help="its local-feature file"),
            arg("--map", required=True, action="append", help="its global map"),
            arg("--pairs", required=True, action="append",
                help="the model's kapture pairs CSV of it (the score job's pairs-top<k>.csv)"),
            arg("--poses-dir", required=True, action="append",
                help="where its poses-local-sfm.txt and poses-global-map.txt go"),
            arg("--out-dir", required=True, help="where <dataset>.local-sfm.json and .global-map.json go")])
def run_localize_verb(args: argparse.Namespace, job: Any) -> list[Path]:
    from darkside.localize.geometry import PoseSettings, TriangulationSettings
    from darkside.localize.matching import MatchSettings
    from darkside.localize.run import QuerySettings, run_localize
    groups = (args.dataset, args.features, args.map, args.pairs, args.poses_dir)
    if len({len(g) for g in groups}) != 1:
        raise DarksideError("localize: give one --dataset, --features, --map, --pairs and --poses-dir per dataset")
    s = QuerySettings(job.get("localize.topk"), job.section("localize.matching", MatchSettings),
                      job.section("localize.triangulation", TriangulationSettings),
                      job.section("localize.pose", PoseSettings), job.get("localize.seed"))
    thresholds = [(float(t), float(r)) for t, r in job.get("evaluate.localization_thresholds")]
    return [path for d, f, m, p, pd in zip(*groups, strict=True)
            for path in run_localize(Path(d), Path(f), Path(m), Path(p), Path(args.out_dir), Path(pd), s, thresholds)]


@verb("figure-retrieval", "qualitative figure: top-5 of GeM, CLAHE C and a GAN CD model for night queries, "
      "framed by the ground truth", ("figures.retrieval",),
      args=[arg("--dataset", required=True, help="the prepared Tokyo-protocol dataset (the preset's Tokyo role)"),
            arg("--pairs-root", default="results/pairs",
                help="where the score jobs wrote their rankings: <root>/<model>/<dataset>/pairs-top<k>.csv"),
            arg("--out", required=True)])
def run_figure_retrieval(args: argparse.Namespace, job: Any) -> Path:
    from darkside.tables.qualitative import RetrievalFigureSettings, figure_models, retrieval_figure
    s = job.section("figures.retrieval", RetrievalFigureSettings)
    dataset = Path(args.dataset)
    pairs = {m: Path(args.pairs_root) / m / dataset.name for m in figure_models(s)}
    return retrieval_figure(dataset, pairs, Path(args.out), s.queries)


@verb("report-tables", "the tables as HTML pages for the Snakemake report (ours with its interval, the paper, the "
      "difference; cells not produced greyed with their reason)",
      args=[arg("--tables", default="results/tables", help="folder of the tables' CSV files"),
            arg("--out", default="results/report/tables"),
            arg("--table", action="append", default=None, help="only this table (e.g. table1); repeatable")])
def run_report_tables(args: argparse.Namespace, job: Any) -> list[Path]:
    from darkside.report import write_table_pages
    return write_table_pages(Path(args.tables), Path(args.out), args.table)


@verb("report-json", "a JSON metric file (the synthetic benchmark's calibration) as an HTML page for the report",
      args=[arg("--json", required=True), arg("--title", required=True), arg("--out", required=True)])
def run_report_json(args: argparse.Namespace, job: Any) -> Path:
    from darkside.report import write_json_page
    return write_json_page(Path(args.json), Path(args.out), args.title)


# the settings page shows the whole active preset, so it reads (and reruns on) every section of it
@verb("report-settings", "the active preset's settings as an HTML page for the report",
      lambda options, preset: sorted(preset), args=[arg("--out", required=True)])
def run_report_settings(args: argparse.Namespace, job: Any) -> Path:
    from darkside.report import write_settings_page
    return write_settings_page(job.preset, job.values, Path(args.out))


@verb("profile", "where the suite's time goes: the DAG's per-job benchmark files summed per rule",
      args=[arg("--root", default="logs/benchmarks", help="the rules' benchmark folder"),
            arg("--out", default=None, help="also write the per-rule table as JSON here")])
def run_profile(args: argparse.Namespace, job: Any) -> Path | None:
    import dataclasses

    from darkside.atomic import atomic_write_json
    from darkside.profiling import format_profile, per_rule, read_benchmarks, wall_span
    jobs = read_benchmarks(Path(args.root))
    print(format_profile(jobs))
    if args.out is None:
        return None
    return atomic_write_json(Path(args.out), {"wall_span_s": wall_span(jobs),
                                              "rules": [dataclasses.asdict(r) for r in per_rule(jobs)]})


@verb("dvc-yaml", "write dvc.yaml from the Snakemake DAG of the current params (keeps the two in sync)",
      args=[arg("--out", default="dvc.yaml")])
def run_dvc_yaml(args: argparse.Namespace, job: Any) -> Path:
    from darkside.orchestration import write_dvc_yaml
    return write_dvc_yaml(Path(args.out), params=Path(args.params))


# --- entry point -------------------------------------------------------------------------------------

def _common_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    # accepted before and after the verb; the sub-parser must not overwrite what the main one parsed
    d = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    p.add_argument("--params", default=d("params.yaml"), help="parameter file (default: params.yaml)")
    p.add_argument("--preset", default=d(None), help="preset name (default: the file's `preset` key)")
    p.add_argument("--settings", default=d(None),
                   help="the job's settings as JSON (what the DAG hands over); instead of --params/--preset")
    p.add_argument("--log", default=d(None), help="also write the log to this file")
    p.add_argument("-v", "--verbose", action="store_true", default=d(False))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darkside",
        description="darkside: the Dark Side Augmentation experiment suite, one verb per pipeline stage.")
    _common_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, v in VERBS.items():
        p = sub.add_parser(name, help=v.help, description=v.help)
        _common_options(p, defaults=False)
        for flags, options in v.args:
            p.add_argument(*flags, **options)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)


def _job(args: argparse.Namespace):
    """The settings this verb reads: handed over (``--settings``) or taken from the params file."""
    from darkside.config import JobSettings, load_params
    if args.settings is not None:
        return JobSettings.from_json(args.settings)
    params = load_params(args.params)
    return job_settings(args.verb, params, args.preset, vars(args))


def main(argv: Sequence[str] | None = None) -> int:
    # CPU results depend on the number of threads (summation order); one thread unless the caller says
    # otherwise (Snakemake sets OMP_NUM_THREADS to the job's threads), so `snakemake` and `dvc repro` runs
    # of the same command give identical numbers. torch reads this when it is first imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    _setup_logging(args)
    v = VERBS[args.verb]
    try:
        result = v.run(args, _job(args) if v.reads is not None else None)
    except DarksideError as exc:
        log.debug("error", exc_info=True)
        if args.log:
            logging.getLogger("darkside").error("%s", exc)
        print(f"darkside: error: {exc}", file=sys.stderr)
        return 2
    except Preempted:
        print("darkside: preempted (SIGTERM); rerun to resume from the last checkpoint", file=sys.stderr)
        return PREEMPTED_STATUS
    except KeyboardInterrupt:
        print("darkside: interrupted", file=sys.stderr)
        return 130
    if isinstance(result, (str, Path)):
        print(result)
    elif isinstance(result, list):
        for item in result:
            print(item)
    return 0


if __name__ == "__main__":
    sys.exit(main())
