"""Figure style shared by every lesson: captions live in the notebook, not in the plot."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

# One colour per concept, so "LayerNorm" is the same colour in every chapter.
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
}

# Sizes are for the page: the book's text column is about 700 CSS px wide at 1280 px, so a
# 6.4-inch figure at 100 px per inch is shown at its own size, and 10 pt text is 14 px there.
# Figures are exported at twice that resolution, so they stay sharp on high-density screens
# and when a reader zooms in on a phone.
_STYLE = {
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
    mpl.rcParams.update(_STYLE)
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


def color(name: str) -> str:
    """The course colour of a concept; a clear error for an unknown one."""
    key = name.lower()
    if key not in COLORS:
        raise KeyError(f"name must be one of {sorted(COLORS)}, got {name!r}")
    return COLORS[key]


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """`plt.subplots` with a width that grows with the number of columns."""
    width = 6.4 if ncols == 1 else min(3.4 * ncols, 12.0)
    kwargs.setdefault("figsize", (width, 3.4 * nrows if nrows > 1 else 3.6))
    return plt.subplots(nrows, ncols, **kwargs)


def moving_average(values, window: int = 10) -> np.ndarray:
    """Moving average of a loss curve over `window` steps (len(values) - window + 1 points).

    Plot it against steps window..len(values); a curve shorter than the window gives no point.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {v.shape}")
    if len(v) < window:
        return v[:0]
    return np.convolve(v, np.ones(window) / window, mode="valid")
