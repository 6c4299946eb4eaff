"""The built-in synthetic dataset: the four source datasets in their real layouts.

``write_synthetic_dataset`` writes MIMIC-CXR reports, MIMIC-CXR-JPG, Chest ImaGenome
(silver) and RSNA Pneumonia in the layouts of docs/FORMATS.md, with learnable image
evidence for each report sentence, planted faults, and a manifest of what it wrote.
"""

from .writer import write_synthetic_dataset

__all__ = ["write_synthetic_dataset"]
