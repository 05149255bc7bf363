"""MATLAB selfAttentionLayer."""

from __future__ import annotations

import torch
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention on (N, T, C) sequences, as MATLAB computes it.

    Each head owns a contiguous block of the key and value channels; scores
    are scaled by 1/sqrt(key channels per head) and softmax-normalized over
    the keys. ``causal`` lets step t attend to steps 1..t only; ``mask``
    (queries by keys, True = may attend) is a fixed mask from MATLAB. A
    ``padding_mask`` (N, T, C) like the input (MATLAB's HasPaddingMaskInput)
    keeps the keys of the steps where its first channel is 0 from being
    attended to. ``with_scores`` also returns the attention weights.
    """

    mask: torch.Tensor | None

    def __init__(
        self,
        input_size: int,
        num_heads: int,
        *,
        key_channels: int | None = None,
        value_channels: int | None = None,
        output_size: int | None = None,
        causal: bool = False,
        mask_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        key_channels = key_channels or input_size
        value_channels = value_channels or key_channels
        self.num_heads, self.causal = num_heads, causal
        self.query = nn.Linear(input_size, key_channels)
        self.key = nn.Linear(input_size, key_channels)
        self.value = nn.Linear(input_size, value_channels)
        self.output = nn.Linear(value_channels, output_size or input_size)
        self.mask = (
            None
            if mask_size is None
            else nn.Buffer(torch.ones(mask_size, dtype=torch.bool))
        )

    def forward(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        q, k, v, mask, causal = self._heads(x, padding_mask)
        y = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal
        )
        return self._merge(y)

    def with_scores(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """forward()'s output and the attention weights (MATLAB's scores).

        The weights are (N, heads, queries, keys): softmax over the keys after
        masking. MATLAB holds them as keys-by-queries-by-heads-by-N, i.e. this tensor
        permuted by (3, 2, 1, 0).
        """
        q, k, v, mask, causal = self._heads(x, padding_mask)
        if causal:
            steps = x.shape[1]
            mask = torch.ones(steps, steps, dtype=torch.bool, device=x.device).tril()
        scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        return self._merge(weights @ v), weights

    def _heads(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
        """Queries, keys and values per head, the boolean mask and the causal flag."""
        n, steps, _ = x.shape

        def heads(v: torch.Tensor) -> torch.Tensor:
            return v.view(n, steps, self.num_heads, -1).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        mask = None if self.mask is None else self.mask[:steps, :steps]
        causal = self.causal
        if padding_mask is not None:
            keys = (padding_mask[..., 0] != 0)[:, None, None, :]  # (N, 1, 1, T)
            if causal:
                keys = (
                    keys
                    & torch.ones(steps, steps, dtype=torch.bool, device=x.device).tril()
                )
                causal = False
            mask = keys if mask is None else keys & mask
        return q, k, v, mask, causal

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        """(N, heads, T, channels per head) → the output projection, (N, T, C)."""
        n, _, steps, _ = y.shape
        out: torch.Tensor = self.output(y.transpose(1, 2).reshape(n, steps, -1))
        return out
