"""A small CNN with BatchNorm for 1-channel images: fedray's `ModelFactory` protocol.

fedray calls `build(input_shape, num_classes, **model.params)` under a seeded torch RNG. The
BatchNorm running statistics are float buffers, which fedray aggregates with the parameters.
"""

from __future__ import annotations

from torch import nn


def build(
    input_shape: tuple[int, ...], num_classes: int, channels: int = 8, hidden: int = 32
) -> nn.Module:
    c, h, w = input_shape
    # Two 3x3 'same' convolutions, each with BatchNorm and 2x2 max pooling: 8x8 -> 2x2.
    return nn.Sequential(
        nn.Conv2d(c, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * channels * (h // 4) * (w // 4), hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
