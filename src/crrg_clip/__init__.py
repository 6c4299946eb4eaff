"""crrg-clip: a reproducible workflow for CRRG-CLIP (region-guided report generation + CLIP)."""

__version__ = "0.1.0"
