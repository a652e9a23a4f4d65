"""Where the suite's time goes: the per-job ``benchmark:`` files of the DAG, summed per rule.

Every rule writes Snakemake's benchmark TSV to ``logs/benchmarks/<rule>/<job>.tsv`` (one header
line, one line per measured run: seconds, max RSS, CPU seconds, ...). :func:`read_benchmarks`
reads them, :func:`per_rule` sums them per rule and :func:`format_profile` prints the table
``darkside profile`` shows. The wall span (first job's start to last job's end, from each file's
time stamp minus its duration) is the suite's wall time when all jobs ran in one invocation;
with two cores it is about half the summed job time.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from darkside.errors import DarksideError


@dataclass(frozen=True)
class JobTime:
    """One job's benchmark line."""

    rule: str
    job: str
    seconds: float
    cpu_seconds: float
    max_rss_mb: float
    end: float  # time stamp of the benchmark file (the job's end), seconds since the epoch


@dataclass(frozen=True)
class RuleTime:
    """Jobs of one rule: count, summed wall and CPU seconds, share of the suite's summed job time."""

    rule: str
    jobs: int
    seconds: float
    cpu_seconds: float
    share: float
    max_rss_mb: float


def _number(value: str | None) -> float:
    # Snakemake writes "NA" where psutil could not measure (very short jobs)
    try:
        x = float(value) if value is not None else math.nan
    except ValueError:
        return math.nan
    return x


def read_benchmarks(root: Path) -> list[JobTime]:
    """Every ``<root>/<rule>/<job>.tsv`` (the last measured run of each job), sorted by rule and job.

    A rule with several wildcards nests its files (``train_daco/<learner>/<dataset>.tsv``): the rule is the first
    folder under ``root`` and the job the rest of the path, without the suffix."""
    root = Path(root)
    if not root.is_dir():
        raise DarksideError(f"{root}: no benchmark folder (run the suite first: snakemake --cores 2)")
    jobs = []
    for path in sorted(p for p in root.rglob("*.tsv") if p.parent != root):
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not rows or "s" not in rows[-1]:
            raise DarksideError(f"{path}: not a Snakemake benchmark file (no 's' column)")
        row = rows[-1]
        seconds = _number(row.get("s"))
        if math.isnan(seconds):
            raise DarksideError(f"{path}: unreadable duration {row.get('s')!r}")
        rule, *job = path.relative_to(root).with_suffix("").parts
        jobs.append(JobTime(rule=rule, job="/".join(job), seconds=seconds,
                            cpu_seconds=_number(row.get("cpu_time")), max_rss_mb=_number(row.get("max_rss")),
                            end=path.stat().st_mtime))
    return jobs


def per_rule(jobs: list[JobTime]) -> list[RuleTime]:
    """One row per rule, the largest summed time first; ``share`` in percent of all jobs' time."""
    total = sum(j.seconds for j in jobs)
    rules: dict[str, list[JobTime]] = {}
    for j in jobs:
        rules.setdefault(j.rule, []).append(j)
    rows = [RuleTime(rule=r, jobs=len(js), seconds=sum(j.seconds for j in js),
                     cpu_seconds=sum(j.cpu_seconds for j in js if not math.isnan(j.cpu_seconds)),
                     share=100.0 * sum(j.seconds for j in js) / total if total > 0 else 0.0,
                     max_rss_mb=max((j.max_rss_mb for j in js if not math.isnan(j.max_rss_mb)), default=math.nan))
            for r, js in rules.items()]
    return sorted(rows, key=lambda r: (-r.seconds, r.rule))


def wall_span(jobs: list[JobTime]) -> float:
    """Seconds from the earliest job start to the latest job end (0 without jobs)."""
    if not jobs:
        return 0.0
    return max(j.end for j in jobs) - min(j.end - j.seconds for j in jobs)


def format_profile(jobs: list[JobTime]) -> str:
    """The plain-text table ``darkside profile`` prints."""
    rows = per_rule(jobs)
    width = max([len("rule"), *(len(r.rule) for r in rows)])
    lines = [f"{'rule':<{width}}  {'jobs':>4}  {'total s':>8}  {'share':>6}  {'cpu s':>8}  {'max MB':>7}"]
    for r in rows:
        lines.append(f"{r.rule:<{width}}  {r.jobs:>4}  {r.seconds:>8.1f}  {r.share:>5.1f}%  {r.cpu_seconds:>8.1f}  "
                     f"{r.max_rss_mb:>7.0f}")
    total = sum(r.seconds for r in rows)
    cpu = sum(r.cpu_seconds for r in rows)
    lines.append(f"{'all':<{width}}  {len(jobs):>4}  {total:>8.1f}  {100.0 if rows else 0.0:>5.1f}%  {cpu:>8.1f}")
    lines.append(f"wall span (first start to last end): {wall_span(jobs):.1f} s")
    return "\n".join(lines)
