"""The kernel tests catch the bugs they are meant to catch: each mutation below (a plausible
one-line bug in the kernel or its autograd glue) is applied to the library's source, and the
tests named next to it must fail against the mutant.

A mutation of `fused_add_norm_triton` is loaded as a fresh module that `api` then uses; one of
`api._backward` or `api.fused_add_norm` is compiled from the edited source of that function.
The same tests pass on the real code (they are part of the suite).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from dataclasses import dataclass

import pytest
import torch

from lessons_lib.kernels import use_interpreter

use_interpreter()  # before Triton is imported: CPU tensors run in the interpreter
pytest.importorskip("triton")

import kernel_cases  # noqa: E402
import test_kernel_fused_add_norm as kernel_tests  # noqa: E402
from kernel_cases import Case, check_case  # noqa: E402

from lessons_lib.kernels import api  # noqa: E402
from lessons_lib.kernels import fused_add_norm_triton as kernels  # noqa: E402

FP32_STREAM = Case(m=9, n=40, dtype=torch.bfloat16, residual_fp32=True)
STRIDED = Case(m=9, n=40, dtype=torch.float32, layout="strided")
STRIDED_NO_RESIDUAL = Case(m=9, n=40, dtype=torch.float16, residual=False, layout="strided")


@dataclass(frozen=True)
class Mutation:
    name: str
    target: str  # "kernel" (the Triton module), or a function of api: "_backward", ...
    old: str
    new: str
    killers: tuple  # callables (monkeypatch) -> None; at least one must fail on the mutant
    isolated: bool = False  # the mutant writes out of bounds: run it in its own process


def _case(case):
    return lambda mp: check_case(case)


_aliasing_test = kernel_tests.test_dresidual_is_dx_when_dtypes_match_and_separate_otherwise


def _grads(grads, residual_fp32=False):
    return lambda mp: kernel_tests.test_requires_grad_combinations(grads, residual_fp32)


MUTATIONS = [
    Mutation("h rounded to x's dtype before an fp32 stream is stored", "kernel",
             "h_out = h.to(ResidualOut.dtype.element_ty)",
             "h_out = h.to(X.dtype.element_ty).to(ResidualOut.dtype.element_ty)",
             (_case(FP32_STREAM),)),
    Mutation("fp32 dresidual rounded through bf16", "kernel",
             "dh.to(DResidualIn.dtype.element_ty)",
             "dh.to(tl.bfloat16).to(DResidualIn.dtype.element_ty)",
             (_case(FP32_STREAM),)),
    Mutation("stride_x_row and stride_res_row swapped", "kernel",
             "x.stride(0),\n            0 if residual is None else residual.stride(0),",
             "0 if residual is None else residual.stride(0),\n            x.stride(0),",
             (_case(STRIDED),)),
    Mutation("stride_dy_row and stride_dres_out_row swapped", "kernel",
             "dy.stride(0),\n            0 if dresidual_out is None else dresidual_out.stride(0),",
             "0 if dresidual_out is None else dresidual_out.stride(0),\n            dy.stride(0),",
             (_case(STRIDED),)),
    Mutation("stride_h_row and stride_dx_row swapped", "kernel",
             "h.stride(0),\n            0 if dx is None else dx.stride(0),",
             "0 if dx is None else dx.stride(0),\n            h.stride(0),",
             (_case(STRIDED_NO_RESIDUAL),), isolated=True),
    Mutation("the residual's gradient keyed on x's needs_input_grad", "_backward",
             "wants_x, wants_res, wants_w, wants_b = ctx.needs_input_grad[:4]",
             "wants_x, wants_w, wants_b = ctx.needs_input_grad[0], *ctx.needs_input_grad[2:4]\n"
             "    wants_res = wants_x",
             (_grads("r"), _grads("r", True))),
    Mutation("the weight's gradient keyed on the bias's needs_input_grad", "_backward",
             "wants_x, wants_res, wants_w, wants_b = ctx.needs_input_grad[:4]",
             "wants_x, wants_res, _, wants_b = ctx.needs_input_grad[:4]\n    wants_w = wants_b",
             (_grads("w"),)),
    Mutation("dweight reduced although the weight is frozen", "_backward",
             "wants_x, wants_res, wants_w, wants_b = ctx.needs_input_grad[:4]",
             "wants_x, wants_res, wants_w, wants_b = ctx.needs_input_grad[:4]\n"
             "    wants_w = ctx.weight_dtype is not None",
             (lambda mp: kernel_tests.test_frozen_parameters_are_not_reduced(mp),)),
    Mutation("strided weight and bias passed as they are", "fused_add_norm",
             "weight = None if weight is None else weight.contiguous()", "pass",
             (lambda mp: kernel_tests.test_strided_and_expanded_parameters("layernorm"),)),
    Mutation("statistics stored under no_grad", "fused_add_norm",
             "needs_grad = torch.is_grad_enabled() and any(", "needs_grad = True or any(",
             (lambda mp: kernel_tests.test_statistics_are_not_stored_without_grad(mp),)),
    Mutation("padding lanes left in the variance", "kernel",
             "centered = tl.where(mask, h - mean[:, None], 0.0)", "centered = h - mean[:, None]",
             (_case(Case(m=5, n=17, dtype=torch.float32, data="shift")),)),
    Mutation("dresidual written separately although it equals dx", "kernel",
             "alias = want_dresidual and residual_dtype == x_dtype", "alias = False",
             (lambda mp: _aliasing_test(),)),
    Mutation("the launch outside the device guard", "kernel",
             "with device_guard(device):\n        launch(\n            kernel, (triton.cdiv(",
             "with contextlib.nullcontext():\n        launch(\n            kernel, (triton.cdiv(",
             (lambda mp: kernel_tests.test_launches_go_through_the_device_guard(mp),)),
    Mutation("idle programs leave their partial-sum row unwritten", "kernel",
             "dw_acc = tl.zeros((BLOCK_N,), dtype=tl.float32)",
             "dw_acc = tl.load(DW + pid * N + cols, mask=col_mask, other=0.0)",
             (lambda mp: kernel_tests.test_partial_sums_are_written_by_every_program(mp, 1000),)),
]


def _mutant_kernels(source: str, tmp_path):
    path = tmp_path / "fused_add_norm_triton_mutant.py"
    path.write_text(source, encoding="utf-8")  # the interpreter reads kernel source from a file
    spec = importlib.util.spec_from_file_location("fused_add_norm_triton_mutant", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _mutant_function(name: str, source: str):
    namespace = dict(vars(api))
    exec(compile(source, f"<mutant of api.{name}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


def _apply(mutation: Mutation, monkeypatch, tmp_path) -> None:
    if mutation.target == "kernel":
        source = inspect.getsource(kernels)
    else:
        source = inspect.getsource(getattr(api, mutation.target))
    assert source.count(mutation.old) == 1, f"{mutation.name}: the code to mutate has changed"
    mutated = source.replace(mutation.old, mutation.new)
    if mutation.target == "kernel":
        mutant = _mutant_kernels(mutated, tmp_path)
        monkeypatch.setattr(api, "_triton_impl", lambda: mutant)
        # tests that patch or read the kernel module by name see the mutant too
        monkeypatch.setattr(kernel_tests, "kernels", mutant)
    else:
        function = _mutant_function(mutation.target, mutated)
        monkeypatch.setattr(api, mutation.target, function)
        if mutation.target == "fused_add_norm":
            for module in (kernel_cases, kernel_tests):
                monkeypatch.setattr(module, "fused_add_norm", function)


def killed(mutation: Mutation, monkeypatch, tmp_path) -> bool:
    """Apply the mutation and run its killers: True if one of them fails."""
    _apply(mutation, monkeypatch, tmp_path)
    for killer in mutation.killers:
        with monkeypatch.context() as mp:
            try:
                killer(mp)
            except Exception:  # noqa: BLE001 - a failing test (assertion or crash) kills it
                return True
    return False


ISOLATED = """
import sys, pathlib, pytest
sys.path.insert(0, {tests!r})
import test_kernel_mutations as T
with pytest.MonkeyPatch.context() as mp:
    print("killed" if T.killed(T.MUTATIONS[{index}], mp, pathlib.Path({tmp!r})) else "survived")
"""


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name.replace(" ", "_"))
def test_the_tests_kill_the_mutation(mutation, monkeypatch, tmp_path):
    if not mutation.isolated:
        assert killed(mutation, monkeypatch, tmp_path), f"mutation survived: {mutation.name}"
        return
    import subprocess
    from pathlib import Path

    script = ISOLATED.format(tests=str(Path(__file__).parent), index=MUTATIONS.index(mutation),
                             tmp=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    # a crash (the out-of-bounds write) fails the real suite as surely as an assertion does
    assert "survived" not in result.stdout, f"mutation survived: {mutation.name}"
    assert "killed" in result.stdout or result.returncode != 0, result.stderr[-2000:]
