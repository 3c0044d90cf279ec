"""The LN explorer: its numbers, its static figure and its sliders."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lessons_lib.widgets import (  # noqa: E402
    STEP_NAMES,
    LNExplorer,
    LNSteps,
    example_token,
    ln_explorer,
    ln_steps,
    plot_ln_steps,
    steps_table,
)

TOKEN = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_ln_steps_by_hand():
    s = ln_steps(TOKEN, eps=0.0, gamma=2.0, beta=1.0)
    # mean 3, centered [-2, -1, 0, 3], biased variance (4 + 1 + 0 + 9) / 4 = 3.5
    assert s.mean == pytest.approx(3.0) and s.var == pytest.approx(3.5)
    assert s.centered.tolist() == [-2.0, -1.0, 0.0, 3.0]
    expected = torch.tensor([-2.0, -1.0, 0.0, 3.0], dtype=torch.float64) / math.sqrt(3.5)
    assert torch.allclose(s.normalized, expected)
    assert torch.allclose(s.output, 2.0 * expected + 1.0)
    assert s.rstd == pytest.approx(1 / math.sqrt(3.5))
    assert s.tensors() == (s.x, s.centered, s.normalized, s.output)


def test_ln_steps_shift_and_scale_the_input_first():
    s = ln_steps(TOKEN, shift=5.0, scale=-2.0, eps=0.0)
    assert s.x.tolist() == [3.0, 1.0, -1.0, -7.0]
    assert s.mean == pytest.approx(-1.0)


def test_ln_steps_matches_torch_with_per_feature_gamma_and_beta():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, generator=g, dtype=torch.float64)
    gamma = torch.randn(9, generator=g, dtype=torch.float64)
    beta = torch.randn(9, generator=g, dtype=torch.float64)
    s = ln_steps(x, shift=1.5, scale=0.3, eps=1e-3, gamma=gamma, beta=beta)
    expected = F.layer_norm(0.3 * x + 1.5, (9,), gamma, beta, eps=1e-3)
    assert torch.allclose(s.output, expected, atol=1e-12)


def test_normalized_stage_ignores_shift_and_positive_scale():
    base = ln_steps(TOKEN, eps=0.0)
    moved = ln_steps(TOKEN, shift=-40.0, scale=123.0, eps=0.0)
    assert torch.allclose(base.normalized, moved.normalized, atol=1e-12)


def test_eps_shrinks_a_tiny_token():
    s = ln_steps(TOKEN, scale=1e-3, eps=1e-5)
    var = 3.5e-6
    assert s.normalized.std(correction=0).item() == pytest.approx(math.sqrt(var / (var + 1e-5)))


@pytest.mark.parametrize("args, kwargs, error", [
    ((torch.ones(4, dtype=torch.float64),), {"eps": 0.0}, ValueError),  # constant token, 0/0
    ((torch.ones(2, 3),), {}, ValueError),
    ((torch.ones(1),), {}, ValueError),
    ((torch.arange(4),), {}, TypeError),
    (([1.0, 2.0],), {}, TypeError),
    ((TOKEN,), {"gamma": torch.ones(3)}, ValueError),
    ((TOKEN,), {"beta": "0"}, TypeError),
    ((TOKEN,), {"gamma": math.inf}, ValueError),
    ((TOKEN,), {"shift": math.nan}, ValueError),
    ((TOKEN,), {"scale": "2"}, TypeError),
    ((TOKEN,), {"eps": -1e-5}, ValueError),
])
def test_ln_steps_rejects_bad_arguments(args, kwargs, error):
    with pytest.raises(error):
        ln_steps(*args, **kwargs)


def test_example_token_is_reproducible_and_checked():
    assert torch.equal(example_token(8, 3), example_token(8, 3))
    assert not torch.equal(example_token(8, 3), example_token(8, 4))
    assert example_token(5).shape == (5,) and example_token().dtype == torch.float64
    for kwargs, error in [({"features": 1}, ValueError), ({"seed": -1}, ValueError),
                          ({"features": 2.0}, TypeError)]:
        with pytest.raises(error):
            example_token(**kwargs)


def test_plot_draws_every_stage_with_its_values():
    s = ln_steps(TOKEN, shift=2.0, gamma=1.5, beta=-0.5)
    fig = plot_ln_steps(s)
    axes = fig.get_axes()
    assert len(axes) == 4
    for i, (ax, name, values) in enumerate(zip(axes, STEP_NAMES, s.tensors(), strict=True)):
        heights = [p.get_height() for p in ax.patches]
        assert heights == pytest.approx(values.tolist())
        assert f"({'abcd'[i]}) {name}" in ax.get_xlabel()
        assert ax.get_title() == ""  # the caption is the title
    assert len(axes[0].texts) == 4  # one value per bar
    assert len(plot_ln_steps(s, annotate=False).get_axes()[0].texts) == 0
    with pytest.raises(TypeError):
        plot_ln_steps(TOKEN)


def test_steps_table_lists_the_numbers():
    s = ln_steps(TOKEN, eps=0.0)
    table = steps_table(s)
    assert table.count("<tr>") == 5  # header + 4 stages
    assert "mean μ = 3" in table and "σ² = 3.5" in table
    assert "<td>-2</td>" in table and "<td>6</td>" in table
    with pytest.raises(TypeError):
        steps_table({"x": TOKEN})


def test_explorer_sliders_drive_the_computation():
    explorer = ln_explorer(TOKEN)
    assert isinstance(explorer, LNExplorer) and isinstance(explorer.steps, LNSteps)
    assert set(explorer.controls) == {"shift", "scale", "eps", "gamma", "beta"}
    start = explorer.steps
    explorer.controls["shift"].value = 4.0
    assert torch.allclose(explorer.steps.x, TOKEN + 4.0)
    assert torch.allclose(explorer.steps.normalized, start.normalized, atol=1e-9)
    explorer.controls["gamma"].value = 2.0
    explorer.controls["beta"].value = -1.0
    assert torch.allclose(explorer.steps.output, 2.0 * start.normalized - 1.0, atol=1e-6)
    explorer.controls["eps"].value = 10.0
    assert explorer.steps.eps == pytest.approx(10.0)
    assert explorer.steps.normalized.std(correction=0).item() < 0.6  # eps dominates
    assert "ε = 1.0e+01" in explorer.numbers.value
    assert explorer.values["shift"] == 4.0


def test_explorer_defaults_and_bad_token():
    explorer = ln_explorer()
    assert torch.equal(explorer.x, example_token())
    assert explorer.widget.children[1] is explorer.plot
    with pytest.raises(ValueError):
        ln_explorer(torch.ones(2, 3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        LNExplorer([1.0, 2.0])
