"""User-facing errors: one line that says what went wrong and where."""


class DarksideError(Exception):
    """An error caused by bad input (file, parameter, dataset), reported as a single line by the CLI."""


class ConfigError(DarksideError):
    """params.yaml (or a recipe) does not match the schema; the message names the key path."""


class ManifestError(DarksideError):
    """A manifest or its ground truth is malformed; the message names the file and the row or key."""


class ImageError(DarksideError):
    """An image is missing, truncated or cannot be decoded; the message names the file."""


class MetricsError(DarksideError, ValueError):
    """Metric files that cannot be combined (seed runs or recipes scored different queries); the
    message names the files."""


#: exit status of a preempted run (128 + SIGTERM): never 0, so the workflow does not take the job as done
PREEMPTED_STATUS = 143


class Preempted(BaseException):
    """SIGTERM arrived (SLURM preemption): the run stops at once; the last complete checkpoint is what
    the requeued job resumes from. A BaseException, so that no ``except Exception`` swallows it."""
