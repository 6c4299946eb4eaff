"""Use what was trained on new images: ``crrg-clip report`` (RRG) and ``crrg-clip classify``
(RSNA probe). Only model folders are read; images get exactly the image cache's
preprocessing (``crrg_clip.data.images``), so a model sees a new radiograph as it saw its
training images.

- ``inputs``: expand IMAGE arguments (files, directories, globs) and decode them.
- ``preprocess``: the cache size, JPEG draft flag and normalisation a model folder implies.
- ``rrg``: detector -> selector -> generator on a batch, through ``crrg_clip.generate``.
- ``outputs``: per image report text, regions JSON and annotated PNG.
- ``probe``: the pneumonia probability of a trained probe.
"""
