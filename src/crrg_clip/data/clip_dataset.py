"""R-CLIP training texts and the two-image / two-text views of each training image.

Texts (``results/rclip/texts_{text}.parquet``: ``study_id, dicom_id, text, split``):

- ``radiologist``: the FINDINGS of the subsample's images; images without FINDINGS are
  excluded and recorded (``dataset, item_id, reason``).
- ``generated``: the RRG's generated report for each of those images; empty reports are
  excluded and recorded.

Besides the training split, the texts of the subsample's ``valid`` split are included (column
``split``) so the back-translation rule also covers them and the validation loss uses the
same four views as training.

Items (``rclip.unit``): one per image with a text (``image``), or one per study
(``study``, the paper's code: CXR-CLIP's MIMIC table has a row per study with its images as
views, so two images of one study are never in-batch negatives of each other).

Views of item ``i`` (PROTOCOL.md): ``I1`` = the image (``study``: one of the study's images
with a text, drawn per epoch), ``I2`` = another image of the same study (any view, taken
from the image cache, which holds every view of every subsample study) or, when the study
has only one image, a second augmentation of the same image; ``T1``/``T2`` = ``I1``'s text
and its back-translation in a random order. All randomness of an
item comes from a generator seeded by ``(seed, epoch, index)``, so an epoch's batches are
the same whichever worker builds them and whether or not the run was resumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..rng import item_generator, uniform as _uniform
from .exclusions import ExclusionLog
from .normalize import Normalization
from .region_dataset import AugmentConfig as Augment  # the same MIMIC augmentation (PROTOCOL.md)

TEXT_COLUMNS = ["study_id", "dicom_id", "text", "split"]


def _dataset_name(text: str) -> str:
    return f"rclip-texts-{text}"


def radiologist_texts(images: pd.DataFrame, subsample: pd.DataFrame, splits: Sequence[str]
                      ) -> tuple[pd.DataFrame, ExclusionLog]:
    """FINDINGS of the subsample's images in ``splits``; images without FINDINGS are recorded."""
    wanted = subsample.loc[subsample["split"].isin(splits), ["dicom_id", "split"]]
    merged = wanted.merge(images[["dicom_id", "study_id", "findings", "has_findings"]], on="dicom_id", how="left")
    log = ExclusionLog()
    dataset = _dataset_name("radiologist")
    missing = merged["study_id"].isna()
    for dicom_id in merged.loc[missing, "dicom_id"]:
        log.add(dataset, dicom_id, "not_in_images_table")
    merged = merged[~missing]
    text = merged["findings"].fillna("").astype(str).str.strip()
    empty = ~merged["has_findings"].fillna(False).astype(bool) | (text == "")
    for dicom_id in merged.loc[empty, "dicom_id"]:
        log.add(dataset, dicom_id, "no_findings")
    kept = merged.loc[~empty].assign(text=text[~empty])
    return _finish(kept), log


def generated_texts(reports: pd.DataFrame, subsample: pd.DataFrame, splits: Sequence[str]
                    ) -> tuple[pd.DataFrame, ExclusionLog]:
    """The RRG's report for each subsample image in ``splits`` (``reports``: dicom_id, report)."""
    wanted = subsample.loc[subsample["split"].isin(splits), ["dicom_id", "study_id", "split"]]
    merged = wanted.merge(reports[["dicom_id", "report"]], on="dicom_id", how="left")
    log = ExclusionLog()
    dataset = _dataset_name("generated")
    text = merged["report"].fillna("").astype(str).str.strip()
    for dicom_id in merged.loc[merged["report"].isna(), "dicom_id"]:
        log.add(dataset, dicom_id, "no_generated_report")
    empty = merged["report"].notna() & (text == "")
    for dicom_id in merged.loc[empty, "dicom_id"]:
        log.add(dataset, dicom_id, "empty_generated_report")
    keep = text != ""
    return _finish(merged.loc[keep].assign(text=text[keep])), log


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[TEXT_COLUMNS].copy()
    out["study_id"] = out["study_id"].astype("int64")
    out["dicom_id"] = out["dicom_id"].astype(str)
    return out.sort_values(["split", "study_id", "dicom_id"], kind="stable").reset_index(drop=True)


UNITS = ("image", "study")


@dataclass
class CLIPItems:
    """One entry per item: the candidate I1 images (cache rows with their texts) and its study's images."""

    rows: list[list[int]]  # cache rows that may be I1 (one for the image unit)
    texts: list[list[str]]  # the text of each of those rows
    back_translations: list[list[str]]
    study_rows: list[list[int]]  # every cache row of the item's study (the pool for I2)
    dicom_ids: list[list[str]]

    def __len__(self) -> int:
        return len(self.rows)

    def others(self, i: int, row: int) -> list[int]:
        """Cache rows of item ``i``'s study other than ``row`` (sorted)."""
        return [r for r in self.study_rows[i] if r != row]

    def n_with_second_image(self) -> int:
        return sum(1 for study in self.study_rows if len(study) > 1)


def build_items(texts: pd.DataFrame, back_translations: pd.DataFrame, cache_index: pd.DataFrame,
                *, split: str, unit: str = "image", texts_path: str = "texts", bt_path: str = "back-translations",
                index_path: str = "cache index") -> CLIPItems:
    """Join the texts of ``split`` with their back-translations and the image cache, per ``unit``."""
    if unit not in UNITS:
        raise ValueError(f"rclip.unit {unit!r}: expected one of {UNITS}")
    part = texts[texts["split"] == split]
    if part.empty:
        raise ValueError(f"{texts_path}: no texts for split {split!r}")
    bt = back_translations.drop_duplicates("text").set_index("text")["back_translation"]
    missing = sorted(set(part["text"]) - set(bt.index))
    if missing:
        raise ValueError(f"{bt_path}: no back-translation for {len(missing)} text(s) of {texts_path}, "
                         f"e.g. {missing[0][:80]!r}; rerun back_translate")
    index = cache_index.set_index("dicom_id")
    absent = sorted(set(part["dicom_id"]) - set(index.index))
    if absent:
        raise ValueError(f"{index_path}: {len(absent)} image(s) of {texts_path} are not in the image cache, "
                         f"e.g. {absent[0]}")
    by_study: dict[int, list[int]] = {}
    for study, row in zip(cache_index["study_id"].astype("int64"), cache_index["row"].astype("int64")):
        by_study.setdefault(int(study), []).append(int(row))
    rows = index.loc[part["dicom_id"], "row"].astype("int64").tolist()
    back = bt.loc[part["text"]].fillna("").astype(str).tolist()
    # an empty back-translation would be a degenerate view: the original text takes its place
    back = [b if b.strip() else t for b, t in zip(back, part["text"])]
    studies = part["study_id"].astype("int64").tolist()
    # image unit: each image its own item; study unit: the study's images (in text order) one item
    keys = list(range(len(part))) if unit == "image" else studies
    groups: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key, []).append(position)
    members = list(groups.values())
    text, dicom = part["text"].tolist(), part["dicom_id"].tolist()
    return CLIPItems(rows=[[rows[k] for k in m] for m in members],
                     texts=[[text[k] for k in m] for m in members],
                     back_translations=[[back[k] for k in m] for m in members],
                     study_rows=[sorted(by_study.get(studies[m[0]], [])) for m in members],
                     dicom_ids=[[dicom[k] for k in m] for m in members])


def to_float(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (S, S) -> float (1, size, size) in [0, 1]."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).div_(255.0)[None]  # (1, S, S)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = TF.resize(x, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return x


def augment_image(x: torch.Tensor, aug: Augment, g: torch.Generator) -> torch.Tensor:
    """One random augmentation of a float (1, H, W) image in [0, 1]."""
    size = x.shape[-1]
    angle = _uniform(g, -aug.rotate_degrees, aug.rotate_degrees)
    tx = round(_uniform(g, -aug.translate_fraction, aug.translate_fraction) * size)
    ty = round(_uniform(g, -aug.translate_fraction, aug.translate_fraction) * size)
    if angle or tx or ty:
        x = TF.affine(x, angle=angle, translate=[tx, ty], scale=1.0, shear=[0.0, 0.0],
                      interpolation=InterpolationMode.BILINEAR)
    x = x * _uniform(g, 1 - aug.brightness, 1 + aug.brightness)
    mean = x.mean()
    x = (x - mean) * _uniform(g, 1 - aug.contrast, 1 + aug.contrast) + mean
    if aug.noise_std > 0:
        x = x + aug.noise_std * torch.randn(x.shape, generator=g)
    return x.clamp_(0.0, 1.0)


class CLIPViews(torch.utils.data.Dataset):
    """Item ``i`` -> (I1 (C, S, S), I2 (C, S, S), T1, T2) (C from ``normalize``); call ``set_epoch`` before each epoch.

    ``train=False`` gives the validation views: no augmentation, ``I2`` = the study's first
    other image (or the image itself), ``T1`` = text, ``T2`` = back-translation.
    """

    def __init__(self, items: CLIPItems, images: np.ndarray, *, image_size: int, normalize: Normalization,
                 augment: Augment | None, seed: int, train: bool):
        self.items = items
        self.images = images
        self.image_size = image_size
        self.normalize = normalize
        self.augment = augment or Augment()
        self.seed = seed
        self.train = train
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def _image(self, row: int) -> torch.Tensor:
        return to_float(self.images[row], self.image_size)

    def __getitem__(self, i: int):
        items = self.items
        if not self.train:
            row, others = items.rows[i][0], items.others(i, items.rows[i][0])
            t1, t2 = items.texts[i][0], items.back_translations[i][0]
            x1 = self._image(row)
            x2 = self._image(others[0]) if others else x1.clone()
        else:
            g = item_generator(self.seed, self.epoch, i)
            # a study item draws its I1 first; an image item has one candidate and draws nothing
            k = int(torch.randint(len(items.rows[i]), (), generator=g)) if len(items.rows[i]) > 1 else 0
            row, others = items.rows[i][k], items.others(i, items.rows[i][k])
            t1, t2 = items.texts[i][k], items.back_translations[i][k]
            if others:
                other = others[int(torch.randint(len(others), (), generator=g))]
            else:
                other = row  # a second augmentation of the same image
            if bool(torch.rand((), generator=g) < 0.5):
                t1, t2 = t2, t1
            x1 = augment_image(self._image(row), self.augment, g)
            x2 = augment_image(self._image(other), self.augment, g)
        return self.normalize(x1), self.normalize(x2), t1, t2


class TextCollate:
    """Stack images and tokenise both text views (padded to the batch's longest)."""

    def __init__(self, tokenizer, max_tokens: int):
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens

    def _tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def __call__(self, batch):
        x1, x2, t1, t2 = zip(*batch)
        return torch.stack(x1), torch.stack(x2), self._tokens(list(t1)), self._tokens(list(t2))


def augment_from_config(values: Mapping | None) -> Augment:
    values = dict(values or {})
    return Augment(**{k: float(v) for k, v in values.items()})
