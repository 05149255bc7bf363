"""MATLAB yolov2TransformLayer."""

from __future__ import annotations

import torch
from torch import nn


class YOLOv2Transform(nn.Module):
    """Activations of YOLO v2's raw predictions.

    Each anchor owns the channels k * num_anchors + a for k = iou, x, y, w, h,
    then the class scores: iou, x and y go through a sigmoid, w and h through
    exp, and the class scores of each anchor through a softmax.
    """

    def __init__(self, num_anchors: int) -> None:
        super().__init__()
        self.num_anchors = num_anchors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        z = x.view(n, c // self.num_anchors, self.num_anchors, h, w)
        z = torch.cat(
            [
                torch.sigmoid(z[:, :3]),
                torch.exp(z[:, 3:5]),
                torch.softmax(z[:, 5:], dim=1),
            ],
            dim=1,
        )
        return z.view(n, c, h, w)
