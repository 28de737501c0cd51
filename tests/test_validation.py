"""Selecting without the test set: a validation split carved from the training images (its own seed, off by
default), recorded every epoch for every member; and label noise on the training labels only (its own seed)."""

import pytest
import torch

import underspec
from underspec import Grid, UnderspecError, reference_train, train
from underspec.training.cache import run_key
from underspec.training.data import noisy_labels, split_training, validation_split
from underspec.training.engine import train_parts
from underspec.training.run import HISTORY_COLUMNS, VALIDATION_COLUMNS

DEFAULT_SCIENCE = {"seeds": [0], "l1": [0.0], "n_classes": [10], "hidden": 16, "epochs": 50, "steps": None,
                   "batch_size": 64, "lr": 0.01, "optimizer": "sgd", "class_mode": "relabel"}


def test_the_split_is_disjoint_from_the_training_images_and_the_test_set(small):
    kept, held = validation_split(len(small.y_train), 0.2, seed=7)
    assert len(held) == 60 and len(kept) == 240
    assert set(kept.tolist()).isdisjoint(held.tolist()) and sorted(kept.tolist() + held.tolist()) == list(range(300))
    rest, (x_val, y_val) = split_training(small, 0.2, 7)
    assert torch.equal(rest.x_train, small.x_train[kept]) and torch.equal(x_val, small.x_train[held])
    assert rest.x_test is small.x_test and rest.y_test is small.y_test  # the test set is not touched
    # no validation image is an image the members train on, nor a test image
    for x in (rest.x_train, small.x_test):
        assert not (x_val[:, None] == x[None]).all(-1).any()
    again, other = validation_split(300, 0.2, seed=7), validation_split(300, 0.2, seed=8)
    assert torch.equal(again[1], held) and not torch.equal(other[1], held)


def test_members_train_on_the_rest_only_and_the_split_changes_no_step(small):
    """A grid with a split trains, bit for bit, as a grid without one on the kept images: evaluating the split
    after every epoch moves nothing."""
    grid = Grid(seeds=(0, 1), l1=(0.0, 0.01), n_classes=(3, 10), epochs=2)
    with_split = train(Grid(**{**grid.to_dict(), "validation": 0.25, "validation_seed": 3}), small, progress=False,
                       probe_size=10)
    rest, _ = split_training(small, 0.25, 3)
    plain = train(grid, rest, progress=False, probe_size=10)
    assert all(torch.equal(with_split.final[k], plain.final[k]) for k in plain.final)
    assert list(with_split.history.columns)[4:] == [*HISTORY_COLUMNS, *VALIDATION_COLUMNS]
    assert with_split.history[list(HISTORY_COLUMNS)].equals(plain.history[list(HISTORY_COLUMNS)])
    assert with_split.history[list(VALIDATION_COLUMNS)].notna().all().all()
    assert with_split.meta["n_train"] == 225 and with_split.meta["n_validation"] == 75


def test_the_default_grid_is_unchanged_by_the_new_knobs(small):
    """No split, no noise, no per-layer widths: the grid's science (the cache key's grid part and a sweep's
    fingerprint) and its history are those of before."""
    assert Grid().to_dict(science_only=True) == DEFAULT_SCIENCE
    assert Grid(validation=None, label_noise=0.0, widths=None) == Grid()
    assert run_key(Grid(), small) == run_key(Grid(validation=None, noise_seed=0, validation_seed=0), small)
    run = train(Grid(epochs=1), small, progress=False, probe_size=10)
    assert list(run.history.columns) == ["seed", "l1", "n_classes", "epoch", *HISTORY_COLUMNS]
    assert "n_validation" not in run.meta and "stopped" not in run.meta


@pytest.mark.parametrize("class_mode", ["relabel", "subset"])
def test_the_validation_history_equals_the_loop_in_float64(small, class_mode):
    knobs = dict(validation=0.2, validation_seed=5, label_noise=0.1, noise_seed=2, class_mode=class_mode)
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(3, 10), epochs=2, **knobs)
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=10, sparse=False)
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, epochs=2, dtype=torch.float64, probe_size=10, **knobs)
        member = run.member(seed, l1, c)
        assert all((member.final[k] - ref.final[k]).abs().max() < 1e-10 for k in ref.final)
        columns = [*HISTORY_COLUMNS[:4], *VALIDATION_COLUMNS]
        assert (member.history[columns] - ref.history[columns]).abs().to_numpy().max() < 1e-10


def test_label_noise_replaces_exactly_the_fraction_by_its_seed():
    y = torch.arange(1000) % 10
    noisy = noisy_labels(y, 0.2, seed=4)
    changed = noisy != y
    assert int(changed.sum()) == 200 and ((noisy >= 0) & (noisy <= 9)).all()
    assert torch.equal(noisy, noisy_labels(y, 0.2, seed=4)) and not torch.equal(noisy, noisy_labels(y, 0.2, seed=5))
    assert noisy_labels(y, 0.0, seed=4) is y and int((noisy_labels(y, 0.1, 4) != y).sum()) == 100
    new = noisy[changed] - y[changed]  # every other digit is drawn
    assert set(((new % 10)).tolist()) == set(range(1, 10))


def test_label_noise_never_touches_the_test_set_or_the_validation_labels(small):
    """The noisy training labels are the only labels that change: the engine's test and validation accuracies
    are those of its final networks on the clean labels."""
    y_test = small.y_test.clone()
    grid = Grid(seeds=(0, 1), epochs=2, label_noise=0.3, noise_seed=1, validation=0.2)
    run = train(grid, small, progress=False, probe_size=10)
    assert torch.equal(small.y_test, y_test)
    _, (x_val, y_val) = split_training(small, 0.2, 0)
    for i, seed in enumerate(grid.seeds):
        net = run.member(seed).final
        last = run.member(seed).history.iloc[-1]
        assert abs((underspec.forward(net, small.x_test).argmax(1) == small.y_test).double().mean() - last.test_acc) < 1e-9
        assert abs((underspec.forward(net, x_val).argmax(1) == y_val).double().mean() - last.val_acc) < 1e-9
    clean = train(Grid(seeds=(0, 1), epochs=2, validation=0.2), small, progress=False, probe_size=10)
    assert not torch.equal(clean.final["w1"], run.final["w1"])


def test_a_label_noise_axis_trains_each_level_as_alone(small):
    run = train(Grid(seeds=(0, 1), epochs=1, label_noise=[0.0, 0.2]), small, progress=False, probe_size=10)
    alone = train(Grid(seeds=(0, 1), epochs=1, label_noise=0.2), small, progress=False, probe_size=10)
    assert torch.equal(run.part(label_noise=0.2).final["w1"], alone.final["w1"])
    parts = train_parts([Grid(seeds=(0, 1), epochs=1), Grid(seeds=(0, 1), epochs=1, label_noise=0.2)], small,
                        progress=False, probe_size=10)
    assert torch.equal(parts[1].final["w1"], alone.final["w1"])


def test_bad_splits_and_noise_are_refused(small):
    for knobs, message in [(dict(validation=1.0), "validation is a fraction"), (dict(validation=0), "fraction"),
                           (dict(label_noise=1.0), "label_noise is a fraction"), (dict(label_noise=-0.1), "fraction"),
                           (dict(validation_seed=3), "there is none"), (dict(noise_seed=3), "label_noise is 0")]:
        with pytest.raises(UnderspecError, match=message):
            Grid(**knobs)
    with pytest.raises(UnderspecError, match="share one validation split"):
        train_parts([Grid(validation=0.1), Grid(validation=0.2)], small)
