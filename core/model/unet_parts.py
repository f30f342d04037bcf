"""What the two U-Nets share: padding to the pooling grid and the encoder walk.

The paper's U-Net (:mod:`.unet`) and the product's 2.5-D U-Net (:mod:`.unet25d`)
differ in their blocks (plain ReLU convolutions against group-normalised ones),
their upsampling and their dropout, but both pad a slice to a multiple of
``2 ** levels`` and walk down the same way: a block per level, its output kept
for the skip connection, a 2x2 max pool between levels. The walk lives here so
that the two networks cannot drift apart on it. The blocks stay attributes of
each network (``down.N``), so the tensor names in weights files do not change.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``x`` padded at the bottom/right by edge replication so both sides are
    multiples of ``multiple`` (the output is cropped back by the caller)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def encode(
    down: nn.ModuleList, x: torch.Tensor, after_block: Callable[[int, torch.Tensor], torch.Tensor] | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run the encoder ``down`` (one block per level): returns the deepest
    features and the skip tensors of the other levels, shallowest first.
    ``after_block(level, x)`` may change a block's output (the paper's dropout)."""
    skips: list[torch.Tensor] = []
    last = len(down) - 1
    for level, block in enumerate(down):
        x = block(x)
        if after_block is not None:
            x = after_block(level, x)
        if level < last:
            skips.append(x)
            x = F.max_pool2d(x, 2)
    return x, skips
