"""Block diagrams (lessons_lib.diagrams): what draw_block puts on the axes, and bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from lessons_lib.diagrams import draw_block  # noqa: E402
from lessons_lib.plotting import color, use_style  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    use_style()
    yield
    plt.close("all")


def _boxes(ax):
    return [p for p in ax.patches if isinstance(p, FancyBboxPatch)]


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_plain_block_has_one_box_per_layer_and_no_addition():
    _, ax = plt.subplots()
    draw_block(ax, ["Linear W1", "BN", "ReLU"], label="(a) plain", ends=("x", "H(x)"))
    assert len(_boxes(ax)) == 3
    assert "+" not in _texts(ax)
    assert {"Linear W1", "BN", "ReLU", "x", "H(x)", "(a) plain"} <= set(_texts(ax))
    assert not ax.axison
    faces = [b.get_facecolor()[:3] for b in _boxes(ax)]
    assert faces[0] != faces[1] != faces[2]  # weight, norm and activation look different


def test_residual_block_draws_the_shortcut_the_addition_and_what_follows():
    _, ax = plt.subplots()
    draw_block(ax, ["W", "ReLU", "W"], shortcut="identity: x", after_add="ReLU",
               branch_label="F(x)")
    texts = _texts(ax)
    assert texts.count("+") == 1 and "identity: x" in texts and "F(x)" in texts
    assert len(_boxes(ax)) == 4  # three branch layers and the ReLU after the addition
    green = [ln for ln in ax.get_lines() if ln.get_color() == color("residual")]
    assert green, "the skip path is drawn in the residual colour"
    # the addition sits below the last branch layer and above the ReLU after it
    y = {t.get_text(): t.get_position()[1] for t in ax.texts}
    boxes = sorted(b.get_y() for b in _boxes(ax))
    assert boxes[0] < y["+"] < boxes[1]


def test_projection_adds_a_box_on_the_skip_path():
    _, ax = plt.subplots()
    draw_block(ax, ["W", "BN"], shortcut="projection", projection="Linear Ws")
    assert len(_boxes(ax)) == 3 and "Linear Ws" in _texts(ax)


def test_slots_give_panels_with_fewer_layers_the_same_scale():
    _, (a, b) = plt.subplots(1, 2)
    draw_block(a, ["W"] * 6, slots=7)
    draw_block(b, ["W"] * 2, shortcut="x", slots=7)
    assert a.get_ylim() == b.get_ylim()
    _, c = plt.subplots()
    draw_block(c, ["W"] * 2)
    assert c.get_ylim()[0] > a.get_ylim()[0]  # without slots, only the room it needs


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"layers": "W"}, TypeError, "layers must be a non-empty sequence"),
    ({"layers": []}, TypeError, "layers must be a non-empty sequence"),
    ({"layers": ["W", 3]}, TypeError, r"layers\[1\] must be a str"),
    ({"layers": ["W"], "shortcut": 1}, TypeError, "shortcut must be a str"),
    ({"layers": ["W"], "ends": ("x",)}, TypeError, "ends must be a pair"),
    ({"layers": ["W"], "projection": "Ws"}, ValueError, "projection needs a shortcut"),
    ({"layers": ["W"], "fontsize": 0}, ValueError, "fontsize must be a positive number"),
    ({"layers": ["W"], "slots": 0}, ValueError, "slots must be >= 1"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    _, ax = plt.subplots()
    with pytest.raises(error, match=match):
        draw_block(ax, **kwargs)
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        draw_block("ax", ["W"])
