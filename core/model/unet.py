"""A 2-D U-Net, the paper's stated future work (the authors' later ``unet.py``).

Four 2x2 max-pool levels, two 3x3 ReLU convolutions per level, upsampling by
nearest neighbour followed by a 2x2 convolution, skip concatenations, dropout
0.5 at the two deepest levels, and a 1x1 sigmoid output. Widths are divided by
``ds`` (the authors used ds=2). Inputs whose sides are not multiples of 16 are
padded by edge replication and the output is cropped back, so the network takes
any slice size like the Inception network does.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from .unet_parts import encode, pad_to_multiple

WIDTHS = (64, 128, 256, 512, 1024)
SIZE_MULTIPLE = 2 ** (len(WIDTHS) - 1)


def check_ds(ds: int) -> None:
    if not isinstance(ds, int) or ds < 1 or any(w % ds for w in WIDTHS):
        raise ConfigError(f"ds={ds!r}: the U-Net width divisor must be a power of two up to 64.")


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    # Keras "same" padding for the even 2x2 kernel pads one pixel after, none before;
    # _same() below reproduces that for k=2.
    return nn.Conv2d(cin, cout, k, padding=k // 2 if k % 2 else 0)


def _same(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if conv.kernel_size[0] % 2 == 0:
        x = F.pad(x, (0, 1, 0, 1))
    return conv(x)


class _Double(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.a = _conv(cin, cout, 3)
        self.b = _conv(cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.b(F.relu(self.a(x))))


class UNet2D(nn.Module):
    """Input (N, 1, H, W) HU slice; output (N, 1, H, W) hematoma probability."""

    architecture = "unet"
    check_ds = staticmethod(check_ds)

    def __init__(self, ds: int = 2) -> None:
        super().__init__()
        check_ds(ds)
        self.ds = ds
        w = [c // ds for c in WIDTHS]
        self.down = nn.ModuleList()
        cin = 1
        for c in w:
            self.down.append(_Double(cin, c))
            cin = c
        self.up_convs = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for c in reversed(w[:-1]):
            self.up_convs.append(_conv(cin, c, 2))
            self.up_blocks.append(_Double(2 * c, c))
            cin = c
        self.pre_out = _conv(cin, 2, 3)
        self.out = _conv(2, 1, 1)
        self.dropout = nn.Dropout(0.5)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        n = len(self.down)
        # dropout on the two deepest levels, as the authors did
        x, skips = encode(
            self.down,
            pad_to_multiple(x, SIZE_MULTIPLE),
            lambda level, y: self.dropout(y) if level >= n - 2 else y,
        )
        for up, block in zip(self.up_convs, self.up_blocks):
            x = F.relu(_same(up, F.interpolate(x, scale_factor=2, mode="nearest")))
            x = block(torch.cat([skips.pop(), x], dim=1))
        x = F.relu(self.pre_out(x))
        return self.out(x)[..., :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))
