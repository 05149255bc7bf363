class EmbeddingConcatenation(nn.Module):
    """MATLAB embeddingConcatenationLayer: a learned vector becomes step 1.

    The sequence grows by one step (N×T×C → N×(T+1)×C); the same vector is
    prepended to every observation, like a classification token.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.weight.expand(x.shape[0], 1, -1)
        return torch.cat([first, x], dim=1)
