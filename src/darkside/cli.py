"""The darkside command: every Snakemake rule and DVC stage calls one of its verbs.

Any stage can therefore be run by hand. Heavy modules are imported inside the verbs to keep
``--help`` instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from darkside.errors import DarksideError

log = logging.getLogger("darkside")

# verb name -> (help, add_arguments, run)
Verb = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], object]]
VERBS: dict[str, Verb] = {}


def verb(name: str, help: str):
    def register(fn: Callable[[argparse.Namespace], object]):
        def wrap(add: Callable[[argparse.ArgumentParser], None]):
            VERBS[name] = (help, add, fn)
            return add
        fn.arguments = wrap  # type: ignore[attr-defined]
        return fn
    return register


def _preset(args: argparse.Namespace):
    from darkside.config import load_preset
    return load_preset(args.params, args.preset)


def _device(name: str) -> str:
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DarksideError("device: 'cuda' requested but no CUDA device is available")
    return name


# --- params ------------------------------------------------------------------------------------------

@verb("params", "validate params.yaml against the schema and print the active preset")
def run_params(args: argparse.Namespace) -> None:
    preset = _preset(args)
    print(json.dumps({"preset": preset.name, **preset.raw}, indent=2, sort_keys=True))


@run_params.arguments
def _(p: argparse.ArgumentParser) -> None:
    pass


# --- data --------------------------------------------------------------------------------------------

@verb("synth", "generate the embedded synthetic day/night benchmark (all synth-* datasets)")
def run_synth(args: argparse.Namespace) -> list[Path]:
    from darkside.data.synthetic import SyntheticParams, generate
    preset = _preset(args)
    # the calibration report is a metric: the DAG keeps it with the other metric files, outside data/
    calibration = Path(args.calibration) if args.calibration else None
    return generate(Path(args.out), SyntheticParams.from_dict(preset.raw["data"]["synthetic"]), calibration)


@run_synth.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="data/prepared", help="folder that receives data/prepared/synth-*")
    p.add_argument("--calibration", default=None, help="where to put the night-model calibration JSON")


@verb("download", "fetch, verify (SHA-256) and safely extract a real dataset into data/raw/<dataset>")
def run_download(args: argparse.Namespace) -> Path:
    from darkside.data.download import DownloadSettings
    from darkside.data.registry import download_dataset
    preset = _preset(args)
    settings = DownloadSettings.from_dict(preset.raw["data"]["download"])
    return download_dataset(args.dataset, Path(args.raw_root), settings)


@run_download.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="a dataset of the registry (README, section Data)")
    p.add_argument("--raw-root", default="data/raw")


@verb("prepare", "import a downloaded dataset into the manifest schema (data/prepared/<dataset>)")
def run_prepare(args: argparse.Namespace) -> Path:
    from darkside.data.registry import prepare_dataset
    return prepare_dataset(args.dataset, Path(args.raw_root), Path(args.prepared_root))


@run_prepare.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--raw-root", default="data/raw")
    p.add_argument("--prepared-root", default="data/prepared")


@verb("download-weights", "fetch a pretrained weight file (cirtorch's Caffe-converted ImageNet backbones)")
def run_download_weights(args: argparse.Namespace) -> Path:
    from darkside.data.download import DownloadSettings
    from darkside.data.weights import download_weights
    preset = _preset(args)
    return download_weights(Path(args.out).name, Path(args.out).parent,
                            DownloadSettings.from_dict(preset.raw["data"]["download"]))


@run_download_weights.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="data/weights/<file name>")


@verb("contact-sheet", "figure of the same synthetic views at day, sunset and night")
def run_contact_sheet(args: argparse.Namespace) -> Path:
    from darkside.data.synthetic import contact_sheet
    return contact_sheet(Path(args.dataset), Path(args.out), n_views=args.views)


@run_contact_sheet.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="prepared Tokyo-like dataset folder")
    p.add_argument("--out", required=True)
    p.add_argument("--views", type=int, default=6)


@verb("filter-day-night", "split the generator-training images into day and night lists")
def run_filter_day_night(args: argparse.Namespace) -> Path:
    from darkside.data.daynight import DayNightSettings, write_day_night_lists
    from darkside.data.manifest import load_manifest
    preset = _preset(args)
    manifest = load_manifest(args.dataset)
    return write_day_night_lists(manifest, DayNightSettings.from_dict(preset.raw["day_night"]), args.out,
                                 args.report, split=args.split)


@run_filter_day_night.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="prepared dataset folder")
    p.add_argument("--split", default="train")
    p.add_argument("--out", required=True, help="folder for day.txt and night.txt")
    p.add_argument("--report", required=True, help="JSON report (counts, classifier accuracy)")


# --- models and descriptors --------------------------------------------------------------------------

@verb("pretrain-backbone", "train a backbone as a scene classifier (the mini preset's stand-in for ImageNet)")
def run_pretrain_backbone(args: argparse.Namespace) -> Path:
    from darkside.embed.pretrain import BackbonePretrainSettings, pretrain_backbone
    preset = _preset(args)
    settings = BackbonePretrainSettings.from_dict(preset.raw["backbone_pretrain"],
                                                  f"presets.{preset.name}.backbone_pretrain")
    return pretrain_backbone(preset.backbone(args.backbone), Path(args.dataset), settings, Path(args.out),
                             _device(preset.device), seed=args.seed)


@run_pretrain_backbone.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", required=True)
    p.add_argument("--dataset", required=True, help="prepared dataset whose scenes are the classes")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)


@verb("init-model", "build a backbone + GeM embedding (ImageNet weights or seeded random init)")
def run_init_model(args: argparse.Namespace) -> Path:
    from darkside.extract.global_descriptors import init_model
    preset = _preset(args)
    return init_model(preset.backbone(args.backbone), Path(args.out), seed=args.seed)


@run_init_model.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", required=True, help="a key of the preset's `backbones`")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)


def _clahe(args: argparse.Namespace):
    # test-time CLAHE uses the training recipe's settings, so the two cannot drift apart
    from darkside.data.photometric import ClaheSettings
    ft = _preset(args).raw["finetune"]
    return ClaheSettings(enabled=args.clahe, clip_limit=ft["clahe_clip_limit"], grid=ft["clahe_grid"])


@verb("whiten", "learn the whitening (Lw) of a model on a dataset's whitening pairs")
def run_whiten(args: argparse.Namespace) -> Path:
    from darkside.extract.global_descriptors import fit_whitening
    preset = _preset(args)
    settings = preset.extract
    size = preset.raw["whitening"]["image_size"]
    settings = dataclasses.replace(settings, image_size=size)
    return fit_whitening(Path(args.model), Path(args.dataset), Path(args.out), settings, _clahe(args),
                         _device(preset.device), split=args.split)


@run_whiten.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True, help="prepared dataset folder with whitening pairs")
    p.add_argument("--split", default="whiten")
    p.add_argument("--out", required=True)
    p.add_argument("--clahe", action="store_true", help="CLAHE on the L channel before the network")


@verb("extract", "multi-scale global descriptors of one or more datasets to HDF5 (one file per dataset)")
def run_extract(args: argparse.Namespace) -> list[Path]:
    from darkside.extract.global_descriptors import extract_dataset
    preset = _preset(args)
    settings = preset.extract
    if args.on_corrupt:
        settings = dataclasses.replace(settings, on_corrupt=args.on_corrupt)
    if len(args.dataset) != len(args.out):
        raise DarksideError(f"extract: {len(args.dataset)} --dataset but {len(args.out)} --out (give one each)")
    # one process for all datasets of a model: the model and torch are loaded once
    return [extract_dataset(Path(args.model), Path(d), Path(o), settings, _clahe(args),
                            Path(args.whitening) if args.whitening else None, _device(preset.device),
                            preset.name, settings.on_corrupt)
            for d, o in zip(args.dataset, args.out, strict=True)]


@run_extract.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True, action="append", help="prepared dataset folder (repeatable)")
    p.add_argument("--out", required=True, action="append", help="HDF5 file, one per --dataset, same order")
    p.add_argument("--whitening", default=None)
    p.add_argument("--clahe", action="store_true")
    p.add_argument("--on-corrupt", choices=["error", "skip"], default=None,
                   help="override the preset: stop on a corrupt image, or skip it and count it")


@verb("finetune", "metric learning of a GeM embedding for a backbone and a named recipe (resumable)")
def run_finetune(args: argparse.Namespace) -> Path:
    import darkside.gan.families  # noqa: F401  (registers the trained generator families' loaders)
    from darkside.embed.finetune import finetune
    from darkside.embed.recipes import FinetuneSettings, recipe_by_name
    preset = _preset(args)
    recipe = recipe_by_name(args.recipe, families=list(preset.raw["gan"]["families"]))
    settings = FinetuneSettings.from_dict(preset.raw["finetune"])
    generator = Path(args.generator) if args.generator else None
    return finetune(Path(args.init), Path(args.dataset), recipe, settings, Path(args.out_dir),
                    device=_device(preset.device), translator_checkpoint=generator, seed=args.seed,
                    backbone=args.backbone)


@run_finetune.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", required=True)
    p.add_argument("--recipe", required=True, help="e.g. gem, clahe-c, clahe-cd, clahe-nd-c, hedngan-cd")
    p.add_argument("--init", required=True, help="the off-the-shelf model to start from")
    p.add_argument("--dataset", required=True, help="prepared training dataset (train/val pairs)")
    p.add_argument("--out-dir", required=True, help="model.pt, checkpoint.pt, training log and curve")
    p.add_argument("--generator", default=None, help="generator.pt of the recipe's trained family")
    p.add_argument("--seed", type=int, default=None, help="fine-tuning seed (default: finetune.seed)")


def _list_paths(list_file: Path, image_root: Path) -> list[Path]:
    return [image_root / line.strip() for line in list_file.read_text(encoding="utf-8").splitlines() if line.strip()]


@verb("train-gan", "train a day->night generator family on the filtered day and night lists (resumable)")
def run_train_gan(args: argparse.Namespace) -> Path:
    from darkside.data.manifest import load_manifest
    from darkside.gan.families import settings_for
    from darkside.gan.train import train_gan
    preset = _preset(args)
    manifest = load_manifest(args.dataset, check_files=False)
    lists = Path(args.lists)
    day = _list_paths(lists / "day.txt", manifest.image_root)
    night = _list_paths(lists / "night.txt", manifest.image_root)
    settings = settings_for(preset.raw["gan"], args.family)
    device = _device(preset.device)
    generator = train_gan(args.family, day, night, settings, Path(args.out_dir), device, seed=args.seed)
    if args.summary:  # Table 8: times from the run's own log, parameter counts
        from darkside.gan.summary import write_training_summary
        write_training_summary(args.out_dir, settings, device, args.summary)
    return generator


@run_train_gan.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", required=True, help="cyclegan, hedgan, hedngan, rcfngan")
    p.add_argument("--dataset", required=True, help="prepared dataset the lists refer to")
    p.add_argument("--lists", required=True, help="folder with day.txt and night.txt (filter-day-night)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--summary", default=None, help="also write the Table 8 summary (times, parameters) here")


@verb("gan", "generator utilities: `darkside gan params --family F [--json]` prints parameter counts")
def run_gan(args: argparse.Namespace) -> None:
    from darkside.gan.params import main as params_main
    argv = ["--family", args.family, "--params", args.params]
    if args.preset:
        argv += ["--preset", args.preset]
    if args.json:
        argv.append("--json")
    params_main(argv)


@run_gan.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["params"])
    p.add_argument("--family", required=True)
    p.add_argument("--json", action="store_true")


@verb("pretrain-edges", "train a HED/RCF teacher on ground-truth edges (where no published weights exist)")
def run_pretrain_edges(args: argparse.Namespace) -> Path:
    from darkside.gan.edges.pretrain import EdgePretrainSettings, pretrain_edges, teacher_geometry
    preset = _preset(args)
    width, input_mode = teacher_geometry(preset.raw["gan"], args.kind)
    settings = EdgePretrainSettings.from_dict(preset.raw["edges"]["pretrain"])
    return pretrain_edges(args.kind, Path(args.dataset), settings, Path(args.out), _device(preset.device),
                          seed=args.seed, width=width, input_mode=input_mode)


@run_pretrain_edges.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", required=True, choices=["hed", "rcf"])
    p.add_argument("--dataset", required=True, help="prepared dataset with edges/ ground truth")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)


def _teacher(preset, kind: str, path: str, device: str):
    from darkside.gan.edges.pretrain import load_teacher_file, teacher_geometry
    width, input_mode = teacher_geometry(preset.raw["gan"], kind)
    return load_teacher_file(path, device, kind=kind, width=width, input_mode=input_mode)


@verb("edge-quality", "score a frozen teacher and the night-trained student (HED vs HED^N) against edge ground truth")
def run_edge_quality(args: argparse.Namespace) -> Path:
    import numpy as np

    from darkside.gan.edges.quality import EdgeQualitySettings, edge_quality_report, load_student
    preset = _preset(args)
    device = _device(preset.device)
    q = EdgeQualitySettings.from_dict(preset.raw["edges"]["quality"])
    name = args.kind.upper()
    detectors = {name: _teacher(preset, args.kind, args.teacher, device),
                 f"{name}^N": load_student(Path(args.run_dir), device)}
    return edge_quality_report(Path(args.out), Path(args.dataset), detectors, domains=q.domains, split=q.split,
                               limit=q.limit, device=device, thresholds=np.linspace(0.01, 0.99, q.thresholds),
                               tolerance_px=q.tolerance_px)


@run_edge_quality.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", required=True, choices=["hed", "rcf"])
    p.add_argument("--teacher", required=True, help="the frozen teacher's weight file")
    p.add_argument("--run-dir", required=True, help="the hedngan / rcfngan training folder (its student)")
    p.add_argument("--dataset", required=True, help="prepared dataset with edges/ ground truth")
    p.add_argument("--out", required=True)


@verb("figure", "figures: `translations` (paper Figure 1) or `edges` (paper Figure 2)")
def run_figure(args: argparse.Namespace) -> Path:
    from darkside.data.manifest import load_manifest
    from darkside.gan import figures
    preset = _preset(args)
    device = _device(preset.device)
    manifest = load_manifest(args.dataset)
    domain = "day" if args.kind == "translations" else "night"
    images = [manifest.image_path(r) for r in manifest.select(domain=domain)][: args.rows]
    pairs = [item.split("=", 1) for item in args.item]
    if args.kind == "translations":
        import darkside.gan.families  # noqa: F401  (registers the families' loaders)
        gens = figures.load_generators({name: (name, path) for name, path in pairs}, device)
        return figures.translations_figure(images, gens, Path(args.out))
    from darkside.gan.edges.quality import load_student
    detectors = {}
    for name, path in pairs:
        if name.endswith("^N"):
            detectors[name] = load_student(Path(path), device)
        else:
            detectors[name] = _teacher(preset, name.lower(), path, device)
    return figures.edges_figure(images, detectors, Path(args.out))


@run_figure.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=["translations", "edges"])
    p.add_argument("--dataset", required=True)
    p.add_argument("--item", action="append", default=[],
                   help="translations: FAMILY=generator.pt; edges: HED=teacher.pt or HED^N=<hedngan run dir>")
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--out", required=True)


# --- evaluation and tables ---------------------------------------------------------------------------

@verb("score", "retrieval / localization metrics of descriptor files to JSON (one per dataset)")
def run_score(args: argparse.Namespace) -> list[Path]:
    from darkside.evaluate.score import score_dataset
    preset = _preset(args)
    lists = (args.descriptors, args.dataset, args.out)
    if len({len(v) for v in lists}) != 1 or (args.pairs_dir and len(args.pairs_dir) != len(args.dataset)):
        raise DarksideError("score: give one --descriptors, --dataset, --out (and --pairs-dir) per dataset")
    pairs = args.pairs_dir or [None] * len(args.dataset)
    return [score_dataset(Path(h5), Path(d), preset.evaluate, Path(o), Path(pd) if pd else None)
            for h5, d, o, pd in zip(args.descriptors, args.dataset, args.out, pairs, strict=True)]


@run_score.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--descriptors", required=True, action="append", help="HDF5 file (repeatable)")
    p.add_argument("--dataset", required=True, action="append", help="prepared dataset, one per --descriptors")
    p.add_argument("--out", required=True, action="append", help="metrics JSON, one per --descriptors")
    p.add_argument("--pairs-dir", action="append", default=None,
                   help="where to export retrieval pairs / poses files, one per --descriptors")


@verb("tables", "regenerate the paper's tables from the metric files")
def run_tables(args: argparse.Namespace) -> list[Path]:
    from darkside.tables.build import build_tables
    preset = _preset(args)
    return build_tables(preset, Path(args.metrics), Path(args.out), tables=args.table)


@run_tables.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", default="results/metrics")
    p.add_argument("--out", default="results/tables")
    p.add_argument("--table", action="append", default=None, help="only this table (e.g. table1); repeatable")


@verb("dvc-yaml", "write dvc.yaml from the Snakemake DAG of the current params (keeps the two in sync)")
def run_dvc_yaml(args: argparse.Namespace) -> Path:
    from darkside.orchestration import write_dvc_yaml
    return write_dvc_yaml(Path(args.out), params=Path(args.params))


@run_dvc_yaml.arguments
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="dvc.yaml")


# --- entry point -------------------------------------------------------------------------------------

def _common_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    # accepted before and after the verb; the sub-parser must not overwrite what the main one parsed
    d = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    p.add_argument("--params", default=d("params.yaml"), help="parameter file (default: params.yaml)")
    p.add_argument("--preset", default=d(None), help="preset name (default: the file's `preset` key)")
    p.add_argument("--log", default=d(None), help="also write the log to this file")
    p.add_argument("-v", "--verbose", action="store_true", default=d(False))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darkside",
        description="darkside: the Dark Side Augmentation experiment suite, one verb per pipeline stage.")
    _common_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, (help_text, add, _run) in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common_options(p, defaults=False)
        add(p)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)


def main(argv: Sequence[str] | None = None) -> int:
    # CPU results depend on the number of threads (summation order); one thread unless the caller says
    # otherwise (Snakemake sets OMP_NUM_THREADS to the job's threads), so `snakemake` and `dvc repro` runs
    # of the same command give identical numbers. torch reads this when it is first imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    _setup_logging(args)
    _help, _add, run = VERBS[args.verb]
    try:
        result = run(args)
    except DarksideError as exc:
        log.debug("error", exc_info=True)
        if args.log:
            logging.getLogger("darkside").error("%s", exc)
        print(f"darkside: error: {exc}", file=sys.stderr)
        return 2
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
