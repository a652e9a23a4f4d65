# DaCo's cross-domain retrieval (its Tables 1-6): per task (data.roles.cross_domain) a translator trained on the
# pair set's training images, which translates each of them once; the learners and variants of daco.runs trained
# on the task, their evaluation pairs' descriptors, and one score job for all of them.

DACO = P["daco"]
CROSS_DOMAIN = ROLES["cross_domain"]
# (learner or variant, dataset) for every run the preset trains; a role the preset maps to no dataset has none
DACO_RUNS = [(name, CROSS_DOMAIN[role]) for role, names in DACO["runs"].items() if role in CROSS_DOMAIN
             for name in names]
DACO_DATASETS = sorted({d for _, d in DACO_RUNS})
DACO_LEARNERS = sorted({n for n, _ in DACO_RUNS})
DACO_METRICS = [f"results/metrics/{n}/{d}.json" for n, d in DACO_RUNS]


def daco_translations(name, dataset):
    """The translations folder a run reads ('' for a run without translated views): the task's translator's
    (a DAG output), or the one shipped beside the pair set (written with the dataset: its renderer's)."""
    entry = daco_learner_entry(DACO, name)
    if not entry["translated_views"]:
        return ""
    if entry.get("translations", "translator") == "dataset":
        return f"data/prepared/{dataset}/translations"
    return f"results/daco/translations/{dataset}"


_DACO_NAME = "|".join(re.escape(n) for n in DACO_LEARNERS) or "(?!)"
_DACO_DATASET = "|".join(re.escape(d) for d in DACO_DATASETS) or "(?!)"


rule train_daco_translator:
    # as train_gan, checkpoint.pt is not declared (a preempted run resumes from it); the translations folder is
    # written whole after training and renamed into place
    input:
        prepared("{dataset}"),
    output:
        "results/daco/translators/{dataset}/generator.pt",
        "results/daco/translators/{dataset}/log.json",
        "results/daco/translators/{dataset}/losses.csv",
        report("results/daco/translators/{dataset}/training_curve.png", category="Cross-domain retrieval",
               subcategory="Translator training curves", labels={"dataset": "{dataset}"}),
        report(directory("results/daco/translators/{dataset}/samples"), patterns=["epoch_{epoch}.png"],
               category="Cross-domain retrieval", subcategory="Translator sample grids per epoch",
               labels={"dataset": "{dataset}", "epoch": "{epoch}"}),
        translations=directory("results/daco/translations/{dataset}"),
    wildcard_constraints:
        dataset=_DACO_DATASET,
    params:
        settings=settings("train-daco-translator"),
    log:
        "logs/train_daco_translator/{dataset}.log",
    benchmark:
        "logs/benchmarks/train_daco_translator/{dataset}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(32000, 0.5),
        runtime=grow(5 * 24 * 60),
    shell:
        "{DS} --settings {params.settings:q} train-daco-translator --dataset data/prepared/{wildcards.dataset}"
        " --out-dir results/daco/translators/{wildcards.dataset} --translations {output.translations} --log {log}"


def train_daco_inputs(wildcards):
    inputs = {"data": prepared(wildcards.dataset)}
    folder = daco_translations(wildcards.learner, wildcards.dataset)
    if folder.startswith("results/"):  # a DAG output; the dataset's own folder comes with its prepared files
        inputs["translations"] = folder
    return inputs


def translations_option(wildcards):
    # its own leading space, as generator_option's
    folder = daco_translations(wildcards.learner, wildcards.dataset)
    return f" --translations {folder}" if folder else ""


rule train_daco:
    input:
        unpack(train_daco_inputs),
    output:
        "results/daco/models/{learner}/{dataset}/model.pt",
        "results/daco/models/{learner}/{dataset}/training_log.json",
    wildcard_constraints:
        learner=_DACO_NAME,
        dataset=_DACO_DATASET,
    params:
        settings=lambda wc: settings("train-daco", learner=wc.learner, dataset=f"data/prepared/{wc.dataset}"),
        translations=translations_option,
    log:
        "logs/train_daco/{learner}/{dataset}.log",
    benchmark:
        "logs/benchmarks/train_daco/{learner}/{dataset}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(32000, 0.5),
        runtime=grow(24 * 60),
    shell:
        "{DS} --settings {params.settings:q} train-daco --learner {wildcards.learner}"
        " --dataset data/prepared/{wildcards.dataset}{params.translations}"
        " --out-dir results/daco/models/{wildcards.learner}/{wildcards.dataset} --log {log}"


rule extract_daco:
    input:
        prepared("{dataset}"),
        model="results/daco/models/{learner}/{dataset}/model.pt",
    output:
        "results/descriptors/{learner}/{dataset}.h5",
    wildcard_constraints:
        learner=_DACO_NAME,
        dataset=_DACO_DATASET,
    params:
        settings=settings("extract-daco"),
    log:
        "logs/extract_daco/{learner}/{dataset}.log",
    benchmark:
        "logs/benchmarks/extract_daco/{learner}/{dataset}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(8000, 0.5),
        runtime=grow(60),
    shell:
        "{DS} --settings {params.settings:q} extract-daco --model {input.model}"
        " --dataset data/prepared/{wildcards.dataset} --out {output} --log {log}"


rule score_daco:
    # every DaCo run in one job: Recall@K of a few hundred pairs is cheap, the process start is not
    input:
        [f for d in DACO_DATASETS for f in prepared(d)],
        descriptors=[f"results/descriptors/{n}/{d}.h5" for n, d in DACO_RUNS],
    output:
        DACO_METRICS,
    params:
        settings=settings("score"),
        runs=" ".join(f"--descriptors results/descriptors/{n}/{d}.h5 --dataset data/prepared/{d}"
                      f" --out results/metrics/{n}/{d}.json" for n, d in DACO_RUNS),
    log:
        "logs/score_daco.log",
    benchmark:
        "logs/benchmarks/score_daco/score_daco.tsv"
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(30),
    shell:
        "{DS} --settings {params.settings:q} score {params.runs} --log {log}"
