# DaCo's cross-domain retrieval (its Tables 1-6): per task (data.roles.cross_domain) a translator trained on the
# pair set's training images, which translates each of them once; the learners and variants of daco.runs trained
# on the task (each writing its evaluation pairs' descriptors), the hand-crafted methods of daco.runs extracted,
# and two score jobs: by descriptors, and by matches for the SIFT method.

DACO = P["daco"]
CROSS_DOMAIN = ROLES["cross_domain"]
# (learner, variant or hand-crafted method, dataset) for every run the preset makes; a role the preset maps to no
# dataset has none
DACO_RUNS = [(name, CROSS_DOMAIN[role]) for role, names in DACO["runs"].items() if role in CROSS_DOMAIN
             for name in names]
HANDCRAFTED = DACO["handcrafted"]
DACO_DATASETS = sorted({d for _, d in DACO_RUNS})
DACO_LEARNERS = sorted({n for n, _ in DACO_RUNS if n not in HANDCRAFTED})
DACO_HANDCRAFTED = sorted({n for n, _ in DACO_RUNS if n in HANDCRAFTED})
DACO_METRICS = [f"results/metrics/{n}/{d}.json" for n, d in DACO_RUNS]


def ranked_by_matches(name):
    """A hand-crafted method whose encoding keeps the local features (Encoding.keeps_local: DaCo's SIFT matching):
    scored with --matches."""
    return name in HANDCRAFTED and ENCODINGS[next(iter(HANDCRAFTED[name]["encoding"]))].keeps_local


def score_runs(runs):
    return " ".join(f"--descriptors results/descriptors/{n}/{d}.h5 --dataset data/prepared/{d}"
                    f" --out results/metrics/{n}/{d}.json" for n, d in runs)


def daco_translations(name, dataset):
    """The translations folder a run reads ('' for a run without translated views): the task's translator's
    (a DAG output), or the one shipped beside the pair set (written with the dataset: its renderer's)."""
    entry = daco_learner_entry(DACO, name)
    if entry["translations"] == "none":
        return ""
    if entry["translations"] == "dataset":
        return f"data/prepared/{dataset}/translations"
    return f"results/daco/translations/{dataset}"


_DACO_NAME = "|".join(re.escape(n) for n in DACO_LEARNERS) or "(?!)"
_HANDCRAFTED_NAME = "|".join(re.escape(n) for n in DACO_HANDCRAFTED) or "(?!)"
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
        report("results/daco/models/{learner}/{dataset}/training_curve.png", category="Cross-domain retrieval",
               subcategory="Learner training curves", labels={"learner": "{learner}", "dataset": "{dataset}"}),
        # the evaluation pairs' descriptors of the kept epoch, by the same process (extract-daco's file: a job of
        # its own would spend its time starting)
        descriptors="results/descriptors/{learner}/{dataset}.h5",
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
        " --out-dir results/daco/models/{wildcards.learner}/{wildcards.dataset} --descriptors {output.descriptors}"
        " --log {log}"


rule extract_handcrafted:
    # SIFT of the evaluation pairs' images and the method's encoding: a few CPU seconds, no GPU
    input:
        prepared("{dataset}"),
    output:
        "results/descriptors/{method}/{dataset}.h5",
    wildcard_constraints:
        method=_HANDCRAFTED_NAME,
        dataset=_DACO_DATASET,
    params:
        settings=lambda wc: settings("extract-handcrafted", method=wc.method),
    log:
        "logs/extract_handcrafted/{method}/{dataset}.log",
    benchmark:
        "logs/benchmarks/extract_handcrafted/{method}/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=grow(8000, 0.5),
        runtime=grow(24 * 60),
    shell:
        "{DS} --settings {params.settings:q} extract-handcrafted --method {wildcards.method}"
        " --dataset data/prepared/{wildcards.dataset} --out {output} --log {log}"


_BY_DOT = [(n, d) for n, d in DACO_RUNS if not ranked_by_matches(n)]
_BY_MATCHES = [(n, d) for n, d in DACO_RUNS if ranked_by_matches(n)]


rule score_daco:
    # every DaCo run ranked by its descriptors in one job: Recall@K of a few hundred pairs is cheap, the process
    # start is not
    input:
        [f for d in DACO_DATASETS for f in prepared(d)],
        descriptors=[f"results/descriptors/{n}/{d}.h5" for n, d in _BY_DOT],
    output:
        [f"results/metrics/{n}/{d}.json" for n, d in _BY_DOT],
    params:
        settings=settings("score"),
        runs=score_runs(_BY_DOT),
    log:
        "logs/score_daco.log",
    benchmark:
        "logs/benchmarks/score_daco/score_daco.tsv"
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(30),
    shell:
        "{DS} --settings {params.settings:q} score {params.runs} --log {log}"


rule score_daco_matches:
    # the SIFT method's files, ranked by ratio-test matches of their local features (evaluate.matches): brute-force
    # matching of every image pair, DaCo's "extremely time-consuming" baseline
    input:
        [f for d in DACO_DATASETS for f in prepared(d)],
        descriptors=[f"results/descriptors/{n}/{d}.h5" for n, d in _BY_MATCHES],
    output:
        [f"results/metrics/{n}/{d}.json" for n, d in _BY_MATCHES],
    params:
        settings=settings("score", matches=True),
        runs=score_runs(_BY_MATCHES),
    log:
        "logs/score_daco_matches.log",
    benchmark:
        "logs/benchmarks/score_daco/score_daco_matches.tsv"
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(24 * 60),
    shell:
        "{DS} --settings {params.settings:q} score --matches {params.runs} --log {log}"
