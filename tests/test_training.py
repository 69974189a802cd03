import dataclasses

import pytest
import torch

from cifar.models import create
from cifar.optim import OPTIMIZERS, Lookahead, build_optimizers, lr_factor, set_lr
from cifar.training import TrainConfig, default_config, loss_and_top1, train


def test_history_fields(trained):
    _, config, history = trained
    assert len(history) == config.epochs
    assert set(history[0]) == {"epoch", "train_loss", "test_loss", "test_top1", "lr", "seconds"}
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(row["seconds"] > 0 for row in history)


def test_learns_synthetic_data(trained, synthetic):
    model, _, history = trained
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    _, top1 = loss_and_top1(model, synthetic.test_images, synthetic.test_labels)
    assert top1 == pytest.approx(history[-1]["test_top1"])
    assert top1 > 0.5  # chance is 0.1


def test_same_seed_same_weights(synthetic):
    config = TrainConfig(model="tutorial", epochs=1, batch_size=64, seed=7)
    first, _ = train(config, synthetic, progress=False)
    second, _ = train(config, synthetic, progress=False)
    other, _ = train(config.replace(seed=8), synthetic, progress=False)
    for (name, a), b, c in zip(first.state_dict().items(), second.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b), name
    assert not all(torch.equal(a, c) for a, c in zip(first.state_dict().values(), other.state_dict().values()))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_lowers_loss(name, synthetic):
    config = TrainConfig(model="tutorial", optimizer=name, epochs=2, batch_size=32, augment=False)
    _, history = train(config, synthetic.subset(256, 64), progress=False)
    assert history[-1]["train_loss"] < history[0]["train_loss"] or history[-1]["train_loss"] < 2.2


def test_resnet_recipe_trains_with_bf16(synthetic):
    config = default_config("resnet").replace(epochs=1, batch_size=64)
    assert config.bf16 and config.channels_last
    model, history = train(config, synthetic.subset(128, 64), progress=False)
    assert model.head.weight.dtype == torch.float32
    assert history[0]["train_loss"] > 0


def test_resnet_recipe_sets_the_whitening_stem(synthetic):
    config = default_config("resnet").replace(epochs=1, batch_size=64)
    model, _ = train(config, synthetic.subset(128, 64), progress=False)
    fresh = create("resnet")
    assert not torch.equal(model.stem.weight, fresh.stem.weight)
    assert not model.stem.weight.requires_grad


def test_bias_lr_scale_applies_to_biases_only():
    model = torch.nn.Linear(4, 2)
    (optimizer,) = build_optimizers("momentum", model, lr=0.1, weight_decay=0.5, bias_lr_scale=8.0)
    initial = {p.ndim: g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}
    assert initial == {2: pytest.approx(0.1), 1: pytest.approx(0.8)}
    set_lr([optimizer], 0.5)
    assert {p.ndim: g["lr"] for g in optimizer.param_groups for p in g["params"]} == {
        2: pytest.approx(0.05), 1: pytest.approx(0.4)}


def test_lookahead_pulls_back_and_finishes():
    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(0.0)
    lookahead = Lookahead(model, max_decay=0.5, every=2)
    model.weight.data.fill_(1.0)
    lookahead.step(1, total_steps=2)  # not a pull step
    assert model.weight.item() == 1.0
    lookahead.step(2, total_steps=2)  # decay 0.5 * (2/2)**3: halfway from 0 to 1
    assert model.weight.item() == pytest.approx(0.5)
    model.weight.data.fill_(2.0)
    lookahead.finish()
    assert model.weight.item() == pytest.approx(0.5)


def test_lookahead_decay_ramps_up():
    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(0.0)
    lookahead = Lookahead(model, max_decay=0.8, every=1)
    model.weight.data.fill_(1.0)
    lookahead.step(1, total_steps=10)  # decay 0.8 * 0.001: almost all the way to the fast weights
    assert model.weight.item() == pytest.approx(1 - 0.0008)


def test_weight_decay_skips_biases():
    model = torch.nn.Linear(4, 2)
    (optimizer,) = build_optimizers("adamw", model, lr=0.1, weight_decay=0.5)
    decays = {p.ndim: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decays == {2: 0.5, 1: 0.0}


def test_default_lr_used_when_none():
    (optimizer,) = build_optimizers("adam", torch.nn.Linear(2, 2), lr=None, weight_decay=0)
    assert optimizer.param_groups[0]["lr"] == OPTIMIZERS["adam"].default_lr


@pytest.mark.skipif("muon" not in OPTIMIZERS, reason="this torch has no torch.optim.Muon")
def test_muon_takes_only_matrices():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 10))
    optimizers = build_optimizers("muon", model, lr=0.01, weight_decay=0.1)
    muon = [o for o in optimizers if isinstance(o, torch.optim.Muon)]
    assert len(muon) == 1
    assert all(p.ndim == 2 for g in muon[0].param_groups for p in g["params"])


def test_onecycle_schedule_shape():
    factors = [lr_factor(step, 100, 0.2, "onecycle") for step in range(100)]
    assert factors[0] == pytest.approx(0.1)
    assert max(factors) == pytest.approx(1.0)
    assert factors.index(max(factors)) == 20
    assert factors[-1] < 0.02
    assert lr_factor(50, 100, 0.2, "constant") == 1.0
    assert lr_factor(99, 100, 0.2, "cosine") < 0.01


def test_bad_config_values():
    with pytest.raises(ValueError, match="'nadam'"):
        TrainConfig(optimizer="nadam")
    with pytest.raises(ValueError, match="epochs must be at least 1, got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="unknown pad_mode 'wrap'; choose one of: constant, reflect"):
        TrainConfig(pad_mode="wrap")
    with pytest.raises(ValueError, match="unknown flip 'sometimes'; choose one of: random, alternate"):
        TrainConfig(flip="sometimes")
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        lr_factor(0, 10, 0.1, "linear")


def test_alternate_flip_each_two_epochs(synthetic, monkeypatch):
    import cifar.training

    data = synthetic.subset(256, 64)
    data = dataclasses.replace(data, train_images=data.train_images.clone())  # the fixture is shared
    data.train_images[:, 0, 0, 0] = torch.arange(256, dtype=torch.uint8)  # each image's id
    seen: list[dict[int, bool]] = []

    def recording_augment(images, generator, padding, pad_mode, flips):
        if not seen or len(seen[-1]) == 256:
            seen.append({})
        seen[-1].update(zip(images[:, 0, 0, 0].tolist(), flips.tolist()))
        return images

    monkeypatch.setattr(cifar.training, "augment", recording_augment)
    config = TrainConfig(model="tutorial", epochs=3, batch_size=64, flip="alternate")
    train(config, data, progress=False)
    assert [len(epoch) for epoch in seen] == [256, 256, 256]
    assert all(seen[0][i] != seen[1][i] and seen[0][i] == seen[2][i] for i in range(256))
    assert 0.35 < sum(seen[0].values()) / 256 < 0.65


def test_describe_fills_default_lr():
    from cifar.training import describe

    text = describe(TrainConfig(optimizer="adam", augment=False))
    assert "peak lr 0.00316" in text
    assert "no augmentation" in text
    assert "bfloat16" not in text
