class _MatlabRecurrent(nn.Module):
    """LSTM/GRU time loop with MATLAB's activation options.

    Parameters carry nn.LSTM/nn.GRU's names and layouts. MATLAB's
    'hard-sigmoid' is clip(0.2 x + 0.5, 0, 1); 'softsign' is x / (1 + |x|).
    """

    gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        batch_first: bool = True,
        bidirectional: bool = False,
        state_activation: str = "tanh",
        gate_activation: str = "sigmoid",
        reset_gate: str = "after-multiplication",
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.directions = ("", "_reverse") if bidirectional else ("",)
        self.reset_gate = reset_gate
        self.state = {"tanh": torch.tanh, "softsign": F.softsign, "relu": torch.relu}[
            state_activation
        ]
        self.gate = torch.sigmoid
        if gate_activation == "hard-sigmoid":
            self.gate = lambda v: torch.clamp(0.2 * v + 0.5, 0.0, 1.0)
        rows = self.gates * hidden_size
        for suffix in self.directions:
            self.register_parameter(f"weight_ih_l0{suffix}", nn.Parameter(torch.zeros(rows, input_size)))
            self.register_parameter(f"weight_hh_l0{suffix}", nn.Parameter(torch.zeros(rows, hidden_size)))
            self.register_parameter(f"bias_ih_l0{suffix}", nn.Parameter(torch.zeros(rows)))
            self.register_parameter(f"bias_hh_l0{suffix}", nn.Parameter(torch.zeros(rows)))

    def forward(self, x: torch.Tensor, state=None):
        n, steps = x.shape[0], x.shape[1]
        outputs, finals = [], []
        for d, suffix in enumerate(self.directions):
            w_ih = getattr(self, f"weight_ih_l0{suffix}")
            w_hh = getattr(self, f"weight_hh_l0{suffix}")
            b_ih = getattr(self, f"bias_ih_l0{suffix}")
            b_hh = getattr(self, f"bias_hh_l0{suffix}")
            carry = self._initial(state, d, n, x)
            inputs = x @ w_ih.T + b_ih
            ys = [None] * steps
            order = range(steps - 1, -1, -1) if suffix else range(steps)
            for t in order:
                carry = self.step(inputs[:, t], carry, w_hh, b_hh)
                ys[t] = carry[0]
            outputs.append(torch.stack(ys, dim=1))
            finals.append(carry)
        out = torch.cat(outputs, dim=2)
        return out, self._final(finals)


class MatlabLSTM(_MatlabRecurrent):
    gates = 4

    def _initial(self, state, d, n, x):
        if state is None:
            zeros = x.new_zeros(n, self.hidden_size)
            return zeros, zeros
        return state[0][d], state[1][d]

    def _final(self, finals):
        return torch.stack([h for h, _ in finals]), torch.stack([c for _, c in finals])

    def step(self, gates_x, carry, w_hh, b_hh):
        h, c = carry
        i, f, g, o = (gates_x + h @ w_hh.T + b_hh).chunk(4, dim=1)
        c = self.gate(f) * c + self.gate(i) * self.state(g)
        return self.gate(o) * self.state(c), c


class MatlabGRU(_MatlabRecurrent):
    gates = 3

    def _initial(self, state, d, n, x):
        return (x.new_zeros(n, self.hidden_size) if state is None else state[d],)

    def _final(self, finals):
        return torch.stack([h for (h,) in finals])

    def step(self, gates_x, carry, w_hh, b_hh):
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
