# Descriptors (HDF5) and scores (JSON) per model and test dataset. How a model's images are prepared
# (CLAHE or not) is read from its model file, not from its name.


def extract_inputs(wildcards):
    # a test-time translation model extracts with another model's weights and a night->day generator
    source = weights_model(wildcards.model)
    inputs = {"model": f"results/models/{source}/model.pt"}
    if not has_local(wildcards.model):  # HOW has no learned whitening: its reduction is its whitening, ASMK ranks
        inputs["whitening"] = f"results/models/{source}/whitening.npz"
    if (family := recipe(recipe_of(wildcards.model)).night_to_day) is not None:
        inputs["night_to_day"] = f"results/gans/{family}/generator.pt"
    return inputs


def night_to_day_option(wildcards, input):
    return f" --night-to-day {input.night_to_day}" if "night_to_day" in input.keys() else ""


def whitening_option(wildcards, input):
    return f" --whitening {input.whitening}" if "whitening" in input.keys() else ""


rule extract:
    # one job per model for all its test datasets: the network (and torch) is loaded once
    input:
        [f for d in TEST_DATASETS for f in prepared(d)],
        unpack(extract_inputs),
    output:
        [f"results/descriptors/{{model}}/{d}.h5" for d in TEST_DATASETS],
    wildcard_constraints:
        model=NETWORK_MODEL,  # an ensemble's descriptors are its parts' (rule ensemble), not a network's
    params:
        settings=lambda wc: settings("extract", **({"local": True} if has_local(wc.model) else {})),
        datasets=lambda wc: " ".join(f"--dataset data/prepared/{d} --out results/descriptors/{wc.model}/{d}.h5"
                                     for d in TEST_DATASETS),
        night_to_day=night_to_day_option,
        local=lambda wc: " --local" if has_local(wc.model) else "",
        whitening=whitening_option,
    log:
        "logs/extract/{model}.log",
    benchmark:
        "logs/benchmarks/extract/{model}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(16000, 0.5),
        runtime=grow(8 * 60),
    shell:
        "{DS} --settings {params.settings:q} extract --model {input.model}{params.whitening}"
        "{params.night_to_day}{params.local} {params.datasets} --threads {threads} --log {log}"


rule codebook:
    # the ASMK vocabulary of a model with local descriptors (HOW): k-means on its local descriptors of the first
    # training images, one per model; the paper's 65,536 words on ~20 M descriptors are ~2e15 multiply-adds of
    # numpy matrix products: hours on the cluster profile's 8 threads
    input:
        prepared(ROLES["train"]),
        model="results/models/{model}/model.pt",
    output:
        "results/models/{model}/codebook.h5",
    wildcard_constraints:
        model=NETWORK_MODEL,
    params:
        settings=settings("codebook"),
    log:
        "logs/codebook/{model}.log",
    benchmark:
        "logs/benchmarks/codebook/{model}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(32000, 0.5),
        runtime=grow(24 * 60),
    shell:
        "{DS} --settings {params.settings:q} codebook --model {input.model} --dataset data/prepared/{ROLES[train]}"
        " --out {output} --log {log}"


def ensemble_files(model):
    # per test dataset: the parts' descriptor files, then the ensemble's
    return [([f"results/descriptors/{p}/{d}.h5" for p in ensemble_parts(model)], f"results/descriptors/{model}/{d}.h5")
            for d in TEST_DATASETS]


rule ensemble:
    # a `<backbone>-<a>+<b>` model: its parts' descriptors combined, per test dataset (no training, no network);
    # the score rule then scores it like any model
    input:
        lambda wc: [part for parts, _ in ensemble_files(wc.model) for part in parts],
    output:
        [f"results/descriptors/{{model}}/{d}.h5" for d in TEST_DATASETS],
    wildcard_constraints:
        model=ENSEMBLE_MODEL,
    params:
        groups=lambda wc: " ".join(" ".join(f"--part {p}" for p in parts) + f" --out {out}"
                                   for parts, out in ensemble_files(wc.model)),
    log:
        "logs/ensemble/{model}.log",
    benchmark:
        "logs/benchmarks/ensemble/{model}.tsv"
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(10),
    shell:
        "{DS} ensemble {params.groups} --log {log}"


def score_inputs(wildcards):
    # a model with local descriptors is ranked by ASMK with its own codebook
    return {"codebook": f"results/models/{wildcards.model}/codebook.h5"} if has_local(wildcards.model) else {}


def codebook_option(wildcards, input):
    return f" --codebook {input.codebook}" if "codebook" in input.keys() else ""


rule score:
    # one job per model for all its test datasets (scoring is cheap; the process start is not)
    input:
        [f for d in TEST_DATASETS for f in prepared(d)],
        unpack(score_inputs),
        descriptors=[f"results/descriptors/{{model}}/{d}.h5" for d in TEST_DATASETS],
    output:
        metrics=[f"results/metrics/{{model}}/{d}.json" for d in TEST_DATASETS],
        pairs=[directory(f"results/pairs/{{model}}/{d}") for d in TEST_DATASETS],
    params:
        settings=lambda wc: settings("score", **({"codebook": True} if has_local(wc.model) else {})),
        datasets=lambda wc: " ".join(
            f"--descriptors results/descriptors/{wc.model}/{d}.h5 --dataset data/prepared/{d}"
            f" --out results/metrics/{wc.model}/{d}.json --pairs-dir results/pairs/{wc.model}/{d}"
            for d in TEST_DATASETS),
        codebook=codebook_option,
    log:
        "logs/score/{model}.log",
    benchmark:
        "logs/benchmarks/score/{model}.tsv"
    resources:
        mem_mb=grow(8000, 0.5),
        runtime=grow(60),
    shell:
        "{DS} --settings {params.settings:q} score{params.codebook} {params.datasets} --log {log}"


rule chance:
    # the floor every number of a test dataset is read against: random unit descriptors through the same scorer
    input:
        [f for d in TEST_DATASETS for f in prepared(d)],
    output:
        [f"results/metrics/chance/{d}.json" for d in TEST_DATASETS],
    params:
        settings=settings("chance"),
        datasets=" ".join(f"--dataset data/prepared/{d} --out results/metrics/chance/{d}.json" for d in TEST_DATASETS),
    log:
        "logs/chance.log",
    benchmark:
        "logs/benchmarks/chance/chance.tsv"
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(30),
    shell:
        "{DS} --settings {params.settings:q} chance {params.datasets} --log {log}"
