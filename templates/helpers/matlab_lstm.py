"""MATLAB lstmLayer/bilstmLayer with activations nn.LSTM lacks."""

from __future__ import annotations

import torch

from .matlab_recurrent import MatlabRecurrent


class MatlabLSTM(MatlabRecurrent):
    """nn.LSTM's interface and parameters; MATLAB's gate order i, f, g, o."""

    gates = 4

    def forward(
        self,
        x: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        zeros = x.new_zeros(len(self.directions), x.shape[0], self.hidden_size)
        h0, c0 = state if state is not None else (zeros, zeros)
        out, finals = self.run(x, [(h0[d], c0[d]) for d in range(len(self.directions))])
        return out, (
            torch.stack([h for h, _ in finals]),
            torch.stack([c for _, c in finals]),
        )

    def step(
        self,
        gates_x: torch.Tensor,
        carry: tuple[torch.Tensor, ...],
        w_hh: torch.Tensor,
        b_hh: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        h, c = carry
        i, f, g, o = (gates_x + h @ w_hh.T + b_hh).chunk(4, dim=1)
        c = self.gate(f) * c + self.gate(i) * self.state(g)
        return self.gate(o) * self.state(c), c
