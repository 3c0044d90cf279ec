"""LayerNorm, RMSNorm and BatchNorm from scratch against PyTorch, and the explicit backward."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib.normalization import (
    NORMS,
    BatchNorm,
    LayerNorm,
    RMSNorm,
    batch_norm_forward,
    layer_norm_forward,
    make_norm,
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
    theirs.load_state_dict(ours.state_dict())  # the same parameters and buffers


def test_batch_norm_module_pools_every_axis_but_the_last(gen):
    x = 3.0 + torch.randn(4, 5, 6, generator=gen)
    bn = BatchNorm(6)
    out = bn(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, batch_norm_forward(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_mean, 0.1 * x.reshape(-1, 6).mean(0))
    # a (B, T, C) batch is normalized like the (B * T, C) matrix of its tokens
    torch.testing.assert_close(BatchNorm(6)(x.reshape(20, 6)).reshape(4, 5, 6), out)


def test_batch_norm_module_in_eval_mode_uses_the_running_statistics(gen):
    bn = BatchNorm(3, eps=1e-3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
        bn.weight.copy_(torch.tensor([2.0, 1.0, -1.0]))
        bn.bias.copy_(torch.tensor([0.0, 1.0, 3.0]))
    x = torch.randn(2, 7, 3, generator=gen)
    expected = (x - bn.running_mean) / torch.sqrt(bn.running_var + 1e-3) * bn.weight + bn.bias
    torch.testing.assert_close(bn.eval()(x), expected)
    torch.testing.assert_close(bn(x[:1, :1]), expected[:1, :1])  # one token works in eval


@pytest.mark.parametrize("norm", NORMS)
def test_make_norm_builds_each_layer_of_the_vocabulary(norm, gen):
    layer = make_norm(norm, 8)
    expected = {"layernorm": nn.LayerNorm, "rmsnorm": nn.RMSNorm, "batchnorm": BatchNorm,
                "none": nn.Identity}[norm]
    assert type(layer) is expected
    x = 2.0 + 3.0 * torch.randn(4, 5, 8, generator=gen, dtype=torch.float64)
    out = layer.double()(x)
    assert out.shape == x.shape
    reference = {
        "layernorm": lambda: layer_norm_forward(x, eps=1e-5)[0],
        "rmsnorm": lambda: rms_norm_forward(x, eps=1e-6)[0],
        "batchnorm": lambda: batch_norm_forward(x, eps=1e-5),
        "none": lambda: x,
    }[norm]()
    torch.testing.assert_close(out, reference, atol=1e-10, rtol=1e-10)


def test_make_norm_options():
    assert make_norm("layernorm", 4, eps=0.1).eps == 0.1
    assert make_norm("rmsnorm", 4).eps == 1e-6
    assert make_norm("layernorm", 4, bias=False).bias is None
    assert make_norm("batchnorm", 4, bias=False).bias is None
    assert sum(p.numel() for p in make_norm("batchnorm", 4).parameters()) == 8
    made = make_norm(lambda n: nn.Dropout(0.1), 4)
    assert isinstance(made, nn.Dropout)
    with pytest.raises(ValueError, match="norm must be one of 'layernorm', 'rmsnorm', "
                                         "'batchnorm', 'none'; got 'batch'"):
        make_norm("batch", 4)
    with pytest.raises(TypeError, match=r"norm\(features\) must return an nn.Module"):
        make_norm(lambda n: None, 4)


def test_explicit_backward_sees_an_in_place_change_of_its_input(gen):
    # The cache goes through save_for_backward, so PyTorch's version check fires instead of
    # the backward silently differentiating at the modified input.
    x = torch.randn(3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    for kind in ("layernorm", "rmsnorm"):
        h = x * 1.0  # a non-leaf copy that can be edited in place
        out = normalize_explicit(h, kind, w)
        with torch.no_grad():
            h.mul_(3.0).add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()
        wc = w * 1.0
        out = normalize_explicit(x, kind, wc)
        with torch.no_grad():
            wc.zero_()
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()


def test_modules_check_their_width_and_say_it_in_repr(gen):
    for layer in (LayerNorm(8, elementwise_affine=False), RMSNorm(8), LayerNorm(8)):
        assert repr(layer).startswith(f"{type(layer).__name__}(8, eps=")
        with pytest.raises(ValueError, match="x must have 8 features in its last dimension"):
            layer(torch.randn(2, 7, generator=gen))
    with pytest.raises(ValueError, match="x must have 6 features"):
        BatchNorm(6)(torch.randn(4, 5, generator=gen))


def test_batch_norm_needs_both_running_buffers_or_neither():
    x = torch.randn(8, 3)
    with pytest.raises(ValueError, match="running_var is None but the other running buffer"):
        batch_norm_forward(x, torch.zeros(3), None)
    with pytest.raises(ValueError, match="running_mean is None but the other running buffer"):
        batch_norm_forward(x, None, torch.ones(3))


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
        (lambda: BatchNorm(4, momentum=-0.1), ValueError, r"momentum must be in \[0.0, 1.0\]"),
        (lambda: BatchNorm(4, momentum=1.5), ValueError, r"momentum must be in \[0.0, 1.0\]"),
        (lambda: batch_norm_forward(torch.ones(3, 4), momentum=1.5), ValueError,
         r"momentum must be in \[0.0, 1.0\]"),
        (lambda: LayerNorm(0), ValueError, "normalized_shape must be >= 1"),
        (lambda: LayerNorm(-3), ValueError, "normalized_shape must be >= 1"),
        (lambda: LayerNorm(8.0), TypeError, "normalized_shape must be an int"),
        (lambda: BatchNorm(0), ValueError, "num_features must be >= 1"),
        (lambda: layer_norm_forward(torch.ones(2, 0)), ValueError, "at least one feature"),
        (lambda: normalize_explicit(torch.ones(2, 4), "batchnorm"), ValueError,
         "kind must be one of"),
        (lambda: norm_backward(torch.ones(2, 4), "cache"), TypeError, "cache must be"),
    ],
)
def test_bad_input_raises_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
