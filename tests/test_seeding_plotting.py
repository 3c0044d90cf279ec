"""seed_everything makes runs repeatable; the plotting helpers apply the course style; the
summary numbers a lesson prints."""

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lessons_lib.plotting import (  # noqa: E402
    COLORS,
    SERIES,
    color,
    label_panels,
    plot_loss_and_error,
    subplots,
    use_style,
)
from lessons_lib.seeding import seed_everything  # noqa: E402
from lessons_lib.stats import max_diff, seed_range, spread  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_determinism_and_close_figures():
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)
    plt.close("all")


def test_seed_everything_repeats_all_generators():
    g1 = seed_everything(7)
    a = (torch.randn(3), np.random.rand(3), torch.randn(2, generator=g1))
    g2 = seed_everything(7)
    b = (torch.randn(3), np.random.rand(3), torch.randn(2, generator=g2))
    torch.testing.assert_close(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    torch.testing.assert_close(a[2], b[2])
    seed_everything(8)
    assert not torch.equal(torch.randn(3), b[0])


def test_seed_everything_switches_deterministic_algorithms_on_and_off():
    torch.use_deterministic_algorithms(False)
    seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()  # a warning, not an error
    seed_everything(0, deterministic=False)  # undoes the earlier True
    assert not torch.are_deterministic_algorithms_enabled()
    seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled()


def test_seed_everything_accepts_numpy_integers_and_returns_a_seeded_generator():
    g = seed_everything(np.int64(5))
    assert torch.equal(torch.randn(3, generator=g),
                       torch.randn(3, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("bad,error", [(-1, ValueError), (1.5, TypeError), (True, TypeError),
                                       ("0", TypeError), (2**64, ValueError)])
def test_seed_everything_rejects_bad_seed(bad, error):
    with pytest.raises(error, match="seed must be"):
        seed_everything(bad)
    with pytest.raises(TypeError, match="deterministic must be a bool"):
        seed_everything(0, deterministic=1)


def test_style_and_colors():
    use_style()
    assert mpl.rcParams["axes.spines.top"] is False
    assert mpl.rcParams["lines.linewidth"] == 2
    assert color("LayerNorm") == COLORS["layernorm"]
    assert color("preact") == COLORS["preact"] and color(3) == SERIES[3] == "#d62728"
    with pytest.raises(ValueError, match="name must be one of"):
        color("no-such-thing")
    with pytest.raises(ValueError, match="series index"):
        color(len(SERIES))
    with pytest.raises(TypeError, match="name must be a concept name"):
        color(None)
    fig, axes = subplots(1, 3)
    assert len(axes) == 3 and fig.get_size_inches()[0] > 6.4


def test_label_panels_writes_letters_in_the_chosen_corners():
    fig, axes = subplots(1, 3)
    label_panels(axes, ["upper left", "lower right", "upper right"])
    texts = [ax.texts[0] for ax in axes]
    assert [t.get_text() for t in texts] == ["(a)", "(b)", "(c)"]
    assert texts[0].get_position() == (0.03, 0.97) and texts[0].get_va() == "top"
    assert texts[1].get_position() == (0.97, 0.03) and texts[1].get_ha() == "right"
    assert all(t.get_transform() == ax.transAxes for t, ax in zip(texts, axes, strict=True))
    with pytest.raises(ValueError, match="one corner per panel"):
        label_panels(axes, ["upper left"])
    with pytest.raises(ValueError, match="loc must be one of"):
        label_panels(axes[0], "middle")
    with pytest.raises(TypeError, match="matplotlib Axes"):
        label_panels([1, 2])


def test_plot_loss_and_error_draws_every_seed_and_the_mean_error():
    runs = {"plain": [([3.0] * 20, 0.5), ([2.0] * 20, 0.3)], "residual": [([1.0] * 20, 0.1)]}
    fig = plot_loss_and_error(runs, {"plain": color("plain"), "residual": color("residual")},
                              linestyles={"plain": ":"}, tick_labels={"plain": "plain net"},
                              error_label="error (%)")
    ax_a, ax_b = fig.get_axes()
    lines = ax_a.get_lines()
    assert len(lines) == 3 and lines[0].get_linestyle() == ":"
    assert lines[0].get_xdata().tolist() == list(range(10, 21))  # a 10-step moving average
    assert ax_a.get_yscale() == "log"
    heights = [p.get_height() for p in ax_b.patches]
    assert heights == pytest.approx([40.0, 10.0])
    assert [t.get_text() for t in ax_b.get_xticklabels()] == ["plain net", "residual"]
    assert ax_b.get_ylabel() == "error (%)"
    assert [ax.texts[0].get_text() for ax in (ax_a, ax_b)] == ["(a)", "(b)"]
    with pytest.raises(ValueError, match="colors has no entry for 'residual'"):
        plot_loss_and_error(runs, {"plain": "red"})


def test_max_diff_spread_and_seed_range():
    assert max_diff(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 0.0])) == 2.0
    assert max_diff(torch.zeros(2, 3), torch.zeros(3)) == 0.0  # broadcasts
    with pytest.raises(ValueError, match="broadcastable"):
        max_diff(torch.zeros(2), torch.zeros(3))
    with pytest.raises(TypeError, match="b must be a torch.Tensor"):
        max_diff(torch.zeros(2), [0.0, 0.0])
    assert spread([0.1, 0.2, 0.6]) == "0.300 [0.100, 0.600]"
    assert spread(np.array([1.0, 3.0]), "{:.1f}") == "2.0 [1.0, 3.0]"
    assert seed_range([37, 40, 38], "{}") == "37 to 40"  # ints stay ints
    assert seed_range([0.1234, 0.1236], "{:.2f}") == "0.12"
    with pytest.raises(ValueError, match="at least one number"):
        spread([])
    with pytest.raises(TypeError, match=r"values\[1\] must be a number"):
        seed_range([1.0, "2"], "{}")
    with pytest.raises(TypeError, match="fmt must be a format string"):
        spread([1.0], 3)


def test_moving_average():
    from lessons_lib.plotting import moving_average

    np.testing.assert_allclose(moving_average([1, 2, 3, 4, 5], window=2), [1.5, 2.5, 3.5, 4.5])
    assert moving_average([1.0, 2.0], window=3).shape == (0,)
    with pytest.raises(ValueError, match="window must be >= 1"):
        moving_average([1.0], window=0)
    with pytest.raises(TypeError, match="window must be an int"):
        moving_average([1.0], window=True)
    with pytest.raises(ValueError, match="values must be one-dimensional"):
        moving_average([[1.0, 2.0]], window=1)


def test_markdown_table():
    from lessons_lib.display import markdown_table

    assert markdown_table(["a", "b"], [[1, 2.5]]) == "| a | b |\n|---|---|\n| 1 | 2.5 |"
    with pytest.raises(ValueError, match=r"rows\[0\] has 1 values, expected 2"):
        markdown_table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="header must name at least one column"):
        markdown_table([], [])


def test_markdown_table_escapes_pipes():
    from lessons_lib.display import markdown_table

    assert markdown_table(["a|b"], [["x|y"]]) == "| a\\|b |\n|---|\n| x\\|y |"


def test_numbered_table_has_caption_name_and_both_renderings(monkeypatch):
    import IPython.display

    from lessons_lib import display as d

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw: shown.append(obj))
    d.show_table(["loss"], [["**0.1**"]], caption="Final loss (outline 表13).", name="tab-07-x")
    bundle = shown[0]
    md = bundle["text/markdown"]
    assert md.startswith(":::{table} Final loss (outline 表13).\n:name: tab-07-x")
    assert bundle["text/markdown"].endswith(":::")
    assert "<caption>Final loss (outline 表13).</caption>" in bundle["text/html"]
    assert "<td><b>0.1</b></td>" in bundle["text/html"]
    with pytest.raises(ValueError, match="both caption and name"):
        d.show_table(["a"], [[1]], caption="x")
    with pytest.raises(ValueError, match="name must look like"):
        d.show_table(["a"], [[1]], caption="x", name="Table 1")
    with pytest.raises(ValueError, match="caption must be"):
        d.show_table(["a"], [[1]], caption="two\nlines", name="tab-01-a")
