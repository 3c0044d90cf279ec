"""Datasets: digits (shapes, standardization, no leakage), copy task, sequences, padding."""

import pytest
import torch

from lessons_lib.data import (
    as_sequences,
    copy_task,
    gaussian_sequences,
    load_digits,
    padded_batch,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def raw():
    from sklearn.datasets import load_digits as sk_load

    bunch = sk_load()
    return torch.tensor(bunch.data, dtype=torch.float32), torch.tensor(bunch.target)


def test_digits_shapes_and_dtypes(digits):
    assert digits.x_train.shape == (1300, 64) and digits.x_test.shape == (497, 64)
    assert digits.y_train.shape == (1300,) and digits.y_test.shape == (497,)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    labels = torch.cat([digits.y_train, digits.y_test])
    assert set(labels.tolist()) == set(range(10))


def test_digits_training_features_are_standardized(digits):
    varying = digits.x_train.std(0) > 0  # three pixels are 0 in every training image
    assert varying.sum() >= 60
    assert digits.x_train.mean(0).abs().max() < 1e-5
    assert torch.allclose(digits.x_train.std(0)[varying], torch.ones(int(varying.sum())),
                          atol=1e-5)


def test_digits_split_is_a_seeded_permutation_without_leakage(digits, raw):
    x, y = raw
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    test_idx, train_idx = perm[:497], perm[497:]
    assert torch.equal(digits.y_train, y[train_idx]) and torch.equal(digits.y_test, y[test_idx])
    mean, std = x[train_idx].mean(0), x[train_idx].std(0)
    varying = std > 0
    # the test split is standardized with the TRAINING statistics (no leakage)
    expected = (x[test_idx] - mean) / torch.where(varying, std, torch.ones_like(std))
    assert torch.allclose(digits.x_test[:, varying], expected[:, varying], atol=1e-5)
    own = (x[test_idx] - x[test_idx].mean(0)) / x[test_idx].std(0).clamp_min(1e-6)
    assert not torch.allclose(digits.x_test[:, varying], own[:, varying], atol=1e-2)


def test_digits_test_features_stay_bounded(digits):
    assert digits.x_test.abs().max() < 100


def test_digits_raw_and_seeds(digits):
    raw_split = load_digits(standardize=False)
    assert raw_split.x_train.min() == 0 and raw_split.x_train.max() == 16
    other = load_digits(seed=1)
    assert not torch.equal(other.y_train, digits.y_train)
    assert load_digits(test_size=100).x_test.shape[0] == 100


@pytest.mark.parametrize("kwargs, error", [({"test_size": 0}, ValueError),
                                           ({"test_size": 1797}, ValueError),
                                           ({"test_size": "10"}, TypeError),
                                           ({"seed": "a"}, TypeError),
                                           ({"seed": -1}, ValueError),
                                           ({"standardize": "yes"}, TypeError)])
def test_digits_reject_bad_arguments(kwargs, error):
    with pytest.raises(error):
        load_digits(**kwargs)


def test_copy_task_targets_repeat_the_first_half():
    g = torch.Generator().manual_seed(0)
    inputs, targets = copy_task(batch=4, length=5, vocab=7, generator=g)
    assert inputs.shape == targets.shape == (4, 9)
    assert (targets[:, :4] == -100).all()  # the first half cannot be predicted
    # sequence = first + first; inputs = seq[:-1], targets = seq[1:]
    first = inputs[:, :5]
    assert torch.equal(inputs[:, 5:], first[:, :4])
    assert torch.equal(targets[:, 4:], first)
    assert inputs.min() >= 0 and inputs.max() < 7


@pytest.mark.parametrize("kwargs, error", [
    ({"batch": 0}, ValueError), ({"length": 0}, ValueError), ({"vocab": 0}, ValueError),
    ({"length": 2.0}, TypeError),
])
def test_copy_task_rejects_bad_arguments(kwargs, error):
    args = {"batch": 2, "length": 3, "vocab": 5}
    args.update(kwargs)
    with pytest.raises(error):
        copy_task(generator=torch.Generator(), **args)


def test_gaussian_sequences():
    x = gaussian_sequences(64, 32, 16, torch.Generator().manual_seed(0), offset=3.0, scale=0.5)
    assert x.shape == (64, 32, 16)
    assert x.mean().item() == pytest.approx(3.0, abs=0.02)
    assert x.std().item() == pytest.approx(0.5, rel=0.03)
    with pytest.raises(ValueError):
        gaussian_sequences(2, 2, 0, torch.Generator())


def test_as_sequences_reads_consecutive_features():
    x = torch.arange(24.0).reshape(2, 12)
    seq = as_sequences(x, 3)
    assert seq.shape == (2, 3, 4)
    assert seq[0, 1].tolist() == [4.0, 5.0, 6.0, 7.0]
    assert seq[1, 2].tolist() == [20.0, 21.0, 22.0, 23.0]
    assert seq.data_ptr() == x.data_ptr()  # a view


@pytest.mark.parametrize("x, steps, error", [
    (torch.zeros(2, 12), 5, ValueError),
    (torch.zeros(2, 12), 0, ValueError),
    (torch.zeros(2, 12), 2.0, TypeError),
    (torch.zeros(2, 3, 4), 2, ValueError),
    ([[0.0] * 4], 2, TypeError),
])
def test_as_sequences_rejects_bad_arguments(x, steps, error):
    with pytest.raises(error):
        as_sequences(x, steps)


def test_padded_batch_pads_at_the_end_and_masks():
    x, mask = padded_batch([3, 1, 4], 5, torch.Generator().manual_seed(0), pad_value=-7.0,
                           offset=2.0)
    assert x.shape == (3, 4, 5) and mask.shape == (3, 4) and mask.dtype == torch.bool
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False],
                             [True, True, True, True]]
    assert (x[~mask] == -7.0).all()
    assert (x[mask] != -7.0).all()
    assert x[mask].mean().item() == pytest.approx(2.0, abs=0.6)


def test_padded_batch_is_reproducible():
    a = padded_batch([2, 3], 4, torch.Generator().manual_seed(3))
    b = padded_batch([2, 3], 4, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("lengths, kwargs, error", [
    ([], {}, ValueError),
    ("abc", {}, TypeError),
    (5, {}, TypeError),
    ([2], {"scale": -1.0}, ValueError),  # as gaussian_sequences
    ([2], {"offset": float("nan")}, ValueError),
    ([2, 0], {}, ValueError),
    ([2, 1.5], {}, TypeError),
    ([2], {"features": 0}, ValueError),
    ([2], {"generator": 3}, TypeError),
    ([2], {"pad_value": "0"}, TypeError),
    ([2], {"scale": None}, TypeError),
])
def test_padded_batch_rejects_bad_arguments(lengths, kwargs, error):
    args = {"features": 3, "generator": torch.Generator()}
    args.update(kwargs)
    with pytest.raises(error):
        padded_batch(lengths, args.pop("features"), args.pop("generator"), **args)


def test_padded_batch_takes_numpy_lengths():
    import numpy as np

    x, mask = padded_batch(np.array([3, 1]), 2, torch.Generator().manual_seed(0))
    assert x.shape == (2, 3, 2) and mask.sum(1).tolist() == [3, 1]
    with pytest.raises(ValueError, match="lengths must be one-dimensional"):
        padded_batch(np.array([[3, 1]]), 2)


def test_every_generator_argument_takes_none_for_the_global_generator():
    torch.manual_seed(0)
    a = (copy_task(2, 3, 5)[0], gaussian_sequences(2, 3, 4), padded_batch([2, 1], 3)[0])
    torch.manual_seed(0)
    b = (copy_task(2, 3, 5, None)[0], gaussian_sequences(2, 3, 4, None),
         padded_batch([2, 1], 3, None)[0])
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    for call in (lambda: copy_task(2, 3, 5, generator=1),
                 lambda: gaussian_sequences(2, 3, 4, generator="g"),
                 lambda: padded_batch([2], 3, generator=3)):
        with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
            call()


def test_digits_file_read_matches_scikit_learns_loader_without_importing_it(raw, monkeypatch):
    import subprocess
    import sys

    from lessons_lib import data

    pixels, labels = data._digits_arrays()
    assert torch.equal(torch.tensor(pixels, dtype=torch.float32), raw[0])
    assert torch.equal(torch.tensor(labels), raw[1]) and labels.dtype.kind == "i"
    code = "import sys, lessons_lib.data as d; d.load_digits(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "load_digits imported scikit-learn (2.5 s) needlessly"
    # where scikit-learn keeps no data file, its loader gives the same arrays
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    fb_pixels, fb_labels = data._digits_arrays()
    assert (fb_pixels == pixels).all() and (fb_labels == labels).all()
