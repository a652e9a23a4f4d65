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


class WorkflowError(DarksideError, ValueError):
    """The Snakemake rules and their DVC mirror disagree; the message names the rule and parameter."""
