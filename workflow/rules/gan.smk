# Day->night generators (SPEC section 5): teacher edge detectors where no published weights exist (mini),
# one training job per family, the edge-quality comparison (HED vs HED^N) and Figures 1 and 2.


def gan_setting(family, key):
    """A family's value: its own entry, else the `common` one (as darkside.gan.families.settings_for)."""
    return P["gan"]["families"].get(family, {}).get(key, P["gan"]["common"].get(key))


# detector kind -> the family that trains a night student of it
STUDENTS = {"hed": "hedngan", "rcf": "rcfngan"}
EDGE_FAMILIES = {k: f for k, f in STUDENTS.items() if f in FAMILIES}


def train_gan_inputs(wildcards):
    inputs = {"data": prepared(ROLES["train"]),
              "day": f"data/filtered/{ROLES['train']}/day.txt",
              "night": f"data/filtered/{ROLES['train']}/night.txt"}
    weights = gan_setting(wildcards.family, "detector_weights")
    if gan_setting(wildcards.family, "detector") and weights:
        inputs["detector"] = weights
    return inputs


rule pretrain_edges:
    input:
        prepared(ROLES["train"]),
    output:
        "results/edges/{kind}/teacher.pt",
        "results/edges/{kind}/teacher.json",
    wildcard_constraints:
        kind="hed|rcf",
    params:
        edges=P["edges"],
        gan=P["gan"],
    log:
        "logs/pretrain_edges/{kind}.log",
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=12 * 60,
    shell:
        "{DS} pretrain-edges --kind {wildcards.kind} --dataset data/prepared/{ROLES[train]} --out {output[0]}"
        " --log {log}"


rule train_gan:
    input:
        unpack(train_gan_inputs),
    output:
        "results/gans/{family}/generator.pt",
        "results/gans/{family}/log.json",
        summary="results/metrics/gans/{family}.json",
    params:
        gan=P["gan"],
    log:
        "logs/train_gan/{family}.log",
    threads: 1
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=5 * 24 * 60,
    shell:
        "{DS} train-gan --family {wildcards.family} --dataset data/prepared/{ROLES[train]}"
        " --lists data/filtered/{ROLES[train]} --out-dir results/gans/{wildcards.family}"
        " --summary {output.summary} --log {log}"


rule edge_quality:
    input:
        prepared(ROLES["tokyo"]),
        teacher=lambda wc: gan_setting(STUDENTS[wc.kind], "detector_weights"),
        generator=lambda wc: f"results/gans/{STUDENTS[wc.kind]}/generator.pt",
    output:
        "results/metrics/edges/{kind}.json",
    wildcard_constraints:
        kind="hed|rcf",
    params:
        edges=P["edges"],
        run_dir=lambda wc: f"results/gans/{STUDENTS[wc.kind]}",
    log:
        "logs/edge_quality/{kind}.log",
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    shell:
        "{DS} edge-quality --kind {wildcards.kind} --teacher {input.teacher}"
        " --run-dir {params.run_dir} --dataset data/prepared/{ROLES[tokyo]}"
        " --out {output} --log {log}"


rule figure_translations:
    input:
        prepared(ROLES["tokyo"]),
        generators=expand("results/gans/{family}/generator.pt", family=FAMILIES),
    output:
        "results/figures/translations.png",
    params:
        item_args=" ".join(f"--item {f}=results/gans/{f}/generator.pt" for f in FAMILIES),
    log:
        "logs/figures/translations.log",
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "{DS} figure translations --dataset data/prepared/{ROLES[tokyo]} {params.item_args} --out {output} --log {log}"


rule figure_edges:
    input:
        prepared(ROLES["tokyo"]),
        teachers=[gan_setting(f, "detector_weights") for f in EDGE_FAMILIES.values()],
        generators=[f"results/gans/{f}/generator.pt" for f in EDGE_FAMILIES.values()],
    output:
        "results/figures/edges.png",
    params:
        item_args=" ".join(f"--item {k.upper()}={gan_setting(f, 'detector_weights')} --item {k.upper()}^N=results/gans/{f}"
                       for k, f in EDGE_FAMILIES.items()),
    log:
        "logs/figures/edges.log",
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "{DS} figure edges --dataset data/prepared/{ROLES[tokyo]} {params.item_args} --out {output} --log {log}"
