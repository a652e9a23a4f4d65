"""Datasets: manifests and ground truth, images, the synthetic benchmark, day/night filtering.

This layer knows no models: it reads and writes files in the manifest schema.
"""
