"""The shared training loop: batches, best-epoch selection, kill-and-resume."""

import pytest
import torch
from torch import nn

from crrg_clip.train.loop import epoch_batches, fit


def test_epoch_batches_cover_everything_once_and_depend_on_seed_and_epoch():
    batches = epoch_batches(10, 4, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert batches == epoch_batches(10, 4, seed=1, epoch=0)
    assert batches != epoch_batches(10, 4, seed=1, epoch=1)


def test_small_subset_never_trains_on_zero_batches():
    assert len(epoch_batches(3, 32, seed=0, epoch=0, drop_last=True)) == 1
    with pytest.raises(ValueError, match="empty"):
        epoch_batches(0, 32, seed=0, epoch=0)


def _make(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(40, 4, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1 * torch.randn(40, generator=gen)
    return model, optimizer, scheduler, x, y


def _train(tmp, kill_at=None, epochs=4):
    model, optimizer, scheduler, x, y = _make(0)

    def train_epoch(epoch):
        if kill_at is not None and epoch == kill_at:
            raise KeyboardInterrupt("killed")
        total = 0.0
        for batch in epoch_batches(len(x), 8, seed=0, epoch=epoch):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x[batch]).squeeze(-1), y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item()
        return {"loss": total}

    def validate():
        return nn.functional.mse_loss(model(x).squeeze(-1), y).item()

    history = fit(model, optimizer, train_epoch=train_epoch, validate=validate, epochs=epochs,
                  checkpoint_dir=tmp / "ckpt", metrics_path=tmp / "metrics.tsv", scheduler=scheduler)
    return model, history


def test_resume_after_kill_gives_identical_weights(tmp_path):
    reference, ref_history = _train(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "killed", kill_at=2)
    resumed, history = _train(tmp_path / "killed")
    assert [r["epoch"] for r in history.rows] == [0, 1, 2, 3]
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert history.best_epoch == ref_history.best_epoch


def test_model_ends_with_best_epoch_weights(tmp_path):
    model, history = _train(tmp_path)
    best = min(history.rows, key=lambda r: r["val_loss"])
    assert history.best_epoch == best["epoch"]
    assert (tmp_path / "metrics.tsv").read_text().count("\n") == len(history.rows) + 1


def test_finished_training_leaves_no_resume_point(tmp_path):
    _train(tmp_path)
    assert not (tmp_path / "ckpt" / "last.pt").exists()
