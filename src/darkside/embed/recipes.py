"""Metric-learning recipes (the table rows) and the fine-tuning hyper-parameters (SPEC §6).

A :class:`Recipe` names its ingredients as explicit typed fields instead of gandtr's mini-DSL
strings, so "which anchors go through which generator" is readable in one place.
:class:`FinetuneSettings` holds every number of the training schedule; the ``paper`` preset
values are the defaults-free constants in :data:`PAPER_FINETUNE` (pinned by tests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from darkside.errors import ConfigError

TRANSLATE_SELECTIONS: tuple[str, ...] = ("hash", "epoch-random")


def _check_keys(d: Any, cls: type, where: str, optional: Iterable[str] = ()) -> dict[str, Any]:
    """Strict key check: a typo must stop the run with the key named, never be silently ignored."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in d:
        if key not in fields:
            raise ConfigError(f"{where}.{key}: unknown key")
    missing = sorted(fields - set(d) - set(optional))
    if missing:
        raise ConfigError(f"{where}.{missing[0]}: missing key")
    return dict(d)


def _number(value: Any, where: str, lo: float | None = None, hi: float | None = None,
            integer: bool = False) -> float | int:
    wrong_type = not isinstance(value, int if integer else (int, float))
    if isinstance(value, bool) or wrong_type:
        raise ConfigError(f"{where}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{where}: {value!r} is outside [{lo}, {hi}]")
    return int(value) if integer else float(value)


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    return value


@dataclass(frozen=True)
class Recipe:
    """One training recipe = one table row (per backbone).

    ``generator``: None (no translation), ``"lab-inversion"`` or a trained family name.
    ``translate_selection``: ``"hash"`` reproduces gandtr (MD5 of the image name: a FIXED 25%
    subset of images is always translated when it is an anchor); ``"epoch-random"`` draws afresh
    each epoch (the paper text's wording, a named option). ``day_night_pairs`` adds the N/D
    (night, day) pairs: ``day_night_fraction`` of each epoch's anchor candidates are N/D night
    anchors (the paper keeps 25% night anchors for SfM N/D, as for translation; Table 7's
    "C-GAN+N/D" mixes generated and real nights 1:1). ``finetune=False`` is the off-the-shelf
    network (ImageNet backbone + GeM, no metric learning).
    """

    name: str
    clahe: bool
    diverse_anchors: bool
    generator: str | None
    translate_fraction: float = 0.25
    translate_selection: str = "hash"
    day_night_pairs: bool = False
    day_night_fraction: float = 0.25
    finetune: bool = True

    def __post_init__(self) -> None:
        where = f"recipes.{self.name}"
        gen = self.generator
        if gen is not None and (not isinstance(gen, str) or gen in ("", "none")):
            raise ConfigError(f"{where}.generator: use null for 'no generator', got {self.generator!r}")
        if self.translate_selection not in TRANSLATE_SELECTIONS:
            raise ConfigError(f"{where}.translate_selection: {self.translate_selection!r} is not one of "
                              f"{list(TRANSLATE_SELECTIONS)}")
        _number(self.translate_fraction, f"{where}.translate_fraction", 0.0, 1.0)
        _number(self.day_night_fraction, f"{where}.day_night_fraction", 0.0, 1.0)
        if not self.finetune and (self.generator or self.diverse_anchors or self.day_night_pairs):
            raise ConfigError(f"{where}.finetune: an off-the-shelf recipe cannot use training ingredients")

    @property
    def translates(self) -> bool:
        """Whether any anchor can go through a generator."""
        return self.generator is not None and self.translate_fraction > 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], name: str | None = None) -> Recipe:
        """Build from a mapping; unknown keys and wrong types raise one-line :class:`ConfigError`."""
        d = dict(d)
        if name is not None:
            d.setdefault("name", name)
        where = f"recipes.{d.get('name', '?')}"
        d = _check_keys(d, cls, where, optional=("translate_fraction", "translate_selection",
                                                 "day_night_pairs", "day_night_fraction", "finetune"))
        for key in ("clahe", "diverse_anchors", "day_night_pairs", "finetune"):
            if key in d:
                _flag(d[key], f"{where}.{key}")
        for key in ("translate_fraction", "day_night_fraction"):
            if key in d:
                d[key] = _number(d[key], f"{where}.{key}", 0.0, 1.0)
        return cls(**d)


def _builtin_recipes(families: Iterable[str]) -> dict[str, Recipe]:
    """The recipes that name rows of the paper's tables (Tables 1, 4, 5, 6, 7)."""
    r: dict[str, Recipe] = {}

    def add(name: str, **kw: Any) -> None:
        r[name] = Recipe(name=name, **kw)

    add("offtheshelf", clahe=False, diverse_anchors=False, generator=None, finetune=False)
    add("gem", clahe=False, diverse_anchors=False, generator=None)                 # GeM [30]
    add("gem-nd", clahe=False, diverse_anchors=False, generator=None, day_night_pairs=True)  # GeM N/D
    add("clahe-c", clahe=True, diverse_anchors=False, generator=None)              # CLAHE C
    add("clahe-cd", clahe=True, diverse_anchors=True, generator=None)              # CLAHE CD (Table 5)
    add("clahe-nd-c", clahe=True, diverse_anchors=False, generator=None, day_night_pairs=True)
    add("clahe-nd-cd", clahe=True, diverse_anchors=True, generator=None, day_night_pairs=True)
    add("lab-inversion-cd", clahe=True, diverse_anchors=True, generator="lab-inversion")
    for fam in families:
        if not fam or fam in ("none", "lab-inversion"):
            raise ConfigError(f"generator family name {fam!r} is reserved")
        add(f"{fam}-c", clahe=True, diverse_anchors=False, generator=fam)
        add(f"{fam}-cd", clahe=True, diverse_anchors=True, generator=fam)
        add(fam, clahe=False, diverse_anchors=False, generator=fam)                  # Table 5: neither C nor D
        # Table 7 bottom block: generated and real (N/D) nights 1:1, 25% (default) or 50% night anchors
        # in all; the generator sees only day anchors, hence f/2 of all = (f/2) / (1 - f/2) of those
        for suffix, night_share in (("-cd-nd", 0.25), ("-cd-nd50", 0.5)):
            half = night_share / 2
            add(f"{fam}{suffix}", clahe=True, diverse_anchors=True, generator=fam, day_night_pairs=True,
                day_night_fraction=half, translate_fraction=half / (1 - half))
    return r


def named_recipes(families: Iterable[str] = ()) -> dict[str, Recipe]:
    """All built-in recipes, with ``{family}``, ``{family}-c``, ``-cd`` and ``-cd-nd`` per generator family."""
    return _builtin_recipes(list(families))


def recipe_by_name(name: str, families: Iterable[str] = ()) -> Recipe:
    """A built-in recipe by its name (the ``{recipe}`` wildcard of the DAG)."""
    recipes = _builtin_recipes(list(families))
    try:
        return recipes[name]
    except KeyError:
        raise ConfigError(f"recipe: unknown recipe {name!r} (known: {', '.join(sorted(recipes))})") from None


@dataclass(frozen=True)
class FinetuneSettings:
    """Every number of the metric-learning schedule (SPEC §6, gandtr finetune.yml + cirtorch)."""

    margins: Mapping[str, float]       # contrastive margin per backbone name
    lr: float                          # Adam learning rate
    betas: tuple[float, float]
    weight_decay: float
    gem_lr_multiplier: float           # GeM p: lr x10 ...
    gem_weight_decay: float            # ... and no weight decay (cirtorch)
    lr_gamma: float                    # ExponentialLR, stepped at the END of each epoch (mdir)
    epochs: int
    anchors_per_epoch: int             # cirtorch query_size
    anchor_pool: int                   # diverse anchors: random candidate pairs per epoch
    negative_pool: int                 # random images the hard negatives are mined from
    negatives: int                     # hard negatives per tuple
    tuples_per_batch: int              # one backward per tuple, one optimiser step per batch
    image_size: int                    # training images: max side
    seed: int
    val_every: int                     # validation loss every N epochs (and at the last epoch)
    band: tuple[float, float]          # diverse anchors: percentile band of the similarity ordering
    clahe_clip_limit: float
    clahe_grid: int
    mining_batch_size: int             # images per forward when computing mining descriptors
    cache_images: bool                 # keep decoded resized images in memory (small datasets)

    def __post_init__(self) -> None:
        w = "finetune"
        for name, m in self.margins.items():
            _number(m, f"{w}.margins.{name}", 0.0)
        _number(self.lr, f"{w}.lr", 0.0)
        if len(self.betas) != 2:
            raise ConfigError(f"{w}.betas: expected two numbers")
        for b in self.betas:
            _number(b, f"{w}.betas", 0.0, 1.0)
        _number(self.lr_gamma, f"{w}.lr_gamma", 0.0, 1.0)
        for key in ("epochs", "anchors_per_epoch", "anchor_pool", "negative_pool", "negatives",
                    "tuples_per_batch", "image_size", "val_every", "clahe_grid", "mining_batch_size"):
            _number(getattr(self, key), f"{w}.{key}", 1, integer=True)
        _number(self.seed, f"{w}.seed", 0, integer=True)
        lo, hi = self.band
        if not (0.0 <= lo < hi <= 1.0):
            raise ConfigError(f"{w}.band: expected 0 <= low < high <= 1, got {list(self.band)}")

    def margin(self, backbone: str) -> float:
        """The contrastive margin of ``backbone`` (0.75 VGG16, 0.85 ResNet-101 in the paper)."""
        try:
            return float(self.margins[backbone])
        except KeyError:
            raise ConfigError(f"finetune.margins.{backbone}: no margin for this backbone") from None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["margins"] = dict(self.margins)
        d["betas"], d["band"] = list(self.betas), list(self.band)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FinetuneSettings:
        """Build from the preset's ``finetune`` block; unknown or missing keys raise :class:`ConfigError`."""
        d = _check_keys(d, cls, "finetune")
        if not isinstance(d["margins"], Mapping) or not d["margins"]:
            raise ConfigError("finetune.margins: expected a mapping backbone -> margin")
        for key in ("betas", "band"):
            if not isinstance(d[key], (list, tuple)) or len(d[key]) != 2:
                raise ConfigError(f"finetune.{key}: expected a list of two numbers")
            d[key] = tuple(_number(v, f"finetune.{key}") for v in d[key])
        for key in ("lr", "weight_decay", "gem_lr_multiplier", "gem_weight_decay", "lr_gamma",
                    "clahe_clip_limit"):
            d[key] = _number(d[key], f"finetune.{key}", 0.0)
        _flag(d["cache_images"], "finetune.cache_images")
        d["margins"] = {str(k): _number(v, f"finetune.margins.{k}", 0.0) for k, v in d["margins"].items()}
        return cls(**d)


#: The paper preset (gandtr finetune.yml / SPEC §6); params.yaml's ``paper`` block must equal it.
PAPER_FINETUNE: dict[str, Any] = {
    "margins": {"vgg16": 0.75, "resnet101": 0.85},
    "lr": 5e-7,
    "betas": [0.9, 0.999],
    "weight_decay": 5e-4,
    "gem_lr_multiplier": 10.0,
    "gem_weight_decay": 0.0,
    "lr_gamma": 0.99,
    "epochs": 40,
    "anchors_per_epoch": 2000,
    "anchor_pool": 10000,
    "negative_pool": 22000,
    "negatives": 5,
    "tuples_per_batch": 5,
    "image_size": 362,
    "seed": 0,
    "val_every": 5,
    "band": [0.2, 0.8],
    "clahe_clip_limit": 1.0,
    "clahe_grid": 8,
    "mining_batch_size": 32,
    "cache_images": False,
}

#: The mini preset: ~800 synthetic 96 px images, scaled backbones pre-trained on synthetic scenes, 2 CPU cores.
MINI_FINETUNE: dict[str, Any] = {
    **PAPER_FINETUNE,
    "lr": 3e-4,            # 20 short epochs from a short pre-training, not 40 gentle ones from ImageNet
    "epochs": 20,
    "anchors_per_epoch": 160,
    "anchor_pool": 400,
    "negative_pool": 300,
    "image_size": 64,
    "val_every": 2,
    "mining_batch_size": 64,
    "cache_images": True,
}
