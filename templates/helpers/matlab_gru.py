"""MATLAB gruLayer with activations or a reset-gate mode nn.GRU lacks."""

from __future__ import annotations

import torch

from .matlab_recurrent import MatlabRecurrent


class MatlabGRU(MatlabRecurrent):
    """nn.GRU's interface and parameters; MATLAB's gate order r, z, h.

    ``reset_gate`` 'before-multiplication' applies the reset gate to the
    hidden state before the recurrent weights (nn.GRU does it after).
    """

    gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bidirectional: bool = False,
        state_activation: str = "tanh",
        gate_activation: str = "sigmoid",
        reset_gate: str = "after-multiplication",
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            bidirectional=bidirectional,
            state_activation=state_activation,
            gate_activation=gate_activation,
        )
        self.reset_gate = reset_gate

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = x.new_zeros(len(self.directions), x.shape[0], self.hidden_size)
        out, finals = self.run(x, [(state[d],) for d in range(len(self.directions))])
        return out, torch.stack([h for (h,) in finals])

    def step(
        self,
        gates_x: torch.Tensor,
        carry: tuple[torch.Tensor, ...],
        w_hh: torch.Tensor,
        b_hh: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        (h,) = carry
        x_r, x_z, x_n = gates_x.chunk(3, dim=1)
        w_r, w_z, w_n = w_hh.chunk(3, dim=0)
        b_r, b_z, b_n = b_hh.chunk(3)
        r = self.gate(x_r + h @ w_r.T + b_r)
        z = self.gate(x_z + h @ w_z.T + b_z)
        if self.reset_gate == "before-multiplication":
            n = self.state(x_n + (r * h) @ w_n.T + b_n)
        else:
            n = self.state(x_n + r * (h @ w_n.T + b_n))
        return ((1 - z) * n + z * h,)
