"""Figure style shared by every lesson: captions live in the notebook, not in the plot.

`use_style()` applies the style, `color(name)` gives a concept its colour in every lesson,
`subplots` sizes a figure, `label_panels` writes (a), (b), ... for the caption to refer to,
`moving_average` smooths a loss curve, and `plot_loss_and_error` draws the two-panel figure of
a training comparison (loss curves of every seed; final error per model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lessons_lib._checks import check_bool, check_int

# One colour per concept, so "LayerNorm" is the same colour in every lesson.
COLORS: dict[str, str] = {
    "layernorm": "#1f77b4",
    "rmsnorm": "#17becf",
    "batchnorm": "#ff7f0e",
    "none": "#7f7f7f",
    "plain": "#d62728",
    "residual": "#2ca02c",
    "pre-ln": "#2ca02c",
    "post-ln": "#9467bd",
    "naive": "#d62728",
    "two-pass": "#1f77b4",
    "welford": "#2ca02c",
    "fused": "#2ca02c",
    "unfused": "#d62728",
    # the placements of BN and ReLU in a residual block (He et al. 2016b)
    "original": "#1f77b4",
    "bn_after_add": "#d62728",
    "relu_before_add": "#ff7f0e",
    "relu_preact": "#8c564b",
    "preact": "#2ca02c",
}
# Colours for series that are no course concept (e.g. four settings of gamma and beta), in
# order: matplotlib's default cycle, which the course style keeps.
SERIES: tuple[str, ...] = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                           "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

# Sizes are for the page: the book's text column is about 700 CSS px wide at 1280 px, so a
# 6.4-inch figure at 100 px per inch is shown at its own size, and 10 pt text is 14 px there.
# Figures are exported at twice that resolution, so they stay sharp on high-density screens
# and when a reader zooms in on a phone.
_STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 200,  # plt.savefig: the same 2x
    "figure.figsize": (6.4, 3.6),
    "figure.constrained_layout.use": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 2,
    "font.size": 10,
    "legend.frameon": False,
    "image.cmap": "RdBu_r",
}


def use_style() -> None:
    """Apply the course's matplotlib style (call once, at the top of a lesson).

    In Jupyter it also makes inline figures PNGs at 2x resolution that declare their 1x size
    (IPython's "retina" format), so the book shows them sharp at the size the fonts were set for.
    """
    mpl.rcParams.update(cast(Any, _STYLE))  # rcParams types its keys as literals
    _export_inline_at_2x()


def _export_inline_at_2x() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # matplotlib without IPython: nothing to configure
        return
    shell = get_ipython()
    if shell is None or "matplotlib_inline" not in str(mpl.get_backend()):
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")  # PNG at 2 x figure.dpi, shown at 1x


def color(name: str | int) -> str:
    """The course colour of a concept (`COLORS`, case-insensitive), or with an int i the i-th
    colour of `SERIES`, for series that are no concept."""
    if isinstance(name, bool) or not isinstance(name, (str, int)):
        raise TypeError(f"name must be a concept name or a series index, got "
                        f"{type(name).__name__}")
    if isinstance(name, int):
        if not 0 <= name < len(SERIES):
            raise ValueError(f"name must be a series index in [0, {len(SERIES)}), got {name}")
        return SERIES[name]
    key = name.lower()
    if key not in COLORS:
        raise ValueError(f"name must be one of {sorted(COLORS)}, got {name!r}")
    return COLORS[key]


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """`plt.subplots` with a width that grows with the number of columns."""
    width = 6.4 if ncols == 1 else min(3.4 * ncols, 12.0)
    kwargs.setdefault("figsize", (width, 3.4 * nrows if nrows > 1 else 3.6))
    return plt.subplots(nrows, ncols, **kwargs)


def moving_average(values: Sequence[float] | np.ndarray, window: int = 10) -> np.ndarray:
    """Moving average of a loss curve over `window` steps (len(values) - window + 1 points).

    Plot it against steps window..len(values); a curve shorter than the window gives no point.
    """
    check_int("window", window, minimum=1)
    if isinstance(values, (str, bytes)):
        raise TypeError("values must be a sequence of numbers, got a string")
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {v.shape}")
    if len(v) < window:
        return v[:0]
    return np.convolve(v, np.ones(window) / window, mode="valid")


_CORNERS = {  # position in axes coordinates, horizontal and vertical alignment
    "upper left": (0.03, 0.97, "left", "top"),
    "upper right": (0.97, 0.97, "right", "top"),
    "lower left": (0.03, 0.03, "left", "bottom"),
    "lower right": (0.97, 0.03, "right", "bottom"),
}


def label_panels(axes: Axes | Sequence[Axes] | np.ndarray, loc: str | Sequence[str] = "upper left"
                 ) -> None:
    """Write (a), (b), ... in a corner of each panel, in order, for the caption to refer to.

    `loc` is one of "upper left", "upper right", "lower left", "lower right", or one per
    panel (pick the corner where no data is).
    """
    panels = list(np.ravel(np.asarray(axes, dtype=object)))
    if not panels or not all(isinstance(ax, Axes) for ax in panels):
        raise TypeError("axes must be a matplotlib Axes or a sequence of them")
    if len(panels) > 26:
        raise ValueError(f"axes must hold at most 26 panels (a to z), got {len(panels)}")
    locs = [loc] * len(panels) if isinstance(loc, str) else list(loc)
    if len(locs) != len(panels):
        raise ValueError(f"loc must give one corner per panel ({len(panels)}), got {len(locs)}")
    for i, (ax, corner) in enumerate(zip(panels, locs, strict=True)):
        if corner not in _CORNERS:
            raise ValueError(f"loc must be one of {', '.join(map(repr, _CORNERS))}; got "
                             f"{corner!r}")
        x, y, ha, va = _CORNERS[corner]
        ax.text(x, y, f"({'abcdefghijklmnopqrstuvwxyz'[i]})", transform=ax.transAxes, ha=ha,
                va=va)


def plot_loss_and_error(
    runs: Mapping[str, Sequence[tuple[Sequence[float], float]]],
    colors: Mapping[str, str],
    *,
    linestyles: Mapping[str, str] | None = None,
    tick_labels: Mapping[str, str] | None = None,
    error_label: str = "training error (%)",
    window: int = 10,
    panel_loc: Sequence[str] = ("lower left", "upper left"),
    value_labels: bool = True,
    stacked: bool = False,
) -> Figure:
    """Two panels comparing trained models: (a) the training loss of every seed, smoothed over
    `window` steps, on a log scale; (b) each model's mean error as a bar, one dot per seed.

    `runs` maps a model's legend label to its seeds' `(loss curve, error)` pairs, the error a
    fraction in [0, 1] (plotted in %). `colors` (and optionally `linestyles`, `tick_labels`)
    map the same labels. `value_labels` writes each bar's mean above it, so that a bar too
    short to see still shows its value; `stacked` puts (b) under (a) instead of beside it, for
    many models or long tick labels. Returns the figure.
    """
    if not runs:
        raise ValueError("runs must hold at least one model")
    for label, seeds in runs.items():
        if label not in colors:
            raise ValueError(f"colors has no entry for {label!r}")
        if not seeds:
            raise ValueError(f"runs[{label!r}] holds no seed")
    check_bool("value_labels", value_labels)
    check_bool("stacked", stacked)
    linestyles = linestyles or {}
    tick_labels = tick_labels or {}
    fig, (ax_a, ax_b) = subplots(2, 1, figsize=(6.4, 6.6)) if stacked else subplots(1, 2)
    for label, seeds in runs.items():
        for i, (loss, _) in enumerate(seeds):
            smooth = moving_average(loss, window)
            ax_a.plot(np.arange(window, window + len(smooth)), smooth, color=colors[label],
                      ls=linestyles.get(label, "-"), lw=1.5, alpha=0.85,
                      label=label if i == 0 else None)
    ax_a.set_yscale("log")
    ax_a.set_xlabel("training step")
    ax_a.set_ylabel(f"training loss (cross-entropy, {window}-step mean)")
    ax_a.legend(fontsize=8)
    means = []
    for i, (label, seeds) in enumerate(runs.items()):
        errors = [100 * err for _, err in seeds]
        means.append(sum(errors) / len(errors))
        ax_b.bar(i, means[-1], color=colors[label], alpha=0.8)
        ax_b.plot([i] * len(errors), errors, "o", color="black", ms=4)
    ax_b.set_xticks(range(len(runs)), [tick_labels.get(label, label) for label in runs],
                    fontsize=9)
    ax_b.set_ylabel(error_label)
    label_panels((ax_a, ax_b), panel_loc)
    if value_labels:
        top = max(max(100 * err for _, err in seeds) for seeds in runs.values())
        ax_b.set_ylim(0, 1.15 * top if top > 0 else 1)
        for i, (mean, seeds) in enumerate(zip(means, runs.values(), strict=True)):
            highest = max(100 * err for _, err in seeds)  # above the bar and its dots
            ax_b.annotate(f"{mean:.1f}%", (i, highest), xytext=(0, 4),
                          textcoords="offset points", ha="center", va="bottom", fontsize=9)
    return fig
