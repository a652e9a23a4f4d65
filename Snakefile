# darkside: the whole suite as one DAG. `snakemake --cores 2` runs the active preset of params.yaml
# (default: mini, the synthetic benchmark on a CPU); `snakemake --profile slurm` submits to SLURM.
# Every rule calls the `darkside` CLI, so any job can be run by hand; dvc.yaml mirrors these rules.
# `snakemake --report results/report.html` then gathers every table, figure, training curve and sample grid.

from snakemake.utils import min_version

min_version("8.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/gan.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/localize.smk"
include: "workflow/rules/daco.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/report.smk"


ALL_TARGETS = TABLES + [HEADLINE] + FIGURES + DAY_NIGHT + GAN_TARGETS + CHANCE + REPORT_PAGES


rule all:
    default_target: True
    input:
        ALL_TARGETS,
