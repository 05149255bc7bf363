"""The time loop shared by MatlabLSTM and MatlabGRU."""

from __future__ import annotations

import torch
from torch import nn


def hard_sigmoid(v: torch.Tensor) -> torch.Tensor:
    """MATLAB's 'hard-sigmoid': clip(0.2 x + 0.5, 0, 1)."""
    return torch.clamp(0.2 * v + 0.5, 0.0, 1.0)


class MatlabRecurrent(nn.Module):
    """LSTM/GRU on (N, T, C) with MATLAB's activation options.

    Parameters carry nn.LSTM/nn.GRU's names and layouts. MATLAB's
    'softsign' is x / (1 + |x|). Subclasses give the gate count and the step.
    """

    gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bidirectional: bool = False,
        state_activation: str = "tanh",
        gate_activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.directions = ("", "_reverse") if bidirectional else ("",)
        self.state = {
            "tanh": torch.tanh,
            "softsign": nn.functional.softsign,
            "relu": torch.relu,
        }[state_activation]
        self.gate = hard_sigmoid if gate_activation == "hard-sigmoid" else torch.sigmoid
        rows = self.gates * hidden_size
        for suffix in self.directions:
            for name, shape in (
                ("weight_ih_l0", (rows, input_size)),
                ("weight_hh_l0", (rows, hidden_size)),
                ("bias_ih_l0", (rows,)),
                ("bias_hh_l0", (rows,)),
            ):
                self.register_parameter(name + suffix, nn.Parameter(torch.zeros(shape)))

    def run(
        self, x: torch.Tensor, initial: list[tuple[torch.Tensor, ...]]
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, ...]]]:
        """Every direction over x from its initial carry: outputs and final carries."""
        outputs, finals = [], []
        for d, suffix in enumerate(self.directions):
            w_hh = self.get_parameter("weight_hh_l0" + suffix)
            b_hh = self.get_parameter("bias_hh_l0" + suffix)
            inputs = x @ self.get_parameter("weight_ih_l0" + suffix).T
            inputs = inputs + self.get_parameter("bias_ih_l0" + suffix)
            carry = initial[d]
            ys: list[torch.Tensor] = []
            steps = range(x.shape[1] - 1, -1, -1) if suffix else range(x.shape[1])
            for t in steps:
                carry = self.step(inputs[:, t], carry, w_hh, b_hh)
                ys.append(carry[0])
            outputs.append(torch.stack(ys[::-1] if suffix else ys, dim=1))
            finals.append(carry)
        return torch.cat(outputs, dim=2), finals

    def step(
        self,
        gates_x: torch.Tensor,
        carry: tuple[torch.Tensor, ...],
        w_hh: torch.Tensor,
        b_hh: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """One time step: the new carry, hidden state first."""
        raise NotImplementedError
