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
    # the weights are those of the best epoch: retrain to that epoch and compare
    reference, _ = _train(tmp_path / "to_best", epochs=best["epoch"] + 1)
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), name
    assert (tmp_path / "metrics.tsv").read_text().count("\n") == len(history.rows) + 1


def test_finished_training_leaves_no_resume_point(tmp_path):
    _train(tmp_path)
    assert not (tmp_path / "ckpt" / "last.pt").exists()


def _scripted_fit(tmp, val_losses, kill_at=None, fingerprint=None):
    """Train with validation losses given by a script; snapshot the weights at each validation."""
    model, optimizer, scheduler, x, y = _make(0)
    snapshots, calls = [], []

    def train_epoch(epoch):
        if kill_at is not None and epoch == kill_at:
            raise KeyboardInterrupt("killed")
        for batch in epoch_batches(len(x), 8, seed=0, epoch=epoch):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x[batch]).squeeze(-1), y[batch]).backward()
            optimizer.step()
        return {"loss": 0.0}

    def validate():
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        calls.append(len(calls))
        return val_losses[len(calls) - 1]

    history = fit(model, optimizer, train_epoch=train_epoch, validate=validate, epochs=len(val_losses),
                  checkpoint_dir=tmp / "ckpt", metrics_path=tmp / "metrics.tsv", scheduler=scheduler)
    return model, history, snapshots


def test_model_ends_with_the_best_epochs_weights_not_the_last(tmp_path):
    model, history, snapshots = _scripted_fit(tmp_path, [3.0, 1.0, 2.0, 4.0])
    assert history.best_epoch == 1
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][name]), name
    assert not torch.equal(model.state_dict()["0.weight"], snapshots[3]["0.weight"])


def test_nan_validation_loss_in_epoch_zero_does_not_freeze_the_best_checkpoint(tmp_path):
    model, history, snapshots = _scripted_fit(tmp_path, [float("nan"), 2.0, 1.0, 3.0])
    assert history.best_epoch == 2 and history.best_val == 1.0
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[2][name]), name


def test_checkpoint_of_other_input_content_is_not_resumed(tmp_path, caplog):
    """Same path, same size, same modification time, other content: a stale checkpoint."""
    import os

    from crrg_clip.train.loop import file_stamp, reset_stale_checkpoint

    data = tmp_path / "inputs.bin"
    data.write_bytes(b"aaaa")
    stat = os.stat(data)
    reset_stale_checkpoint(tmp_path / "ckpt", {"inputs": file_stamp(data)})
    (tmp_path / "ckpt" / "last.pt").write_bytes(b"checkpoint")
    data.write_bytes(b"bbbb")
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with caplog.at_level("INFO", logger="crrg_clip.train.loop"):
        reset_stale_checkpoint(tmp_path / "ckpt", {"inputs": file_stamp(data)})
    assert not (tmp_path / "ckpt" / "last.pt").exists() and "starting afresh" in caplog.text


def test_tensor_stamp_sees_values_dtypes_and_shapes():
    from crrg_clip.train.loop import tensor_stamp

    a = torch.arange(6.0)
    assert tensor_stamp(a) == tensor_stamp(a.clone())
    assert tensor_stamp(a) != tensor_stamp(a + 1)
    assert tensor_stamp(a) != tensor_stamp(a.view(2, 3))
    assert tensor_stamp(a) != tensor_stamp(a.double())


def _plateau_lrs(tmp, eval_every):
    """lr per epoch with a validation loss that never improves (patience 2, two epochs)."""
    model, optimizer, _, x, y = _make(0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2, cooldown=0)

    def train_epoch(epoch, on_step=None):
        for batch in epoch_batches(len(x), 8, seed=0, epoch=epoch):  # 5 steps
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x[batch]).squeeze(-1), y[batch]).backward()
            optimizer.step()
            if on_step is not None:
                on_step()
        return {"loss": 0.0}

    history = fit(model, optimizer, train_epoch=train_epoch, validate=lambda: 1.0, epochs=2,
                  checkpoint_dir=tmp / "ckpt", metrics_path=tmp / "metrics.tsv", scheduler=scheduler,
                  eval_every=eval_every)
    return [row["lr"] for row in history.rows]


def test_evaluating_every_k_steps_lets_the_plateau_scheduler_act(tmp_path):
    assert _plateau_lrs(tmp_path / "epoch", None) == [0.05, 0.05]  # 2 evaluations: patience 2 never reached
    lrs = _plateau_lrs(tmp_path / "steps", 2)  # evaluations at steps 2, 4, 5(end) of each epoch
    assert lrs[-1] < 0.05
