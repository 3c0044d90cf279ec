"""A small Elman RNN with optional layer normalization, as in Ba et al. (2016), §3.1.

The plain cell computes h_t = relu(W_hh h_{t-1} + W_xh x_t + b). The LN cell normalizes the two
summed inputs separately, h_t = relu(LN(W_hh h_{t-1}) + LN(W_xh x_t) + b), as the paper's
appendix does for its GRU and LSTM (Eqs. 20-22). The statistics are recomputed at every step,
while the gains and the bias are shared by all steps.

Why it is in the library: the recurrent weights are multiplied once per step, so their scale
(`recurrent_gain`) decides whether the plain state explodes or dies out. The LN cell
divides that scale out, so the same experiment shows what LN buys in a recurrent network.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lessons_lib._checks import (
    check_bool,
    check_float_tensor,
    check_generator,
    check_int,
    check_positive,
)
from lessons_lib.models import default_linear
from lessons_lib.normalization import make_norm


class RecurrentCell(nn.Module):
    """One step of a ReLU RNN, with or without layer normalization.

    `recurrent_gain` sets the scale of the recurrent weights, W_hh ~ N(0, gain^2 / hidden):
    gain 1 keeps the state's size roughly constant in a linear network, larger gains make a
    plain RNN's state grow step after step. W_xh ~ N(0, 1 / input_size).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        layer_norm: bool = False,
        recurrent_gain: float = 1.0,
        eps: float = 1e-5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_int("input_size", input_size, minimum=1)
        check_int("hidden_size", hidden_size, minimum=1)
        check_positive("recurrent_gain", recurrent_gain)
        check_positive("eps", eps, allow_zero=True)
        check_bool("layer_norm", layer_norm)
        check_generator("generator", generator)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.layer_norm, self.recurrent_gain, self.eps = layer_norm, float(recurrent_gain), eps
        self.w_hh = nn.Parameter(
            torch.randn(hidden_size, hidden_size, generator=generator)
            * (recurrent_gain / math.sqrt(hidden_size))
        )
        self.w_xh = nn.Parameter(
            torch.randn(hidden_size, input_size, generator=generator) / math.sqrt(input_size)
        )
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        if layer_norm:
            # Gains only: the one shared bias above is the LN bias (two would be redundant).
            self.norm_h = make_norm("layernorm", hidden_size, eps=eps, bias=False)
            self.norm_x = make_norm("layernorm", hidden_size, eps=eps, bias=False)

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """x_t (batch, input_size), h (batch, hidden_size) -> next h (batch, hidden_size)."""
        for name, t, width in (("x_t", x_t, self.input_size), ("h", h, self.hidden_size)):
            check_float_tensor(name, t)
            if t.dim() != 2 or t.shape[-1] != width:
                raise ValueError(f"{name} must have shape (batch, {width}), got "
                                 f"{tuple(t.shape)}")
        if x_t.shape[0] != h.shape[0]:
            raise ValueError(f"x_t and h must have the same batch size, got {x_t.shape[0]} "
                             f"and {h.shape[0]}")
        a_h = h @ self.w_hh.T
        a_x = x_t @ self.w_xh.T
        if self.layer_norm:
            a_h, a_x = self.norm_h(a_h), self.norm_x(a_x)
        return torch.relu(a_h + a_x + self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, layer_norm={self.layer_norm}, "
            f"recurrent_gain={self.recurrent_gain}"
        )


class RNN(nn.Module):
    """Runs a `RecurrentCell` over a (batch, time, input_size) sequence from h_0 = 0."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        layer_norm: bool = False,
        recurrent_gain: float = 1.0,
        eps: float = 1e-5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.cell = RecurrentCell(
            input_size, hidden_size, layer_norm=layer_norm, recurrent_gain=recurrent_gain,
            eps=eps, generator=generator,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return every hidden state, shape (batch, time, hidden_size)."""
        check_float_tensor("x", x, min_ndim=3)
        if x.dim() != 3 or x.shape[-1] != self.cell.input_size:
            raise ValueError(
                f"x must have shape (batch, time, {self.cell.input_size}), got {tuple(x.shape)}"
            )
        if x.shape[1] == 0:
            raise ValueError("x must have at least one time step, got time = 0")
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        states = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            states.append(h)
        return torch.stack(states, dim=1)


class RNNClassifier(nn.Module):
    """An `RNN` read out by a linear layer from its last hidden state: (B, T, F) -> (B, classes).

    `generator` draws every weight: the recurrent and input weights as in `RecurrentCell`, the
    readout with PyTorch's default initialization (`default_linear`). Without it, all come
    from PyTorch's global generator.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_classes: int,
        *,
        layer_norm: bool = False,
        recurrent_gain: float = 1.0,
        eps: float = 1e-5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_int("num_classes", num_classes, minimum=1)
        self.rnn = RNN(
            input_size, hidden_size, layer_norm=layer_norm, recurrent_gain=recurrent_gain,
            eps=eps, generator=generator,
        )
        self.readout = default_linear(hidden_size, num_classes, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, num_classes) of a (batch, time, input_size) sequence."""
        return self.readout(self.rnn(x)[:, -1])
