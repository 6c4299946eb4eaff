"""Detector training throughput knobs leave CPU training bit-identical.

The inner loop sums losses on the device (no ``.item()`` per step) and batches may come from
DataLoader workers: both must give exactly the epoch losses and weights of the loop they
replaced (re-implemented here as ``old_train_epoch`` / ``old_validate``).
"""

import pytest
import torch

from crrg_clip.data.region_dataset import AugmentConfig, Normalize, load_detector_data
from crrg_clip.models.detector import RegionDetector
from crrg_clip.train.detector import DETECTOR_LOSS_WEIGHT, DetectorTrainer
from crrg_clip.train.loop import Schedule, batch_loader, epoch_batches
from test_detector import make_synthetic_cache, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_synthetic_cache(tmp_path_factory.mktemp("cache"), n_images=14)
    common = dict(images_path=root / "images.npy", index_path=root / "index.parquet",
                  regions_path=root / "regions.parquet", split_path=root / "split.parquet", normalize=Normalize(),
                  require_boxes=True)
    return (load_detector_data(split="train", augment_cfg=AugmentConfig(), seed=0, **common),
            load_detector_data(split="valid", seed=0, **common))


def trainer(data, **knobs):
    torch.manual_seed(0)
    return DetectorTrainer(RegionDetector(tiny_config()), *data, Schedule(epochs=1, batch_size=4, lr=1e-3),
                           device=CPU, seed=0, progress=False, **knobs)


def old_train_epoch(t: DetectorTrainer, epoch: int) -> dict[str, float]:
    """The loop before this change: a Python-float sum of ``.item()`` after every step."""
    t.model.train()
    sums: dict[str, float] = {}
    for batch in epoch_batches(len(t.train), t.schedule.batch_size, seed=t.seed, epoch=epoch):
        images, targets = t._to_device(*t.train.batch(batch, epoch))
        losses = t.model(images, targets)
        loss = DETECTOR_LOSS_WEIGHT * sum(losses.values())
        assert torch.isfinite(loss)
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.optimizer.step()
        for k, v in {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}.items():
            sums[k] = sums.get(k, 0.0) + v * len(batch)
    return {k: v / len(t.train) for k, v in sums.items()}


def old_validate(t: DetectorTrainer) -> float:
    total = 0.0
    with torch.no_grad(), torch.random.fork_rng(devices=[]), t.model.loss_mode():
        torch.manual_seed(t.seed)
        for batch in epoch_batches(len(t.valid), t.schedule.batch_size, seed=0, epoch=0, shuffle=False):
            losses = t.model(*t._to_device(*t.valid.batch(batch)))
            total += DETECTOR_LOSS_WEIGHT * float(sum(losses.values())) * len(batch)
    return total / len(t.valid)


def weights(t):
    return {k: v.clone() for k, v in t.model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_device_side_sums_are_bit_identical_to_the_python_float_loop(data):
    new, old = trainer(data), trainer(data)
    for epoch in range(2):
        assert new.train_epoch(epoch) == old_train_epoch(old, epoch)  # exact, not approx
        new.model.eval(), old.model.eval()
        assert new.validate() == old_validate(old)
    assert_same_weights(weights(new), weights(old))


def test_loader_workers_give_the_same_batches_and_weights(data):
    in_process, workers = trainer(data), trainer(data, num_workers=2)
    for epoch in range(2):
        assert workers.train_epoch(epoch) == in_process.train_epoch(epoch)
    assert_same_weights(weights(workers), weights(in_process))


def test_batch_loader_keeps_order_with_workers():
    batches = [[3, 1], [0], [2, 4, 5]]
    make = lambda batch: [10 * i for i in batch]  # noqa: E731
    assert list(batch_loader(make, batches)) == [[30, 10], [0], [20, 40, 50]]
    assert [list(b) for b in batch_loader(make, batches, num_workers=2)] == [[30, 10], [0], [20, 40, 50]]


def test_channels_last_and_amp_are_ignored_on_cpu(data):
    plain, knobs = trainer(data), trainer(data, channels_last=True, amp="bf16")
    assert knobs.channels_last is False
    assert knobs.train_epoch(0) == plain.train_epoch(0)


def test_a_non_finite_loss_stops_the_epoch(data, monkeypatch):
    t = trainer(data)
    forward = t.model.forward

    def nan_forward(*args, **kwargs):
        return {k: v * float("nan") for k, v in forward(*args, **kwargs).items()}

    monkeypatch.setattr(t.model, "forward", nan_forward)
    with pytest.raises(FloatingPointError, match="not finite"):
        t.train_epoch(0)


def test_float64_device_sums_equal_python_float_sums():
    """The pattern train/detector.py and train/clip.py use instead of float(v) per step."""
    g = torch.Generator().manual_seed(0)
    values = torch.rand(500, generator=g, dtype=torch.float32) * torch.logspace(-6, 3, 500)
    sizes = torch.randint(1, 33, (500,), generator=g).tolist()
    python, device = 0.0, 0.0
    for v, b in zip(values, sizes):
        python = python + float(v) * b
        device = device + v.double() * b
    assert float(device) == python  # exact
