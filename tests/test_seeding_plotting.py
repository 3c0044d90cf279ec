"""seed_everything makes runs repeatable; the plotting helpers apply the course style."""

import matplotlib as mpl
import numpy as np
import pytest
import torch

from lessons_lib.plotting import COLORS, color, subplots, use_style
from lessons_lib.seeding import seed_everything


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


@pytest.mark.parametrize("bad,error", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_seed_everything_rejects_bad_seed(bad, error):
    with pytest.raises(error, match="seed must be"):
        seed_everything(bad)


def test_style_and_colors():
    use_style()
    assert mpl.rcParams["axes.spines.top"] is False
    assert mpl.rcParams["lines.linewidth"] == 2
    assert color("LayerNorm") == COLORS["layernorm"]
    with pytest.raises(KeyError, match="name must be one of"):
        color("no-such-thing")
    fig, axes = subplots(1, 3)
    assert len(axes) == 3 and fig.get_size_inches()[0] > 6.4


def test_moving_average():
    from lessons_lib.plotting import moving_average

    np.testing.assert_allclose(moving_average([1, 2, 3, 4, 5], window=2), [1.5, 2.5, 3.5, 4.5])
    assert moving_average([1.0, 2.0], window=3).shape == (0,)
    with pytest.raises(ValueError, match="window must be a positive int"):
        moving_average([1.0], window=0)
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
