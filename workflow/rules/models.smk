# Models: backbone weights, off-the-shelf initialisation, fine-tuning and the learned whitening of each model.


def init_weights(wildcards):
    weights = P["backbones"][wildcards.backbone]["weights"]
    return [weights] if weights else []


rule filter_day_night:
    input:
        prepared("{dataset}"),
    output:
        day="data/filtered/{dataset}/day.txt",
        night="data/filtered/{dataset}/night.txt",
        domains="data/filtered/{dataset}/domains.tsv",
        report="results/metrics/day_night/{dataset}.json",
    params:
        settings=settings("filter-day-night"),
    log:
        "logs/filter_day_night/{dataset}.log",
    benchmark:
        "logs/benchmarks/filter_day_night/{dataset}.tsv"
    resources:
        mem_mb=grow(2000, 0.5),
        runtime=grow(60),
    shell:
        "{DS} --settings {params.settings:q} filter-day-night --dataset data/prepared/{wildcards.dataset}"
        " --out data/filtered/{wildcards.dataset} --report {output.report} --log {log}"


rule download_weights:
    output:
        "data/weights/{weights}",
    wildcard_constraints:
        weights=r"[A-Za-z0-9_.-]+\.pth",
    localrule: True
    params:
        settings=settings("download-weights"),
    log:
        "logs/download_weights/{weights}.log",
    benchmark:
        "logs/benchmarks/download_weights/{weights}.tsv"
    retries: 1
    resources:  # a local rule (internet): it runs beside Snakemake for as long as the transfer takes
        mem_mb=1000,
    shell:
        "{DS} --settings {params.settings:q} download-weights --out {output} --log {log}"


rule pretrain_backbone:
    # only where no published weights can be had (the mini preset): the ImageNet stand-in
    input:
        prepared(ROLES["whiten"]),
    output:
        "results/backbones/{backbone}/pretrained.pt",
        "results/backbones/{backbone}/pretrained.json",
    params:
        settings=lambda wc: settings("pretrain-backbone", backbone=wc.backbone),
    log:
        "logs/pretrain_backbone/{backbone}.log",
    benchmark:
        "logs/benchmarks/pretrain_backbone/{backbone}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(8000, 0.5),
        runtime=grow(24 * 60),
    shell:
        "{DS} --settings {params.settings:q} pretrain-backbone --backbone {wildcards.backbone}"
        " --dataset data/prepared/{ROLES[whiten]} --out {output[0]} --log {log}"


rule init_model:
    input:
        init_weights,
    output:
        "results/models/{backbone}-offtheshelf/model.pt",
    params:
        settings=lambda wc: settings("init-model", backbone=wc.backbone),
    log:
        "logs/init_model/{backbone}.log",
    benchmark:
        "logs/benchmarks/init_model/{backbone}.tsv"
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(10),
    shell:
        "{DS} --settings {params.settings:q} init-model --backbone {wildcards.backbone} --out {output} --log {log}"


rule content_model:
    # a generator's content embedding as the model (MDUIT's z_s, recipe `<translator>-content`): no training, read
    # from the generator file of the recipe's typed `content_of` (a family, a variant, a published generator)
    input:
        generator=lambda wc: f"results/gans/{recipe(wc.recipe).content_of}/generator.pt",
    output:
        "results/models/{backbone}-{recipe}/model.pt",
    wildcard_constraints:
        recipe="|".join(re.escape(r) for r in CONTENT_RECIPES) or "(?!)",
    params:
        settings=lambda wc: settings("init-model", backbone=wc.backbone, recipe=wc.recipe),
    log:
        "logs/content_model/{backbone}-{recipe}.log",
    benchmark:
        "logs/benchmarks/content_model/{backbone}-{recipe}.tsv"
    resources:
        mem_mb=grow(4000, 0.5),
        runtime=grow(10),
    shell:
        "{DS} --settings {params.settings:q} init-model --backbone {wildcards.backbone} --recipe {wildcards.recipe}"
        " --generator {input.generator} --out {output} --log {log}"


rule whiten:
    input:
        prepared(ROLES["whiten"]),
        model="results/models/{model}/model.pt",
    output:
        "results/models/{model}/whitening.npz",
    params:
        settings=settings("whiten"),
    log:
        "logs/whiten/{model}.log",
    benchmark:
        "logs/benchmarks/whiten/{model}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(16000, 0.5),
        runtime=grow(240),
    shell:
        "{DS} --settings {params.settings:q} whiten --model {input.model} --dataset data/prepared/{ROLES[whiten]}"
        " --out {output} --threads {threads} --log {log}"


def training_dataset(r):
    # the N/D recipes need the day pairs and the N/D pairs in one dataset (paper: sfm120k-nd)
    return ROLES["train_day_night"] if r.day_night_pairs else ROLES["train"]


def finetune_inputs(wildcards):
    r = recipe(base_recipe(wildcards.recipe))
    inputs = {"init": f"results/models/{wildcards.backbone}-offtheshelf/model.pt",
              "data": prepared(training_dataset(r))}
    if r.generator in TRANSLATORS:  # a trained family or an imported published generator
        inputs["generator"] = f"results/gans/{r.generator}/generator.pt"
    # the file a network's stem reads as fine-tuning starts (EdgeMAC: its detector's weights, networks.<name>)
    network = (P.get("networks") or {}).get(r.network) or {}
    if network.get("weights"):
        inputs["network"] = network["weights"]
    return inputs


def generator_option(wildcards, input):
    # its own leading space: an empty option must not leave a double space, which DVC's folded YAML command
    # loses, so dvc status would call the stage changed after dvc repro
    return f" --generator {input.generator}" if "generator" in input.keys() else ""


rule finetune:
    input:
        unpack(finetune_inputs),
    # the log and the curve (image, and data for `dvc plots`) are written at the end from the checkpoint's log;
    # checkpoint.pt is not declared: Snakemake deletes a failed (preempted) job's outputs before the rerun, and
    # the resumed run starts from it
    output:
        "results/models/{backbone}-{recipe}/model.pt",
        "results/models/{backbone}-{recipe}/training_log.json",
        "results/models/{backbone}-{recipe}/training_curve.csv",
        report("results/models/{backbone}-{recipe}/training_curve.png", category="Retrieval",
               subcategory="Training curves", labels={"model": "{backbone}-{recipe}"}),
    # not a model without fine-tuning (rules init_model, content_model); Snakemake embeds the constraint in the whole
    # path's pattern, so the excluded names end where no recipe character follows (`$` would be the path's end)
    wildcard_constraints:
        recipe=f"(?!(?:{NOT_FINE_TUNED})(?![a-z0-9-]))[a-z0-9][a-z0-9-]*(\\.seed[0-9]+)?",
    params:
        settings=lambda wc: settings("finetune", backbone=wc.backbone, recipe=base_recipe(wc.recipe)),
        generator=generator_option,
        base_recipe=lambda wc: base_recipe(wc.recipe),
        seed=lambda wc: seed_of(wc.recipe),
        dataset=lambda wc: training_dataset(recipe(base_recipe(wc.recipe))),
    log:
        "logs/finetune/{backbone}-{recipe}.log",
    benchmark:
        "logs/benchmarks/finetune/{backbone}-{recipe}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=grow(32000, 0.5),
        runtime=grow(24 * 60),
    shell:
        "{DS} --settings {params.settings:q} finetune --backbone {wildcards.backbone} --recipe {params.base_recipe}"
        " --seed {params.seed} --init {input.init} --dataset data/prepared/{params.dataset}"
        " --out-dir results/models/{wildcards.backbone}-{wildcards.recipe}{params.generator} --log {log}"
