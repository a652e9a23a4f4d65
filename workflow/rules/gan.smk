# Day->night generators (SPEC section 5): teacher edge detectors where no published weights exist (mini),
# one training job per family, the edge-quality comparison (HED vs HED^N) and Figures 1 and 2.

DETECTORS = P["edges"]["detectors"]
# detector kind -> the families whose settings name it (a family's typed `detector` field)
DETECTOR_FAMILIES = {}
for _family in FAMILIES:
    if "detector" in P["gan"]["families"][_family]:
        DETECTOR_FAMILIES.setdefault(P["gan"]["families"][_family]["detector"], []).append(_family)


def teacher(kind):
    return DETECTORS[kind]["weights"]


def train_gan_inputs(wildcards):
    inputs = {"data": prepared(ROLES["train"]),
              "day": f"data/filtered/{ROLES['train']}/day.txt",
              "night": f"data/filtered/{ROLES['train']}/night.txt"}
    if gan_family(wildcards.family) in MULTI_DOMAIN_FAMILIES:  # every lighting domain, not only the day/night lists
        inputs["domains"] = f"data/filtered/{ROLES['train']}/domains.tsv"
    kind = gan_entry(wildcards.family).get("detector")
    if kind is not None and teacher(kind):
        inputs["detector"] = teacher(kind)
    return inputs


rule pretrain_edges:
    input:
        prepared(ROLES["train"]),
    output:
        "results/edges/{kind}/teacher.pt",
        "results/edges/{kind}/teacher.json",
    wildcard_constraints:
        kind="|".join(DETECTORS),
    params:
        settings=lambda wc: settings("pretrain-edges", kind=wc.kind),
    log:
        "logs/pretrain_edges/{kind}.log",
    benchmark:
        "logs/benchmarks/pretrain_edges/{kind}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(8000, 0.5),
        runtime=grow(12 * 60),
    shell:
        "{DS} --settings {params.settings:q} pretrain-edges --kind {wildcards.kind}"
        " --dataset data/prepared/{ROLES[train]} --out {output[0]} --log {log}"


def variant_option(wildcards):
    # its own leading space, as generator_option's
    return f" --variant {wildcards.family}" if wildcards.family in VARIANTS else ""


rule train_gan:
    # one job per family, and per variant of one (gan.variants: `{family}` is then the variant's name)
    input:
        unpack(train_gan_inputs),
    # Every file the run writes is declared but checkpoint.pt (and checkpoint-samples/, the sample grids of the
    # finished epochs kept with it): Snakemake deletes a failed (preempted) job's declared outputs before the
    # rerun, and the resumed run needs both; it rewrites the declared files from them. The sample grids are a
    # folder, not a list: an output cannot depend on the wildcard, and the epochs differ per family.
    output:
        "results/gans/{family}/generator.pt",
        "results/gans/{family}/log.json",
        "results/gans/{family}/losses.csv",
        report("results/gans/{family}/training_curve.png", category="Generators", subcategory="Training curves",
               labels={"generator": "{family}"}),
        report(directory("results/gans/{family}/samples"), patterns=["epoch_{epoch}.png"], category="Generators",
               subcategory="Sample grids per epoch", labels={"generator": "{family}", "epoch": "{epoch}"}),
        summary="results/metrics/gans/{family}.json",
    wildcard_constraints:
        family="|".join(GAN_RUNS),
    params:
        settings=lambda wc: settings("train-gan", family=gan_family(wc.family),
                                     **({"variant": wc.family} if wc.family in VARIANTS else {})),
        family=lambda wc: gan_family(wc.family),
        variant=variant_option,
    log:
        "logs/train_gan/{family}.log",
    benchmark:
        "logs/benchmarks/train_gan/{family}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(32000, 0.5),
        runtime=grow(5 * 24 * 60),
    shell:
        "{DS} --settings {params.settings:q} train-gan --family {params.family}{params.variant}"
        " --dataset data/prepared/{ROLES[train]} --lists data/filtered/{ROLES[train]}"
        " --out-dir results/gans/{wildcards.family} --summary {output.summary} --log {log}"


rule import_generator:
    # an authors' published generator (gan.published), checked against its family and rewritten
    input:
        lambda wc: PUBLISHED[wc.name]["file"],
    output:
        "results/gans/{name}/generator.pt",
    wildcard_constraints:
        name="|".join(PUBLISHED) or "(?!)",
    params:
        settings=lambda wc: settings("import-generator", name=wc.name),
    log:
        "logs/import_generator/{name}.log",
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(30),
    shell:
        "{DS} --settings {params.settings:q} import-generator --name {wildcards.name} --file {input}"
        " --out {output} --log {log}"


rule edge_quality:
    # the teacher against the night students of the families that use it (those that train one)
    input:
        prepared(ROLES["tokyo"]),
        teacher=lambda wc: teacher(wc.kind),
        generators=lambda wc: [f"results/gans/{f}/generator.pt" for f in DETECTOR_FAMILIES[wc.kind]],
    output:
        "results/metrics/edges/{kind}.json",
    wildcard_constraints:
        kind="|".join(DETECTORS),
    params:
        settings=lambda wc: settings("edge-quality", kind=wc.kind),
        run_dirs=lambda wc: " ".join(f"--run-dir results/gans/{f}" for f in DETECTOR_FAMILIES[wc.kind]),
    log:
        "logs/edge_quality/{kind}.log",
    benchmark:
        "logs/benchmarks/edge_quality/{kind}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(8000, 0.5),
        runtime=grow(60),
    shell:
        "{DS} --settings {params.settings:q} edge-quality --kind {wildcards.kind} --teacher {input.teacher}"
        " {params.run_dirs} --dataset data/prepared/{ROLES[tokyo]} --out {output} --log {log}"


rule figure_translations:
    input:
        prepared(ROLES["tokyo"]),
        generators=expand("results/gans/{family}/generator.pt", family=FAMILIES),
    output:
        report("results/figures/translations.png", category="Generators", subcategory="Figures",
               labels={"figure": "Figure 1: day images and their night translations"}),
    params:
        settings=settings("figure", kind="translations"),
        item_args=" ".join(f"--item {f}=results/gans/{f}/generator.pt" for f in FAMILIES),
    log:
        "logs/figures/translations.log",
    benchmark:
        "logs/benchmarks/figure_translations/translations.tsv"
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(30),
    shell:
        "{DS} --settings {params.settings:q} figure translations --dataset data/prepared/{ROLES[tokyo]}"
        " {params.item_args} --out {output} --log {log}"


_EDGE_FIGURE = {"teacher": [f"{k}={teacher(k)}" for k in DETECTOR_FAMILIES]}


rule figure_edges:
    input:
        prepared(ROLES["tokyo"]),
        teachers=[teacher(k) for k in DETECTOR_FAMILIES],
        generators=[f"results/gans/{f}/generator.pt" for fs in DETECTOR_FAMILIES.values() for f in fs],
    output:
        report("results/figures/edges.png", category="Edges", subcategory="Figures",
               labels={"figure": "Figure 2: teacher and night-student edges"}),
    params:
        settings=settings("figure", kind="edges", **_EDGE_FIGURE),
        item_args=" ".join([f"--teacher {t}" for t in _EDGE_FIGURE["teacher"]]
                           + [f"--run-dir results/gans/{f}" for fs in DETECTOR_FAMILIES.values() for f in fs]),
    log:
        "logs/figures/edges.log",
    benchmark:
        "logs/benchmarks/figure_edges/edges.tsv"
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(30),
    shell:
        "{DS} --settings {params.settings:q} figure edges --dataset data/prepared/{ROLES[tokyo]} {params.item_args}"
        " --out {output} --log {log}"


GAN_TARGETS = (
    ["results/figures/translations.png"]
    + (["results/figures/edges.png"] if DETECTOR_FAMILIES else [])
    # edge quality is scored against the renderer's true edge maps, which only the synthetic benchmark writes
    # (the paper preset's Tokyo 24/7 has none: its rehearsal stopped there)
    + [f"results/metrics/edges/{kind}.json" for kind in DETECTOR_FAMILIES if ROLES["tokyo"] in SYNTHETIC_DATASETS]
    + [f"results/metrics/gans/{f}.json" for f in GAN_RUNS]
)
