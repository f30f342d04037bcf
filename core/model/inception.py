"""The paper's 2-D fully convolutional Inception network (its Figure 2).

Built as the authors' public code builds it (``models/inception.py``): stride
1 and "same" padding everywhere, no strided pooling, no upsampling, no batch
norm, so the network accepts any input size (trained on patches, run on whole
slices). Every width is divided by ``ds`` (the paper's runs used ds=4).

This module is the *reference* definition: training uses it, and the fast
inference engine (:mod:`core.model.fast`) is tested against it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError

# Widths before division by ds, in the order the layers run.
STEM_WIDTHS = (64, 64)  # conv 9x9, conv 7x7
BRANCH_WIDTHS = {  # one modified inception module
    "b1x1": 64,  # 1x1
    "b3x3_reduce": 96,
    "b3x3": 128,  # 1x1 -> 3x3
    "b5x5_reduce": 16,
    "b5x5": 32,  # 1x1 -> 5x5
    "avg_proj": 32,  # avgpool 3x3 s1 -> 1x1
    "max_proj": 32,  # maxpool 3x3 s1 -> 1x1
}
HEAD_WIDTHS = (32, 16)  # conv 5x5, conv 3x3, then conv 1x1 -> 1 channel
N_MODULES = 3
RECEPTIVE_RADIUS = 4 + 3 + N_MODULES * 2 + 2 + 1  # 16 pixels: 33x33 receptive field


def check_ds(ds: int) -> None:
    widths = STEM_WIDTHS + tuple(BRANCH_WIDTHS.values()) + HEAD_WIDTHS
    if not isinstance(ds, int) or ds < 1 or any(w % ds for w in widths):
        raise ConfigError(
            f"ds={ds!r}: the width divisor must be a positive integer that "
            f"divides every layer width (1, 2, 4, 8 or 16)."
        )


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=1, padding=k // 2)


class InceptionModule(nn.Module):
    """Concatenation of five ReLU branches (the paper's modified module)."""

    def __init__(self, cin: int, ds: int) -> None:
        super().__init__()
        w = {k: v // ds for k, v in BRANCH_WIDTHS.items()}
        self.b1x1 = _conv(cin, w["b1x1"], 1)
        self.b3x3_reduce = _conv(cin, w["b3x3_reduce"], 1)
        self.b3x3 = _conv(w["b3x3_reduce"], w["b3x3"], 3)
        self.b5x5_reduce = _conv(cin, w["b5x5_reduce"], 1)
        self.b5x5 = _conv(w["b5x5_reduce"], w["b5x5"], 5)
        self.avg_proj = _conv(cin, w["avg_proj"], 1)
        self.max_proj = _conv(cin, w["max_proj"], 1)
        self.out_channels = w["b1x1"] + w["b3x3"] + w["b5x5"] + w["avg_proj"] + w["max_proj"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In-place ReLUs act on fresh convolution outputs only (never on x), which
        # autograd allows: a convolution's backward pass needs its input, not its output.
        a = F.relu_(self.b1x1(x))
        b = F.relu_(self.b3x3(F.relu_(self.b3x3_reduce(x))))
        c = F.relu_(self.b5x5(F.relu_(self.b5x5_reduce(x))))
        # Keras AveragePooling2D(padding="same") averages over the valid pixels only.
        d = F.relu_(self.avg_proj(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)))
        e = F.relu_(self.max_proj(F.max_pool2d(x, 3, stride=1, padding=1)))
        return torch.cat([a, b, c, d, e], dim=1)


class InceptionNet(nn.Module):
    """Input (N, 1, H, W) HU slice; output (N, 1, H, W) hematoma probability."""

    architecture = "inception"
    check_ds = staticmethod(check_ds)

    def __init__(self, ds: int = 4) -> None:
        super().__init__()
        check_ds(ds)
        self.ds = ds
        s1, s2 = (w // ds for w in STEM_WIDTHS)
        self.conv9 = _conv(1, s1, 9)
        self.conv7 = _conv(s1, s2, 7)
        cin = s2
        modules = []
        for _ in range(N_MODULES):
            m = InceptionModule(cin, ds)
            modules.append(m)
            cin = m.out_channels
        self.modules_ = nn.ModuleList(modules)
        h1, h2 = (w // ds for w in HEAD_WIDTHS)
        self.conv5 = _conv(cin, h1, 5)
        self.conv3 = _conv(h1, h2, 3)
        self.out = _conv(h2, 1, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv9(x))
        x = F.relu_(self.conv7(x))
        for m in self.modules_:
            x = m(x)
        x = F.relu_(self.conv5(x))
        x = F.relu_(self.conv3(x))
        return self.out(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))
