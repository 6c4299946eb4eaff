"""One evaluation code for every system: prediction-file validation, NLG and
classification metrics, region metrics, bootstrap CIs and seed summaries."""

from .predictions import PredictionFileError

__all__ = ["PredictionFileError"]
