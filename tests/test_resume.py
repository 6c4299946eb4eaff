"""Kill-and-resume: a run stopped after epoch 1 and started again ends with the same weights as
an uninterrupted run (CPU), for both the detector and the selector trainers."""

import pytest
import torch

from crrg_clip.data.region_dataset import AugmentConfig, Normalize, load_detector_data
from crrg_clip.models.detector import RegionDetector
from crrg_clip.runtime import seed_everything
from crrg_clip.train.detector import DetectorTrainer
from crrg_clip.train.loop import Schedule
from crrg_clip.train.selector import SelectorTrainer

from test_detector import make_synthetic_cache, tiny_config
from test_selector import make_selector, synthetic_selector_data


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Killed(RuntimeError):
    pass


def killing(train_epoch, after_epoch):
    def wrapped(epoch):
        if epoch > after_epoch:
            raise Killed(f"simulated kill before epoch {epoch}")
        return train_epoch(epoch)
    return wrapped


def run(make_trainer, ckpt, metrics, kill_after=None):
    trainer = make_trainer()
    if kill_after is not None:
        trainer.train_epoch = killing(trainer.train_epoch, kill_after)
    trainer.fit(ckpt, metrics)
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}, trainer


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def kill_and_resume(make_trainer, tmp_path):
    """(uninterrupted weights, killed-then-resumed weights); both runs' metrics files compared."""
    reference, _ = run(make_trainer, tmp_path / "ref", tmp_path / "ref.tsv")
    with pytest.raises(Killed):
        run(make_trainer, tmp_path / "run", tmp_path / "run.tsv", kill_after=0)
    torch.manual_seed(12345)  # a new process starts from a different RNG state
    resumed, _ = run(make_trainer, tmp_path / "run", tmp_path / "run.tsv")
    assert (tmp_path / "ref.tsv").read_text() == (tmp_path / "run.tsv").read_text()
    return reference, resumed


def test_selector_resume_gives_identical_weights(tmp_path):
    train, valid = synthetic_selector_data(48, 0), synthetic_selector_data(16, 1)

    def make_trainer():
        seed_everything(0)
        return SelectorTrainer(make_selector(), train, valid, Schedule(epochs=3, batch_size=8, lr=1e-3),
                               device=torch.device("cpu"), seed=0, progress=False)

    reference, resumed = kill_and_resume(make_trainer, tmp_path)
    assert_same_weights(reference, resumed)


def test_detector_resume_gives_identical_weights(tmp_path):
    root = make_synthetic_cache(tmp_path / "cache", n_images=8)
    paths = dict(images_path=root / "images.npy", index_path=root / "index.parquet",
                 regions_path=root / "regions.parquet", split_path=root / "split.parquet", normalize=Normalize())
    train = load_detector_data(**paths, split="train", augment_cfg=AugmentConfig(), seed=0, require_boxes=True)
    valid = load_detector_data(**paths, split="valid", require_boxes=True)

    def make_trainer():
        seed_everything(0)
        return DetectorTrainer(RegionDetector(tiny_config()), train, valid, Schedule(epochs=2, batch_size=2, lr=1e-3),
                               device=torch.device("cpu"), seed=0, progress=False)

    reference, resumed = kill_and_resume(make_trainer, tmp_path)
    assert_same_weights(reference, resumed)
