"""Segmentation networks, their weights files and the fast inference engines.

- :mod:`.inception` the paper's network (reference definition), :mod:`.unet` the U-Net option
- :mod:`.architectures` build a network by name; analytic FLOP count
- :mod:`.input` the input convention (HU window, background) shared by training and prediction
- :mod:`.weights` safetensors + JSON weights files (no pickle; sha256-checked)
- :mod:`.fast` ONNX Runtime / torch engines, equal to the reference forward pass
"""

from .architectures import ARCHITECTURES, DEFAULT_DS, build_network, inception_flops_per_pixel
from .input import DEFAULT_INPUT, InputConvention
from .weights import LoadedWeights, WeightsMeta, load_weights, read_meta, save_weights

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_DS",
    "build_network",
    "inception_flops_per_pixel",
    "DEFAULT_INPUT",
    "InputConvention",
    "LoadedWeights",
    "WeightsMeta",
    "load_weights",
    "read_meta",
    "save_weights",
]
