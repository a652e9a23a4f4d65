"""Retrieval, recall and localization metrics from descriptor files and ground truth (numpy only)."""
