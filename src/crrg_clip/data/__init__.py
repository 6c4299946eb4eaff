"""Ingest, join, QC, splits and image caches for the four source datasets."""
