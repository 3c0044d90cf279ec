"""Naive, two-pass and Welford variance: accuracy on data with a large offset."""

import pytest
import torch

from lessons_lib.normalization import layer_norm_forward
from lessons_lib.variance import (
    naive_variance,
    two_pass_variance,
    welford_merge,
    welford_state,
    welford_variance,
)


@pytest.fixture(scope="module")
def offset_data():
    gen = torch.Generator().manual_seed(0)
    x64 = 1e4 + torch.randn(300, 768, generator=gen, dtype=torch.float64)
    x = x64.float()  # the data as stored
    exact = x.double().var(dim=-1, correction=0)  # float64 reference on the same float32 data
    return x, exact


def _median_rel_error(v, exact):
    return ((v.double() - exact).abs() / exact).median().item()


def test_all_methods_agree_in_float64():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(10, 101, generator=gen, dtype=torch.float64) * 3 + 2
    exact = x.var(dim=-1, correction=0)
    for v in (naive_variance(x), two_pass_variance(x), welford_variance(x), welford_variance(x, 7)):
        torch.testing.assert_close(v, exact, atol=1e-12, rtol=1e-12)


def test_naive_variance_fails_in_float32_with_large_offset(offset_data):
    x, exact = offset_data
    naive = naive_variance(x)
    assert _median_rel_error(naive, exact) > 1.0
    assert (naive < 0).float().mean().item() >= 0.10  # a "variance" below zero


@pytest.mark.parametrize("method", [two_pass_variance, welford_variance,
                                    lambda t: welford_variance(t, chunks=8)])
def test_two_pass_and_welford_hold_in_float32(offset_data, method):
    x, exact = offset_data
    v = method(x)
    assert v.dtype == torch.float32
    assert _median_rel_error(v, exact) < 1e-3
    assert (v > 0).all()


def test_naive_variance_in_layer_norm_gives_nan(offset_data):
    x, _ = offset_data
    naive_ln = (x - x.mean(-1, keepdim=True)) * torch.rsqrt(naive_variance(x).unsqueeze(-1) + 1e-5)
    assert not torch.isfinite(naive_ln).all()
    assert torch.isfinite(layer_norm_forward(x)[0]).all()


def test_welford_merge_equals_whole_row():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, 50, generator=gen, dtype=torch.float64)
    merged = welford_merge(welford_state(x[:, :13]), welford_state(x[:, 13:]))
    assert merged.count == 50
    torch.testing.assert_close(merged.mean, x.mean(-1))
    torch.testing.assert_close(merged.variance, x.var(-1, correction=0))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: naive_variance([1.0]), TypeError, "x must be a torch.Tensor"),
        (lambda: two_pass_variance(torch.arange(4)), TypeError, "floating-point"),
        (lambda: welford_variance(torch.ones(2, 4), chunks=0), ValueError, "chunks must be >= 1"),
        (lambda: welford_variance(torch.ones(2, 4), chunks=5), ValueError,
         "chunks must be <= the row length 4"),
        (lambda: welford_state(torch.ones(2, 0)), ValueError, "at least one value"),
        (lambda: welford_variance(torch.ones(2, 0)), ValueError, "x must have at least one value"),
        (lambda: naive_variance(torch.ones(2, 0)), ValueError, "x must have at least one value"),
        (lambda: welford_merge(welford_state(torch.ones(2, 3)), "b"), TypeError,
         "b must be a WelfordState"),
        (lambda: welford_merge(welford_state(torch.ones(2, 3)), welford_state(torch.ones(3, 3))),
         ValueError, "same rows"),
    ],
)
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()
