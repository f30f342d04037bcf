"""Segmentation networks, their weights files and the fast inference engines.

- :mod:`.inception` the paper's network (reference definition), :mod:`.unet` the U-Net option
- :mod:`.architectures` build a network by name; analytic FLOP count
- :mod:`.input` the input convention (HU window, background) shared by training and prediction
- :mod:`.weights` safetensors + JSON weights files (no pickle; sha256-checked)
- :mod:`.fast` ONNX Runtime / torch engines, equal to the reference forward pass
"""

from ..lazy import lazy_getattr

# imported on first use: the default model's card (core.model.default) is read by the desktop
# application at start-up, torch is loaded in the background later
_EXPORTS = {
    **dict.fromkeys(("ARCHITECTURES", "DEFAULT_DS", "build_network", "inception_flops_per_pixel"), "architectures"),
    **dict.fromkeys(("DEFAULT_INPUT", "InputConvention"), "input"),
    **dict.fromkeys(("LoadedWeights", "WeightsMeta", "load_weights", "read_meta", "save_weights"), "weights"),
}


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())

__all__ = list(_EXPORTS)
