"""LayerNorm, RMSNorm and BatchNorm from scratch against PyTorch, and the explicit backward."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib.normalization import (
    BatchNorm,
    LayerNorm,
    RMSNorm,
    batch_norm_forward,
    layer_norm_forward,
    norm_backward,
    normalize,
    normalize_explicit,
    rms_norm_forward,
)

SHAPES = [(4, 8), (3, 17), (2, 5, 33), (1, 1, 7), (3, 4, 1)]
TOL = {torch.float32: dict(atol=2e-6, rtol=1e-5), torch.float64: dict(atol=1e-12, rtol=1e-12)}


def _params(n, dtype, gen):
    w = torch.randn(n, generator=gen, dtype=dtype)
    b = torch.randn(n, generator=gen, dtype=dtype)
    return w, b


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_matches_torch(shape, dtype, gen):
    x = 3 + 2 * torch.randn(shape, generator=gen, dtype=dtype)
    w, b = _params(shape[-1], dtype, gen)
    out, cache = layer_norm_forward(x, w, b, eps=1e-5)
    torch.testing.assert_close(out, F.layer_norm(x, shape[-1:], w, b, 1e-5), **TOL[dtype])
    assert cache.mean.shape == shape[:-1] and cache.rstd.shape == shape[:-1]
    # no affine parameters: plain normalization
    torch.testing.assert_close(
        layer_norm_forward(x)[0], F.layer_norm(x, shape[-1:]), **TOL[dtype]
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_rms_norm_matches_torch(shape, dtype, gen):
    x = torch.randn(shape, generator=gen, dtype=dtype)
    w, _ = _params(shape[-1], dtype, gen)
    out, cache = rms_norm_forward(x, w, eps=1e-6)
    torch.testing.assert_close(out, F.rms_norm(x, shape[-1:], w, 1e-6), **TOL[dtype])
    assert cache.mean is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(16, 5), (4, 6, 3), (7, 2, 9)])
def test_batch_norm_matches_torch_in_train_and_eval(shape, dtype, gen):
    c = shape[-1]
    x = 1.5 + torch.randn(shape, generator=gen, dtype=dtype)
    w, b = _params(c, dtype, gen)
    # torch wants channels at dim 1: (M, C) or (B, C, T)
    to_torch = (lambda t: t) if len(shape) == 2 else (lambda t: t.transpose(1, 2))
    rm, rv = torch.zeros(c, dtype=dtype), torch.ones(c, dtype=dtype)
    rm_t, rv_t = rm.clone(), rv.clone()
    for _ in range(3):  # several steps so the running statistics move
        ours = batch_norm_forward(x, rm, rv, w, b, training=True, momentum=0.2)
        theirs = F.batch_norm(to_torch(x), rm_t, rv_t, w, b, training=True, momentum=0.2)
        torch.testing.assert_close(to_torch(ours), theirs, **TOL[dtype])
        x = x * 1.1 + 0.3
    torch.testing.assert_close(rm, rm_t, **TOL[dtype])
    torch.testing.assert_close(rv, rv_t, **TOL[dtype])
    ours = batch_norm_forward(x, rm, rv, w, b, training=False)
    theirs = F.batch_norm(to_torch(x), rm_t, rv_t, w, b, training=False)
    torch.testing.assert_close(to_torch(ours), theirs, **TOL[dtype])


def test_batch_norm_module_matches_nn_batchnorm(gen):
    x = torch.randn(32, 6, generator=gen)
    ours, theirs = BatchNorm(6, momentum=0.3), nn.BatchNorm1d(6, momentum=0.3)
    torch.testing.assert_close(ours(x), theirs(x))
    ours.eval(), theirs.eval()
    y = torch.randn(3, 6, generator=gen)
    torch.testing.assert_close(ours(y), theirs(y))
    torch.testing.assert_close(ours.running_var, theirs.running_var)


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 16)])
def test_explicit_backward_equals_autograd_float64(kind, affine, shape, gen):
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 1
    n = shape[-1]
    w = torch.randn(n, generator=gen, dtype=torch.float64) if affine[0] else None
    b = torch.randn(n, generator=gen, dtype=torch.float64) if affine[1] else None
    dout = torch.randn(shape, generator=gen, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() if t is not None else None for t in (x, w, b)]
    ref = normalize(leaves[0], kind, leaves[1], leaves[2], 1e-5)
    grads = torch.autograd.grad(ref, [t for t in leaves if t is not None], dout)
    forward = layer_norm_forward if kind == "layernorm" else rms_norm_forward
    _, cache = forward(x, w, b, 1e-5)
    ours = [g for g in norm_backward(dout, cache) if g is not None]
    assert len(ours) == len(grads)
    for a, e in zip(ours, grads, strict=True):
        torch.testing.assert_close(a, e, atol=1e-12, rtol=1e-10)
    assert (norm_backward(dout, cache)[1] is None) == (w is None)
    assert (norm_backward(dout, cache)[2] is None) == (b is None)


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_gradcheck_explicit_backward(kind, gen):
    x = torch.randn(3, 4, 6, generator=gen, dtype=torch.float64).requires_grad_()
    w = torch.randn(6, generator=gen, dtype=torch.float64).requires_grad_()
    b = torch.randn(6, generator=gen, dtype=torch.float64).requires_grad_()
    fn = lambda *t: normalize_explicit(t[0], kind, t[1], t[2])
    assert torch.autograd.gradcheck(fn, (x, w, b))


def test_layer_norm_dx_sums_to_zero_over_features(gen):
    x = torch.randn(8, 33, generator=gen, dtype=torch.float64) * 5 - 2
    w = torch.randn(33, generator=gen, dtype=torch.float64)
    _, cache = layer_norm_forward(x, w, None)
    dx, _, _ = norm_backward(torch.randn(8, 33, generator=gen, dtype=torch.float64), cache)
    assert dx.sum(-1).abs().max() < 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_norm_invariant_to_shift_and_scale(dtype, gen):
    x = torch.randn(6, 64, generator=gen, dtype=dtype)
    shift = torch.randn(6, 1, generator=gen, dtype=dtype) * 10
    out, _ = layer_norm_forward(x, eps=0.0)
    out_shifted, _ = layer_norm_forward(x + shift, eps=0.0)
    out_scaled, _ = layer_norm_forward(x * 7.5, eps=0.0)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert (out - out_shifted).abs().max() < tol
    assert (out - out_scaled).abs().max() < tol
    # RMSNorm is scale- but not shift-invariant
    r, _ = rms_norm_forward(x, eps=0.0)
    assert (r - rms_norm_forward(x * 7.5, eps=0.0)[0]).abs().max() < tol
    assert (r - rms_norm_forward(x + 3.0, eps=0.0)[0]).abs().max() > 0.1


def test_half_precision_inputs_are_normalized_in_float32(gen):
    x = (1000 + torch.randn(4, 512, generator=gen)).to(torch.bfloat16)
    out, cache = layer_norm_forward(x)
    assert out.dtype == torch.bfloat16 and cache.rstd.dtype == torch.float32
    ref = F.layer_norm(x.double(), (512,)).to(torch.bfloat16)
    assert (out.double() - ref.double()).abs().max() <= 2 ** -7 * 4  # within a few bf16 ulps


@pytest.mark.parametrize("cls,torch_cls", [(LayerNorm, nn.LayerNorm), (RMSNorm, nn.RMSNorm)])
@pytest.mark.parametrize("explicit", [False, True])
def test_modules_match_torch_modules_forward_and_grads(cls, torch_cls, explicit, gen):
    ours, theirs = cls(24, eps=1e-5, explicit_backward=explicit), torch_cls(24, eps=1e-5)
    with torch.no_grad():
        w = torch.randn(24, generator=gen)
        ours.weight.copy_(w), theirs.weight.copy_(w)
        if getattr(theirs, "bias", None) is not None:
            b = torch.randn(24, generator=gen)
            ours.bias.copy_(b), theirs.bias.copy_(b)
    x = torch.randn(2, 5, 24, generator=gen)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), theirs(x2)
    torch.testing.assert_close(y1, y2)
    (y1 ** 2).sum().backward(), (y2 ** 2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, atol=1e-5, rtol=1e-4)


def test_module_parameter_counts():
    assert sum(p.numel() for p in LayerNorm(10).parameters()) == 20
    assert sum(p.numel() for p in LayerNorm(10, bias=False).parameters()) == 10
    assert sum(p.numel() for p in LayerNorm(10, elementwise_affine=False).parameters()) == 0
    assert sum(p.numel() for p in RMSNorm(10).parameters()) == 10


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: layer_norm_forward([1.0, 2.0]), TypeError, "x must be a torch.Tensor"),
        (lambda: layer_norm_forward(torch.arange(6)), TypeError, "x must be a floating-point"),
        (lambda: layer_norm_forward(torch.tensor(1.0)), ValueError, "at least 1 dimension"),
        (lambda: layer_norm_forward(torch.ones(2, 4), torch.ones(3)), ValueError,
         r"weight must have shape \(4,\)"),
        (lambda: layer_norm_forward(torch.ones(2, 4), None, torch.ones(4, 1)), ValueError,
         r"bias must have shape \(4,\)"),
        (lambda: layer_norm_forward(torch.ones(2, 4), torch.ones(4, dtype=torch.int64)),
         TypeError, "weight must be a floating-point"),
        (lambda: layer_norm_forward(torch.ones(2, 4), eps=-1e-5), ValueError, "eps must be >= 0"),
        (lambda: rms_norm_forward(torch.ones(2, 4), eps="1e-5"), TypeError, "eps must be a number"),
        (lambda: normalize(torch.ones(2, 4), "groupnorm"), ValueError, "kind must be one of"),
        (lambda: norm_backward(torch.ones(3, 4), layer_norm_forward(torch.ones(2, 4))[1]),
         ValueError, r"dout must have shape \(2, 4\)"),
        (lambda: batch_norm_forward(torch.ones(1, 4)), ValueError, "more than one value"),
        (lambda: batch_norm_forward(torch.ones(4)), ValueError, "at least 2 dimension"),
        (lambda: batch_norm_forward(torch.ones(3, 4), training=False), ValueError,
         "running_mean and running_var are required"),
        (lambda: batch_norm_forward(torch.ones(3, 4), torch.zeros(5), torch.ones(5)), ValueError,
         r"running_mean must have shape \(4,\)"),
        (lambda: LayerNorm(4, eps=-1.0), ValueError, "eps must be >= 0"),
        (lambda: BatchNorm(4, momentum=-0.1), ValueError, "momentum must be >= 0"),
    ],
)
def test_bad_input_raises_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
