"""FusedAddNorm as a drop-in for nn.LayerNorm / nn.RMSNorm, and the op inside the PyTorch stack:
torch.compile (no graph break, same values and gradients), torch.export, autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lessons_lib.kernels import use_interpreter

use_interpreter()  # before Triton is imported: CPU tensors run in the interpreter
pytest.importorskip("triton")

from lessons_lib.kernels import FusedAddNorm, fused_add_norm  # noqa: E402

BACKENDS = ["triton", "reference"]


def _trained(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return module


def _torch_norm(norm: str, n: int, **kwargs) -> nn.Module:
    return nn.LayerNorm(n, **kwargs) if norm == "layernorm" else nn.RMSNorm(n, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("norm", "kwargs"), [
    ("layernorm", {}), ("layernorm", {"bias": False}), ("layernorm", {"eps": 1e-3}),
    ("rmsnorm", {}), ("rmsnorm", {"eps": 1e-5}), ("layernorm", {"elementwise_affine": False}),
], ids=["ln", "ln-no-bias", "ln-eps", "rms-default-eps", "rms-eps", "ln-no-affine"])
def test_loads_a_trained_torch_norm_and_matches_it(backend, norm, kwargs):
    """Same constructor arguments, same defaults (RMSNorm eps None = finfo(dtype).eps), same
    parameter names: the state dict of a trained nn.LayerNorm / nn.RMSNorm loads, and outputs
    and parameter gradients agree."""
    n = 48
    theirs = _trained(_torch_norm(norm, n, **kwargs), seed=7)
    ours = FusedAddNorm(n, norm=norm, backend=backend, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    assert [name for name, _ in ours.named_parameters()] == [
        name for name, _ in theirs.named_parameters()]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, n, generator=gen, requires_grad=True)
    r = torch.randn(2, 5, n, generator=gen)
    y_ours, h = ours(x, r)
    y_theirs = theirs(x + r)
    torch.testing.assert_close(h, x + r)
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
    dy = torch.randn(y_ours.shape, generator=gen)
    grads = [torch.autograd.grad((y * dy).sum(), (x, *module.parameters()))
             for y, module in ((y_ours, ours), (y_theirs, theirs))]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rmsnorm_default_eps_is_torchs(dtype):
    """nn.RMSNorm's eps=None is the epsilon of the dtype it computes in: float32's (1.19e-7)
    for fp32 and bf16 inputs alike. A row of 1e-4s tells it from 1e-6 (the old default, y = 0.1)
    and from bf16's 2**-7 (y = 0.001): y = 1e-4 / sqrt(1e-8 + 1.19e-7) = 0.28."""
    x = torch.full((1, 32), 1e-4).to(dtype)
    for backend in BACKENDS:
        y, _ = FusedAddNorm(32, norm="rmsnorm", backend=backend, dtype=dtype)(x)
        y_torch = nn.RMSNorm(32, dtype=dtype)(x)
        torch.testing.assert_close(y.float(), y_torch.float(), rtol=1e-2, atol=0)
        assert abs(y.float().mean().item() - 0.279) < 0.01, y


def test_reset_parameters_and_meta_device_init():
    """FSDP-style: build on the meta device, materialize, then reset_parameters()."""
    module = FusedAddNorm(16, device="meta")
    assert module.weight.is_meta
    module.to_empty(device="cpu")
    module.reset_parameters()
    assert torch.equal(module.weight, torch.ones(16))
    assert torch.equal(module.bias, torch.zeros(16))
    module = FusedAddNorm(16, norm="rmsnorm", dtype=torch.bfloat16)
    assert module.weight.dtype == torch.bfloat16 and module.bias is None


def test_extra_repr():
    text = repr(FusedAddNorm(64, norm="rmsnorm", residual_dtype=torch.float32))
    assert text.startswith("FusedAddNorm((64,), eps=None, elementwise_affine=True"), text
    assert "norm='rmsnorm'" in text and "residual_dtype=torch.float32" in text, text
    assert "bias=True" in repr(FusedAddNorm(8))


@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_keeps_the_input_dtype(backend):
    """Under autocast the op runs in the dtypes it is given (it has no autocast rule): y has
    the input's dtype (on CUDA, nn.LayerNorm would run in fp32 and return fp32)."""
    module = FusedAddNorm(16, backend=backend)
    x = torch.randn(3, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y32, _ = module(x)
        y16, _ = module(x.bfloat16())
    assert y32.dtype == torch.float32 and y16.dtype == torch.bfloat16


class _Block(nn.Module):
    """A Pre-LN-shaped pair: a sublayer, then the fused add + norm, then another sublayer."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(32, 32)
        self.norm = FusedAddNorm(32, backend=backend)
        self.fc2 = nn.Linear(32, 32)

    def forward(self, x, residual):
        y, h = self.norm(self.fc1(x), residual)
        return h + self.fc2(y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_compile_same_values_and_gradients_no_graph_break(backend):
    torch.manual_seed(0)
    model = _Block(backend)
    with torch.no_grad():
        model.norm.weight.add_(0.3 * torch.randn(32))
        model.norm.bias.add_(0.3 * torch.randn(32))
    x = torch.randn(4, 8, 32, requires_grad=True)
    r = torch.randn(4, 8, 32, requires_grad=True)
    explained = torch._dynamo.explain(model)(x, r)
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained
    compiled = torch.compile(model, fullgraph=True)
    results = []
    for fn in (model, compiled):
        out = fn(x, r)
        grads = torch.autograd.grad(out.square().sum(), (x, r, *model.parameters()))
        results.append((out, grads))
    (out_e, grads_e), (out_c, grads_c) = results
    torch.testing.assert_close(out_c, out_e, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads_c, grads_e, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_torch_export_records_the_op():
    module = FusedAddNorm(32, backend="triton")
    x, r = torch.randn(4, 32), torch.randn(4, 32)
    exported = torch.export.export(module, (x, r))
    targets = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    assert "lessons_lib.fused_add_norm_fwd.default" in targets, targets
    y, h = exported.module()(x, r)
    y_eager, h_eager = fused_add_norm(x, r, module.weight, module.bias, backend="triton")
    torch.testing.assert_close(y, y_eager)
    torch.testing.assert_close(h, h_eager)


def test_fake_implementations_match_the_real_ops():
    """torch.library's own consistency check of the fake (meta) kernels against the real ones,
    with autograd, for the full case and for an fp32 stream without parameters."""
    from torch.library import opcheck

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 5, 40, generator=gen, requires_grad=True)
    r = torch.randn(3, 5, 40, generator=gen, requires_grad=True)
    w = torch.randn(40, generator=gen, requires_grad=True)
    b = torch.randn(40, generator=gen, requires_grad=True)
    op = torch.ops.lessons_lib.fused_add_norm_fwd
    opcheck(op, (x, r, w, b, 1e-5, False, torch.float32, True, True),
            test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    xb = x.detach().bfloat16().requires_grad_()
    opcheck(op, (xb, None, None, None, 1e-6, True, torch.float32, True, True),
            test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
