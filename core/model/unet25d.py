"""The product network (preset ``default``): a 2.5-D U-Net that scales its input.

What it changes against the paper's Inception network, and why (each lever is
measured in the issue-12 note):

- Input scaling inside the network: the weights file keeps the HU convention
  (brain-extracted HU clipped to [-20, 100]), and the first thing the network
  does is the fixed affine ``(HU - 40) / 40``, so the first convolution sees
  values in [-1.5, 1.5] instead of [-20, 100]. On raw HU, Adam's first steps
  saturate the sigmoid and training collapses to an empty (or full) output.
- Context: four 2x2 poolings give a receptive field of about 140 pixels, i.e.
  12 cm on the 0.84 mm working grid of the recipe, against 33 pixels (1.4 cm)
  for the Inception network; the skull edge and calcifications are told apart
  from blood by what lies around them.
- 2.5-D: three input channels, the slice and its two neighbours (the
  :class:`~core.model.input.InputConvention` with ``context_slices = 1``).
- Group normalisation after each convolution: stable with the small CPU
  batches, independent of the batch at prediction time, and it adds no running
  statistics to the weights that travel around the ring (only affine weights).

Widths are ``(32, 64, 128, 256, 320) // ds``. Any slice size is accepted: sides
are padded by edge replication to a multiple of 16 and the output cropped back.

:class:`ClickUNet25D` (``unet25d-click``, the product recipe since issue 22) is
the same network with two more input channels: the positive and the negative
clicks of a reviewer, each rendered as a Gaussian of the 3-D distance in mm
(:mod:`core.model.guidance`). With both channels zero it segments on its own,
so one set of weights serves automatic prediction and the click tool (MONAI
Label's DeepEdit scheme). The guidance channels pass unscaled (they are 0..1).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from .unet_parts import encode, pad_to_multiple

WIDTHS = (32, 64, 128, 256, 320)
SIZE_MULTIPLE = 2 ** (len(WIDTHS) - 1)
IN_CHANNELS = 3  # the slice and one neighbour on each side
HU_CENTRE, HU_SCALE = 40.0, 40.0
GROUPS = 8


def check_ds(ds: int) -> None:
    if not isinstance(ds, int) or ds not in (1, 2, 4):
        raise ConfigError(f"ds={ds!r}: the unet25d width divisor must be 1, 2 or 4.")


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(GROUPS, c), c)


class _Block(nn.Module):
    """Two 3x3 convolutions, each followed by group normalisation and ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm1 = _gn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = _gn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(x)))


class UNet25D(nn.Module):
    """Input (N, 3, H, W) HU (slices k-1, k, k+1); output (N, 1, H, W) probability."""

    architecture = "unet25d"
    in_channels = IN_CHANNELS  # CT slices
    guidance_channels = 0  # click channels after the slices
    check_ds = staticmethod(check_ds)

    def __init__(self, ds: int = 2) -> None:
        super().__init__()
        check_ds(ds)
        self.ds = ds
        w = [c // ds for c in WIDTHS]
        self.down = nn.ModuleList()
        cin = IN_CHANNELS + self.guidance_channels
        for c in w:
            self.down.append(_Block(cin, c))
            cin = c
        self.up = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for c in reversed(w[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, c, 2, stride=2))
            self.blocks.append(_Block(2 * c, c))
            cin = c
        self.out = nn.Conv2d(cin, 1, 1)
        with torch.no_grad():
            # Start by predicting "no blood" (p = 0.01, the blood fraction of a
            # training patch is a few percent): the first steps then learn where
            # blood is instead of unlearning a 50% guess everywhere.
            self.out.bias.fill_(-4.6)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        hu = (x[:, :IN_CHANNELS] - HU_CENTRE) / HU_SCALE
        x = torch.cat([hu, x[:, IN_CHANNELS:]], dim=1) if self.guidance_channels else hu
        x, skips = encode(self.down, pad_to_multiple(x, SIZE_MULTIPLE))
        for up, block in zip(self.up, self.blocks):
            x = block(torch.cat([skips.pop(), up(x)], dim=1))
        return self.out(x)[..., :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class ClickUNet25D(UNet25D):
    """Input (N, 5, H, W): slices k-1, k, k+1 in HU, then the positive and the
    negative click guidance (0..1); output (N, 1, H, W) probability."""

    architecture = "unet25d-click"
    guidance_channels = 2
