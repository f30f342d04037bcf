"""The networks a weights file can name, and how to build each one."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .inception import BRANCH_WIDTHS, HEAD_WIDTHS, N_MODULES, STEM_WIDTHS, InceptionNet
from .unet import UNet2D
from .unet25d import ClickUNet25D, UNet25D

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "inception": InceptionNet,
    "unet": UNet2D,
    "unet25d": UNet25D,
    "unet25d-click": ClickUNet25D,
}
DEFAULT_DS = {"inception": 4, "unet": 2, "unet25d": 2, "unet25d-click": 2}


def input_channels(architecture: str) -> int:
    """How many CT slices the network takes per input: 1, or 3 for the 2.5-D U-Nets."""
    return int(getattr(ARCHITECTURES.get(architecture), "in_channels", 1))


def guidance_channels(architecture: str) -> int:
    """Click channels after the slices: 2 (positive, negative) for networks that
    take a reviewer's clicks, else 0."""
    return int(getattr(ARCHITECTURES.get(architecture), "guidance_channels", 0))


def check_ds(architecture: str, ds: int) -> None:
    """:class:`ConfigError` unless ``ds`` is a width divisor ``architecture`` accepts."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"unknown network architecture {architecture!r}; choose one of {', '.join(sorted(ARCHITECTURES))}."
        )
    ARCHITECTURES[architecture].check_ds(ds)  # type: ignore[attr-defined]


def build_network(architecture: str, ds: int | None = None) -> nn.Module:
    """A freshly initialised network (torch's default init; seed torch first)."""
    try:
        cls = ARCHITECTURES[architecture]
    except KeyError:
        raise ConfigError(
            f"unknown network architecture {architecture!r}; choose one of {', '.join(sorted(ARCHITECTURES))}."
        ) from None
    return cls(DEFAULT_DS[architecture] if ds is None else ds)


def inception_macs_per_pixel(ds: int = 4) -> int:
    """Multiply-accumulates per output pixel of :class:`InceptionNet`, counted
    from the layer widths (every layer runs at full resolution, stride 1).

    Pooling, ReLU and bias additions are left out: they are a fraction of a
    percent of the work and are not matrix-multiply work anyway.
    """
    s1, s2 = (w // ds for w in STEM_WIDTHS)
    b = {k: v // ds for k, v in BRANCH_WIDTHS.items()}
    h1, h2 = (w // ds for w in HEAD_WIDTHS)
    macs = 9 * 9 * 1 * s1 + 7 * 7 * s1 * s2
    cin = s2
    module_out = b["b1x1"] + b["b3x3"] + b["b5x5"] + b["avg_proj"] + b["max_proj"]
    for _ in range(N_MODULES):
        macs += cin * (b["b1x1"] + b["b3x3_reduce"] + b["b5x5_reduce"] + b["avg_proj"] + b["max_proj"])
        macs += 3 * 3 * b["b3x3_reduce"] * b["b3x3"] + 5 * 5 * b["b5x5_reduce"] * b["b5x5"]
        cin = module_out
    macs += 5 * 5 * cin * h1 + 3 * 3 * h1 * h2 + 1 * 1 * h2 * 1
    return macs


def inception_flops_per_pixel(ds: int = 4) -> int:
    return 2 * inception_macs_per_pixel(ds)
