"""Interactive explorers for the lessons, each with a static twin for the published book.

The book is a static site: an ipywidgets slider shows up there, but its Python callback never
runs. So every explorer here comes in two parts. A pure function computes the numbers. A
plotting function draws them for given parameter values, and the book uses that figure. The
widget only connects sliders to those two functions, so the live explorer and the book's
figure draw the same thing.

`ln_explorer()` follows one token through LayerNorm: input -> centered -> normalized -> scaled
and shifted. Sliders control a shift and a scale applied to the input, and ε, γ and β.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from lessons_lib._checks import check_float_tensor, check_int, check_number, check_positive
from lessons_lib.plotting import color, subplots

STEP_NAMES = ("input", "centered", "normalized", "scaled & shifted")


@dataclass(frozen=True)
class LNSteps:
    """One token's way through LayerNorm, every intermediate kept (float64, shape (C,))."""

    x: torch.Tensor  # the input, after the explorer's shift and scale
    centered: torch.Tensor  # x - mean
    normalized: torch.Tensor  # (x - mean) / sqrt(var + eps)
    output: torch.Tensor  # gamma * normalized + beta
    mean: float
    var: float  # biased variance (divide by C), as LayerNorm uses
    eps: float
    gamma: torch.Tensor  # (C,)
    beta: torch.Tensor  # (C,)

    @property
    def rstd(self) -> float:
        """1 / sqrt(var + eps): what the centered token is multiplied by."""
        return 1.0 / math.sqrt(self.var + self.eps)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The four stages, in the order of `STEP_NAMES`."""
        return self.x, self.centered, self.normalized, self.output


def _as_param(name: str, value: float | torch.Tensor, size: int) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        check_float_tensor(name, value, min_ndim=0)
        if tuple(value.shape) not in ((size,), ()):
            raise ValueError(f"{name} must be a number or have shape ({size},), got "
                             f"{tuple(value.shape)}")
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} must be finite, got {value}")
        return value.detach().to(torch.float64).expand(size).clone()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}")
    return torch.full((size,), check_number(name, value), dtype=torch.float64)


def ln_steps(
    x: torch.Tensor,
    *,
    shift: float = 0.0,
    scale: float = 1.0,
    eps: float = 1e-5,
    gamma: float | torch.Tensor = 1.0,
    beta: float | torch.Tensor = 0.0,
) -> LNSteps:
    """LayerNorm of the token `scale * x + shift`, step by step, in float64.

    `x` is one token, shape (C,) with C >= 2. `gamma` and `beta` are numbers (the same for
    every feature) or (C,) tensors. The variance is the biased one and ε sits inside the square
    root, as in `torch.nn.LayerNorm`.
    """
    check_float_tensor("x", x)
    if x.dim() != 1 or x.shape[0] < 2:
        raise ValueError(f"x must be one token of shape (C,) with C >= 2, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite, got a token with NaN or infinity")
    shift = check_number("shift", shift)
    scale = check_number("scale", scale)
    check_positive("eps", eps, allow_zero=True)
    c = x.shape[0]
    g, b = _as_param("gamma", gamma, c), _as_param("beta", beta, c)
    xs = x.detach().to(torch.float64) * scale + shift
    mean = xs.mean()
    centered = xs - mean
    var = (centered * centered).mean()
    if var.item() + eps == 0.0:
        raise ValueError("the token is constant and eps = 0: its normalization is 0/0; use eps > 0")
    normalized = centered / torch.sqrt(var + eps)
    return LNSteps(xs, centered, normalized, g * normalized + b, mean.item(), var.item(),
                   float(eps), g, b)


def example_token(features: int = 8, seed: int = 0) -> torch.Tensor:
    """A reproducible token for the explorer: 3 + 2 N(0, 1), float64, shape (features,)."""
    check_int("features", features, minimum=2)
    check_int("seed", seed)
    gen = torch.Generator().manual_seed(seed)
    return 3.0 + 2.0 * torch.randn(features, generator=gen, dtype=torch.float64)


def _fmt(value: float, spread: float) -> str:
    """3 significant digits, with rounding noise (relative to `spread`) shown as 0."""
    if abs(value) <= 1e-9 * max(abs(spread), 1e-300):
        return "0"
    return f"{value:.3g}"


def plot_ln_steps(steps: LNSteps, *, annotate: bool = True) -> Figure:
    """Draw the four stages of `steps` as bar charts, two by two; return the figure.

    Each panel marks the token's mean (solid line) and mean ± standard deviation (dotted),
    and states both under its axis. With `annotate`, each bar carries its value, on a white
    ground so that the lines behind it do not cross it. Panels are labelled (a)-(d) on their
    x-axis, so a caption can refer to them; the figure has no title. Two panels per row keep
    the labels readable in a book's text column.
    """
    if not isinstance(steps, LNSteps):
        raise TypeError(f"steps must be an LNSteps (from ln_steps), got {type(steps).__name__}")
    c = steps.x.shape[0]
    fig, grid = subplots(2, 2, figsize=(6.4, 5.4))
    axes = list(grid.flat)
    k = torch.arange(1, c + 1).numpy()
    colors = (color("none"), color("none"), color("layernorm"), color("rmsnorm"))
    for i, (ax, name, vals, col) in enumerate(zip(axes, STEP_NAMES, steps.tensors(), colors,
                                                  strict=True)):
        v = vals.numpy()
        mu, sd = float(v.mean()), float(v.std())
        ax.bar(k, v, color=col, alpha=0.85, zorder=2)
        ax.axhline(0.0, color="black", lw=0.8, zorder=1)
        ax.axhline(mu, color="black", lw=1.5, zorder=1)
        for s in (mu - sd, mu + sd):
            ax.axhline(s, color="black", lw=1.0, ls=":", zorder=1)
        lo, hi = min(v.min(), mu - sd, 0.0), max(v.max(), mu + sd, 0.0)
        pad = 0.2 * (hi - lo) if hi > lo else 1.0
        ax.set_ylim(lo - pad, hi + pad)
        if annotate and c <= 16:
            for kk, vv in zip(k, v, strict=True):
                ax.annotate(_fmt(vv, hi - lo), (kk, vv), ha="center", fontsize=7, zorder=3,
                            va="bottom" if vv >= 0 else "top",
                            xytext=(0, 2 if vv >= 0 else -2), textcoords="offset points",
                            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"})
        ax.set_xlabel(f"feature index\n({'abcd'[i]}) {name}: "
                      f"mean {_fmt(mu, sd)}, std {_fmt(sd, sd)}")
        ax.set_xticks(k if c <= 16 else k[:: max(1, c // 8)])
    for ax in axes[::2]:
        ax.set_ylabel("value (unitless)")
    return fig


def steps_table(steps: LNSteps) -> str:
    """The numbers of `steps` as an HTML table: one row per stage, one column per feature."""
    if not isinstance(steps, LNSteps):
        raise TypeError(f"steps must be an LNSteps (from ln_steps), got {type(steps).__name__}")
    c = steps.x.shape[0]
    head = "".join(f"<th>x{k}</th>" for k in range(1, c + 1))
    rows = [f"<tr><th>stage</th>{head}<th>mean</th><th>std</th></tr>"]
    for name, vals in zip(STEP_NAMES, steps.tensors(), strict=True):
        cells = "".join(f"<td>{v:.3g}</td>" for v in vals.tolist())
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}"
                    f"<td>{vals.mean().item():.3g}</td><td>{vals.std(correction=0).item():.3g}</td>"
                    "</tr>")
    summary = (f"mean μ = {steps.mean:.4g}, biased variance σ² = {steps.var:.4g}, "
               f"ε = {steps.eps:.1e}, 1/√(σ²+ε) = {steps.rstd:.4g}")
    return f"<p>{html.escape(summary)}</p><table>{''.join(rows)}</table>"


class LNExplorer:
    """The live explorer: sliders -> `ln_steps` -> `plot_ln_steps` and `steps_table`.

    Display it as the last expression of a cell. `controls` maps "shift", "scale", "eps",
    "gamma", "beta" to their sliders, and `steps` is what is shown now, so code (and tests)
    can move a slider and read the result.
    """

    def __init__(self, x: torch.Tensor | None = None) -> None:
        import ipywidgets as w

        if x is not None:
            check_float_tensor("x", x)
        self.x = example_token() if x is None else x.detach().to(torch.float64)
        ln_steps(self.x)  # validate x once, before building any widget
        style = {"description_width": "initial"}
        self.controls = {
            "shift": w.FloatSlider(value=0.0, min=-10.0, max=10.0, step=0.1,
                                   description="shift input by", style=style),
            "scale": w.FloatLogSlider(value=1.0, base=10, min=-3, max=2, step=0.1,
                                      description="scale input by", style=style),
            "eps": w.FloatLogSlider(value=1e-5, base=10, min=-8, max=1, step=0.5,
                                    description="ε", style=style),
            "gamma": w.FloatSlider(value=1.0, min=-3.0, max=3.0, step=0.1,
                                   description="γ (all features)", style=style),
            "beta": w.FloatSlider(value=0.0, min=-3.0, max=3.0, step=0.1,
                                  description="β (all features)", style=style),
        }
        self.plot = w.Output()
        self.numbers = w.HTML()
        self.widget = w.VBox([w.HBox([w.VBox(list(self.controls.values()))]), self.plot,
                              self.numbers])
        for slider in self.controls.values():
            slider.observe(self._update, names="value")
        self._update()

    @property
    def values(self) -> dict[str, float]:
        """The sliders' current values, by name."""
        return {name: slider.value for name, slider in self.controls.items()}

    def _update(self, change: object = None) -> None:
        from IPython.display import display

        self.steps = ln_steps(self.x, **self.values)
        self.numbers.value = steps_table(self.steps)
        with self.plot:
            self.plot.clear_output(wait=True)
            fig = plot_ln_steps(self.steps)
            display(fig)
            plt.close(fig)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def ln_explorer(x: torch.Tensor | None = None) -> LNExplorer:
    """An `LNExplorer` for token `x` (default: `example_token()`); show it in a notebook."""
    return LNExplorer(x)
