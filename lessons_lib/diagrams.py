"""Block diagrams drawn with matplotlib: a block's layers top to bottom, and its shortcut.

`draw_block(ax, layers, shortcut=..., after_add=...)` draws one plain or residual block in the
style of He et al.'s figures: the input at the top, one box per layer, the addition (a circled
plus) where the shortcut joins, what follows the addition, and the output. Lessons 04 and 05
draw their schematics with it, so a residual block looks the same in every lesson.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.patches import FancyBboxPatch

from lessons_lib._checks import check_int
from lessons_lib.plotting import color

# Box colours by layer type: normalizations orange, activations grey, weight layers blue.
_FACES = {"BN": "#fde3c8", "LN": "#fde3c8", "ReLU": "#e4e4e4"}
_WEIGHT_FACE = "#cfe2f3"
_STEP, _BOX_W, _BOX_H, _R_ADD, _X_MAIN, _TOP = 0.9, 3.0, 0.56, 0.24, 3.0, 8.2


def _face(item: str) -> str:
    return _FACES.get(item.split()[0], _WEIGHT_FACE)


def _arrow(ax: Axes, x0: float, y0: float, x1: float, y1: float, colour: str = "black") -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.1, shrinkA=0, shrinkB=0))


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, face: str, edge: str,
         fontsize: float, lw: float = 1.0) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle="round,pad=0.02,rounding_size=0.1", facecolor=face,
                                edgecolor=edge, lw=lw, zorder=3))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=4)


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def draw_block(
    ax: Axes,
    layers: Sequence[str],
    *,
    shortcut: str | None = None,
    after_add: str | None = None,
    label: str = "",
    ends: tuple[str, str] = ("x", "y"),
    projection: str | None = None,
    branch_label: str | None = None,
    fontsize: float = 10,
    slots: int | None = None,
) -> None:
    """Draw one block on `ax`, top to bottom, and switch the axes off.

    `layers` are the branch's layers in order, one box each ("Linear W1", "BN", "ReLU", ...;
    boxes starting with "BN"/"LN" are orange, "ReLU" grey, others blue). With `shortcut` (the
    text written along the skip path, e.g. "identity: x") the block is residual: a green path
    from the input joins the branch at a circled plus after the last layer; `projection` puts a
    box with that text on the path (a projection shortcut). `after_add` is the layer after the
    addition (e.g. "ReLU" in He et al.'s original block), `ends` the texts at the input and the
    output, `label` a panel label at the top left, and `branch_label` (e.g. "F(x)") a bracket
    beside the branch's layers. `slots` reserves room for that many items (layers, the
    addition and `after_add`), so that panels with fewer items share one scale.
    """
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise TypeError("layers must be a non-empty sequence of layer names, e.g. "
                        "['Linear', 'BN', 'ReLU']")
    for i, item in enumerate(layers):
        _check_text(f"layers[{i}]", item)
    for name, value in (("shortcut", shortcut), ("after_add", after_add),
                        ("projection", projection), ("branch_label", branch_label)):
        if value is not None:
            _check_text(name, value)
    _check_text("label", label)
    if (not isinstance(ends, tuple) or len(ends) != 2
            or not all(isinstance(e, str) for e in ends)):
        raise TypeError(f"ends must be a pair of str (input, output), got {ends!r}")
    if projection is not None and shortcut is None:
        raise ValueError("projection needs a shortcut: a plain block has no skip path to put "
                         "it on")
    if isinstance(fontsize, bool) or not isinstance(fontsize, (int, float)) or fontsize <= 0:
        raise ValueError(f"fontsize must be a positive number, got {fontsize!r}")
    if slots is not None:
        check_int("slots", slots, minimum=1)

    items = list(layers) + (["+"] if shortcut else []) + ([after_add] if after_add else [])
    ys = [_TOP - _STEP * (k + 1) for k in range(len(items))]

    def half(item: str) -> float:
        return _R_ADD if item == "+" else _BOX_H / 2

    ax.text(_X_MAIN, _TOP + 0.05, ends[0], ha="center", va="bottom", fontsize=fontsize)
    prev_y, prev_half = _TOP, 0.0
    for item, y in zip(items, ys, strict=True):
        _arrow(ax, _X_MAIN, prev_y - prev_half, _X_MAIN, y + half(item))
        if item == "+":
            # a marker, not a patch: round whatever the panel's aspect ratio
            ax.plot([_X_MAIN], [y], marker="o", ms=2 * fontsize - 4, mfc="white", mec="black",
                    mew=1.2, zorder=3)
            ax.text(_X_MAIN, y, "+", ha="center", va="center_baseline", fontsize=fontsize + 2,
                    zorder=4)
        else:
            _box(ax, _X_MAIN, y, _BOX_W, _BOX_H, item, _face(item), "black", fontsize)
        prev_y, prev_half = y, half(item)
    y_out = ys[-1] - _STEP
    _arrow(ax, _X_MAIN, prev_y - prev_half, _X_MAIN, y_out + 0.1)
    ax.text(_X_MAIN, y_out, ends[1], ha="center", va="top", fontsize=fontsize)

    if branch_label:  # a bracket on the left of the branch's boxes
        y0, y1 = ys[0] + _BOX_H / 2, ys[len(layers) - 1] - _BOX_H / 2
        xb = _X_MAIN - _BOX_W / 2 - 0.25
        ax.plot([xb + 0.15, xb, xb, xb + 0.15], [y0, y0, y1, y1], color="black", lw=1)
        ax.text(xb - 0.12, (y0 + y1) / 2, branch_label, ha="right", va="center",
                fontsize=fontsize)
    if shortcut:
        green = color("residual")
        y_add, x_skip = ys[len(layers)], _X_MAIN + _BOX_W / 2 + 1.4
        y_split = _TOP - 0.25
        ax.plot([_X_MAIN, x_skip, x_skip], [y_split, y_split, y_add], color=green, lw=2)
        _arrow(ax, x_skip, y_add, _X_MAIN + _R_ADD, y_add, green)
        y_mid = (y_split + y_add) / 2
        if projection:
            _box(ax, x_skip, y_mid, 1.9, 1.0, projection, _WEIGHT_FACE, green, fontsize - 1,
                 lw=1.5)
            y_mid -= 1.9
        ax.text(x_skip + 0.15, y_mid, shortcut, rotation=90, ha="left", va="center",
                fontsize=fontsize - 1, color=green)
    if label:
        ax.text(-0.3, _TOP + 0.9, label, ha="left", va="top", fontsize=fontsize)
    ax.set_xlim(-0.6 if branch_label else -0.4, 7.4)
    n = max(len(items), slots or 0)
    ax.set_ylim(_TOP - _STEP * (n + 1.6), _TOP + 1.0)
    ax.axis("off")
