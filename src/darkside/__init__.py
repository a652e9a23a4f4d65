"""darkside: reproducible suite for Dark Side Augmentation (day->night augmentation for retrieval)."""

__version__ = "0.1.0"
