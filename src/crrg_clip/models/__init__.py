"""Model definitions: the RRG region detector and region selector (stages 1 and 2) and the
other stages' models. Each model is saved as a folder (``crrg_clip.modelio``): every model
class has ``save_pretrained(folder, extra)`` and ``from_pretrained(folder, device)``."""
