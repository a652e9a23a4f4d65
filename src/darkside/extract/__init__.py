"""Descriptor extraction to HDF5 (multi-scale GeM, learned whitening) and the HDF5 layout."""
