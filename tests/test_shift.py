"""Shifted test sets are deterministic and what they say; the shift table's numbers are the seeds' own."""

from __future__ import annotations

import pytest
import torch

import underspec
from underspec import Grid, train
from underspec.metrics.shift import shift_table, summarize_shifts
from underspec.training.shifts import SHIFTS, contrast, gaussian_noise, rotate, shifted_test_sets, translate


def test_rotation_equals_torchvisions_own(small):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    x = small.x_test[:20]
    expected = torch.stack([F.rotate(img.reshape(1, 28, 28), 30.0, interpolation=InterpolationMode.BILINEAR)
                            for img in x]).reshape(20, -1)
    assert torch.equal(rotate(x, 30.0), expected)
    # an independent implementation: PIL's bilinear rotation of the 8-bit images, within one grey level
    import numpy as np
    from PIL import Image

    pil = torch.stack([torch.tensor(np.array(Image.fromarray((img.reshape(28, 28).numpy() * 255).round().astype(
        np.uint8)).rotate(30.0, resample=Image.BILINEAR)), dtype=torch.float32) / 255 for img in x]).reshape(20, -1)
    assert (rotate(x, 30.0) - pil).abs().max() <= 1.5 / 255


def test_translation_moves_every_pixel_by_whole_pixels(small):
    x = small.x_test[:5]
    moved = translate(x, (2, 1)).reshape(5, 28, 28)
    original = x.reshape(5, 28, 28)
    assert torch.equal(moved[:, 1:, 2:], original[:, :-1, :-2])
    assert (moved[:, 0, :] == 0).all() and (moved[:, :, :2] == 0).all()


def test_every_shift_is_deterministic_and_stays_in_the_unit_range(small):
    sets = shifted_test_sets(small)
    again = shifted_test_sets(small)
    assert list(sets) == ["in distribution", *SHIFTS]
    for name, (x, y) in sets.items():
        assert torch.equal(x, again[name][0]) and torch.equal(y, small.y_test)
        assert x.shape == small.x_test.shape and x.min() >= 0 and x.max() <= 1
    assert not torch.equal(gaussian_noise(small.x_test, 0.3), small.x_test)
    assert contrast(torch.tensor([0.0, 0.5, 1.0]), 0.3).tolist() == pytest.approx([0.35, 0.5, 0.65])


def test_the_shift_table_holds_each_seeds_accuracy_and_their_disagreement(small):
    run = train(Grid(seeds=(0, 42, 7), n_classes=(10,), epochs=2), small, progress=False)
    table = shift_table(run, small)
    row = table[(table["shift"] == "rotate 30°") & (table.seed_a == 0) & (table.seed_b == 7)].iloc[0]
    x = rotate(small.x_test, 30.0).double()
    preds = [underspec.forward({k: v.double() for k, v in run.member(s, 0.0, 10).final.items()}, x).argmax(-1)
             for s in (0, 7)]
    assert row.acc_a == pytest.approx((preds[0] == small.y_test).double().mean().item())
    assert row.disagreement == pytest.approx((preds[0] != preds[1]).double().mean().item())
    summary = summarize_shifts(table)
    assert set(summary["shift"]) == set(shifted_test_sets(small)) and len(summary) == len(shifted_test_sets(small))
    base = summary[summary["shift"] == "in distribution"].iloc[0]
    assert base.disagreement_low <= base.disagreement <= base.disagreement_high


def test_image_blocks_give_the_same_values_and_an_interval_over_seeds_and_images(small):
    """``shift_table(..., n_blocks=)``: block -1 is the table without blocks; block b is every value with test
    images b*N/B.. left out; ``summarize_shifts`` of the blocked table is centred on the same means, with an
    interval that resamples the images too (at least as wide as the seeds' alone)."""
    import pandas as pd

    run = train(Grid(seeds=(0, 1, 2, 3), l1=(0.0,), n_classes=(10,), epochs=2), small, progress=False)
    plain = shift_table(run, small)
    blocked = shift_table(run, small, n_blocks=5)
    whole = blocked[blocked.block == -1].drop(columns="block").reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, plain)
    row = blocked[(blocked.block == 2) & (blocked["shift"] == "in distribution")].iloc[0]
    x, y = small.x_test, small.y_test
    kept = torch.arange(len(y)) * 5 // len(y) != 2
    a, b = (run.member(int(s), 0.0, 10).final for s in (row.seed_a, row.seed_b))
    pa, pb = (underspec.forward({k: v.double() for k, v in p.items()}, x[kept].double()).argmax(-1) for p in (a, b))
    assert row.disagreement == pytest.approx((pa != pb).double().mean().item(), abs=1e-12)
    seeds, both = summarize_shifts(plain), summarize_shifts(blocked)
    assert both.disagreement.tolist() == pytest.approx(seeds.disagreement.tolist(), abs=1e-12)
    assert ((both.disagreement_high - both.disagreement_low)
            >= (seeds.disagreement_high - seeds.disagreement_low) - 1e-12).all()
    with pytest.raises(underspec.UnderspecError, match="n_blocks"):
        shift_table(run, small, n_blocks=1)
