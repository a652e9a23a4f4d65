"""Metric-learning recipes (the table rows) and the fine-tuning settings (SPEC section 6).

A :class:`Recipe` names its ingredients as explicit typed fields instead of gandtr's mini-DSL
strings, so "which anchors go through which generator" is readable in one place. The named recipes
follow from the translators: each built-in one (:data:`BUILTIN_TRANSLATORS`) and each generator
family gives ``{name}``, ``{name}-c``, ``{name}-cd``, ``{name}-cd-nd`` and ``{name}-cd-nd50``, and
``gem-n2d-{name}`` (GeM's model with night test images translated to day by a two-way family) and
``{name}-content`` (the generator's own content embedding as the descriptor, MDUIT's z_s: no fine-tuning).
An :class:`Ensemble` (``{a}+{b}``) is a row made of two or more recipes' models, trained as themselves.
:class:`FinetuneSettings` holds every number of the training schedule. Nothing here imports torch:
the DAG and the tables read recipes too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from darkside.errors import ConfigError
from darkside.settings import setting

TRANSLATE_SELECTIONS: tuple[str, ...] = ("hash", "epoch-random")
#: translators that need no trained checkpoint (darkside.gan.translator.BUILTIN loads them): the paper's LAB
#: inversion baseline and the synthetic benchmark's own night renderer (``oracle``, the ceiling of any generator)
BUILTIN_TRANSLATORS: tuple[str, ...] = ("lab-inversion", "oracle")


def _number(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"{where}: expected a number in [{lo}, {hi}], got {value!r}")
    return float(value)


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
    # translation at test time (the paper's section 4.2): the model of recipe ``weights_of``, unchanged, with
    # the night test images translated to day by family ``night_to_day``'s night->day generator
    night_to_day: str | None = None
    weights_of: str | None = None
    # the descriptor network around the backbone (darkside.embed.networks: gem, or a stem / head of its own)
    network: str = "gem"
    # the model is translator ``content_of``'s content embedding, read from its generator file (MDUIT's z_s for
    # its Table 1), not fine-tuned; its network (``content``) replaces the backbone's trunk, which a model of a
    # ``<backbone>-<recipe>`` name still records: the backbone only names the model (the table block's)
    content_of: str | None = None

    def __post_init__(self) -> None:
        where = f"recipes.{self.name}"
        if self.generator is not None and (not isinstance(self.generator, str) or self.generator in ("", "none")):
            raise ConfigError(f"{where}.generator: use null for 'no generator', got {self.generator!r}")
        if self.translate_selection not in TRANSLATE_SELECTIONS:
            raise ConfigError(f"{where}.translate_selection: {self.translate_selection!r} is not one of "
                              f"{list(TRANSLATE_SELECTIONS)}")
        _number(self.translate_fraction, f"{where}.translate_fraction", 0.0, 1.0)
        _number(self.day_night_fraction, f"{where}.day_night_fraction", 0.0, 1.0)
        if not self.finetune and (self.generator or self.diverse_anchors or self.day_night_pairs):
            raise ConfigError(f"{where}.finetune: an off-the-shelf recipe cannot use training ingredients")
        if not isinstance(self.network, str) or not self.network:
            raise ConfigError(f"{where}.network: expected a network name, got {self.network!r}")
        if (self.night_to_day is None) != (self.weights_of is None):
            raise ConfigError(f"{where}: night_to_day and weights_of go together (a trained model, translated "
                              f"night test images)")
        if self.content_of is not None and (self.finetune or self.generator or self.clahe):
            raise ConfigError(f"{where}.content_of: a generator's content embedding is not fine-tuned, and its "
                              f"test images are not prepared (no CLAHE)")

    @property
    def translates(self) -> bool:
        """Whether any anchor can go through a generator."""
        return self.generator is not None and self.translate_fraction > 0


def _builtin_recipes(families: Iterable[str]) -> dict[str, Recipe]:
    """The recipes that name rows of the paper's tables (Tables 1, 4, 5, 6, 7), for the built-in
    translators and the generator ``families``."""
    r: dict[str, Recipe] = {}

    def add(name: str, **kw: Any) -> None:
        # translator names are config (variants, published generators): two of them must not make one recipe name
        if name in r:
            raise ConfigError(f"recipe {name!r} would be two recipes (a translator name that another's recipe "
                              f"names already: rename one)")
        r[name] = Recipe(name=name, **kw)

    add("offtheshelf", clahe=False, diverse_anchors=False, generator=None, finetune=False)
    add("gem", clahe=False, diverse_anchors=False, generator=None)                 # GeM [30]
    add("gem-nd", clahe=False, diverse_anchors=False, generator=None, day_night_pairs=True)  # GeM N/D
    add("clahe-c", clahe=True, diverse_anchors=False, generator=None)              # CLAHE C
    add("clahe-cd", clahe=True, diverse_anchors=True, generator=None)              # CLAHE CD (Table 5)
    add("clahe-nd-c", clahe=True, diverse_anchors=False, generator=None, day_night_pairs=True)
    add("clahe-nd-cd", clahe=True, diverse_anchors=True, generator=None, day_night_pairs=True)
    add("how", clahe=False, diverse_anchors=False, generator=None, network="how")   # HOW [41]
    add("how-nd", clahe=False, diverse_anchors=False, generator=None, day_night_pairs=True, network="how")
    add("ciconv", clahe=False, diverse_anchors=False, generator=None, network="ciconv")  # CIConv [16]
    # NetVLAD [35], MDUIT's Table 1 baseline: the VGG16 trunk fine-tuned as GeM's, with NetVLAD pooling
    add("netvlad", clahe=False, diverse_anchors=False, generator=None, network="netvlad")

    # Table 4's EdgeMAC rows: edge embeddings on HED, HED^N and RCF^N edges (their networks say which detector),
    # trained as the paper's GeM baseline is: no CLAHE, no generator, no diverse anchors
    for edges in ("hed", "hedn", "rcfn"):
        add(f"edgemac-{edges}", clahe=False, diverse_anchors=False, generator=None, network=f"edgemac-{edges}")
    for fam in (*BUILTIN_TRANSLATORS, *families):
        if not fam or fam == "none":
            raise ConfigError(f"generator family name {fam!r} is reserved")
        if fam not in BUILTIN_TRANSLATORS:  # the paper's test-time alternative: GeM's model unchanged, night
            add(f"gem-n2d-{fam}", clahe=False, diverse_anchors=False, generator=None,  # test images translated
                night_to_day=fam, weights_of="gem")                                   # to day by ``fam``
            # MDUIT's Table 1: the generator's content embedding z_s as the descriptor (a family with one)
            add(f"{fam}-content", clahe=False, diverse_anchors=False, generator=None, finetune=False,
                content_of=fam, network="content")
        add(f"{fam}-c", clahe=True, diverse_anchors=False, generator=fam)
        add(f"{fam}-cd", clahe=True, diverse_anchors=True, generator=fam)
        add(fam, clahe=False, diverse_anchors=False, generator=fam)                  # Table 5: neither C nor D
        add(f"how-{fam}-cd", clahe=True, diverse_anchors=True, generator=fam, network="how")  # Table 1, HOW block
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


#: joins the recipes of an ensemble's name: ``hedngan-cd+cyclegan-cd`` is those two models' descriptors combined
ENSEMBLE_JOIN = "+"


@dataclass(frozen=True)
class Ensemble:
    """A row made of other recipes' models (Table 4's ensembles): per image their L2-normalised descriptors
    concatenated, then L2 (:mod:`darkside.extract.ensemble`), so an ensemble trains nothing and runs no network.

    It answers what the DAG and the tables ask of a recipe: no ``generator``, ``weights_of`` or
    ``night_to_day`` of its own and no fine-tuning (its parts have theirs); ``day_night_pairs`` where a part
    trains with N/D pairs (the paper's mark follows what the ensemble was trained on).
    """

    name: str
    parts: tuple[Recipe, ...]

    generator = None
    weights_of = None
    night_to_day = None
    content_of = None
    finetune = False
    translates = False

    @property
    def day_night_pairs(self) -> bool:
        return any(p.day_night_pairs for p in self.parts)


def is_ensemble(name: str) -> bool:
    """Whether a recipe name is an ensemble of recipes (``a+b``)."""
    return ENSEMBLE_JOIN in name


def ensemble_by_name(name: str, families: Iterable[str] = ()) -> Ensemble:
    """The ensemble ``a+b(+...)`` of built-in recipes; one line naming a part that is not a recipe."""
    parts = name.split(ENSEMBLE_JOIN)
    if len(parts) < 2 or len(set(parts)) != len(parts):
        raise ConfigError(f"recipe {name!r}: an ensemble joins two or more different recipes with "
                          f"{ENSEMBLE_JOIN!r}")
    recipes = _builtin_recipes(list(families))
    if unknown := [p for p in parts if p not in recipes]:
        raise ConfigError(f"recipe {name!r}: ensemble part {unknown[0]!r} is not a recipe")
    return Ensemble(name, tuple(recipes[p] for p in parts))


def recipe_or_ensemble(name: str, families: Iterable[str] = ()) -> Recipe | Ensemble:
    """What a model's recipe name stands for: a built-in recipe, or an ensemble of them (``a+b``)."""
    return ensemble_by_name(name, families) if is_ensemble(name) else recipe_by_name(name, families)


def part_recipes(r: Recipe | Ensemble) -> tuple[Recipe, ...]:
    """The trained recipes behind ``r``: an ensemble's parts, or the recipe itself."""
    return r.parts if isinstance(r, Ensemble) else (r,)


@dataclass(frozen=True)
class FinetuneSettings:
    """``finetune``: every number of the metric-learning schedule (SPEC section 6, gandtr + cirtorch)."""

    margins: dict[str, float] = setting("contrastive margin per backbone (paper: VGG16 0.75, ResNet-101 0.85)",
                                        gt=0, keys_of="backbones")
    lr: float = setting("Adam learning rate", gt=0)
    betas: tuple[float, float] = setting(ge=0, lt=1)
    weight_decay: float = setting(ge=0)
    gem_lr_multiplier: float = setting("GeM p trains at lr x this ...", gt=0)
    gem_weight_decay: float = setting("... without weight decay (cirtorch)", ge=0)
    lr_gamma: float = setting("ExponentialLR, stepped at the END of each epoch (mdir)", gt=0, le=1)
    epochs: int = setting(ge=1)
    anchors_per_epoch: int = setting("cirtorch's query_size", ge=1)
    anchor_pool: int = setting("diverse anchors: random candidate pairs per epoch", ge=1)
    negative_pool: int = setting("random images the hard negatives are mined from", ge=1)
    negatives: int = setting("hard negatives per tuple", ge=1)
    tuples_per_batch: int = setting("one backward per tuple, one optimiser step per batch", ge=1)
    image_size: int = setting("training images: max side", ge=1)
    seed: int = setting(ge=0)
    val_every: int = setting("validation loss every N epochs (and at the last epoch)", ge=1)
    band: tuple[float, float] = setting("diverse anchors: percentile band of the similarity ordering", ge=0, le=1)
    clahe_clip_limit: float = setting("CLAHE on L* (the model file records it for test time)", gt=0)
    clahe_grid: int = setting(ge=1)
    mining_batch_size: int = setting("images per forward when computing mining descriptors", ge=1)
    cache_images: bool = setting("keep decoded resized images in memory (small datasets)")
    precision: Literal["fp32", "bf16"] = setting(
        "forward passes of training and mining: fp32 (the paper) or bf16 autocast (faster on a GPU; moves the numbers)",
        default="fp32")
    backward: Literal["tuple", "batch"] = setting(
        "the fake batch's gradient: a backward per tuple (gandtr: one tuple's activations held) or one backward of "
        "the batch's summed loss (the same gradient up to float summation order; same-size images batched across "
        "tuples, faster on a CPU)", default="tuple")

    def __post_init__(self) -> None:
        lo, hi = self.band
        if not lo < hi:
            raise ConfigError(f"finetune.band: expected low < high, got {list(self.band)}")

    def margin(self, backbone: str) -> float:
        """The contrastive margin of ``backbone`` (0.75 VGG16, 0.85 ResNet-101 in the paper)."""
        try:
            return float(self.margins[backbone])
        except KeyError:
            raise ConfigError(f"finetune.margins.{backbone}: no margin for this backbone") from None
