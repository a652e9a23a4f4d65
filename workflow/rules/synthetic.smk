# The embedded synthetic day/night benchmark (mini preset): one job writes every synth-* dataset it is asked for.

SYNTH_DATASETS = list(P["data"]["synthetic"]["datasets"])


rule prepare_synthetic:
    output:
        [f for d in SYNTH_DATASETS for f in prepared(d)],
        calibration="results/metrics/synthetic-calibration.json",
    params:
        settings=settings("synth"),
    log:
        "logs/prepare_synthetic.log",
    benchmark:
        "logs/benchmarks/prepare_synthetic/prepare_synthetic.tsv"
    threads: 1
    resources:
        mem_mb=grow(2000, 0.5),
        runtime=grow(10),
    shell:
        "{DS} --settings {params.settings:q} synth --out data/prepared --calibration {output.calibration} --log {log}"


rule contact_sheet:
    input:
        prepared(ROLES["tokyo"]),
    output:
        report("results/figures/synthetic-contact-sheet.png", category="Benchmark", subcategory="Figures",
               labels={"figure": "the same views at day, sunset and night"}),
    log:
        "logs/contact_sheet.log",
    benchmark:
        "logs/benchmarks/contact_sheet/contact_sheet.tsv"
    resources:
        mem_mb=grow(1000, 0.5),
        runtime=grow(5),
    shell:
        "{DS} contact-sheet --dataset data/prepared/{ROLES[tokyo]} --out {output} --log {log}"
