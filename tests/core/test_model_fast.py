"""The fast inference engines compute the reference network's function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import ConfigError
from core.model.architectures import build_network
from core.model.fast import FusedInception, OnnxEngine, TorchEngine, make_engine, onnxruntime_available


def _trained_like_inception(seed=0):
    """Random weights scaled so activations stay in a realistic range for HU input."""
    torch.manual_seed(seed)
    net = build_network("inception", 4).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.5, 0.5)
    return net


def _hu_input(n=2, h=45, w=38, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(35, 20, size=(n, 1, h, w)).clip(-20, 100).astype(np.float32)
    x[:, :, :6] = -20.0  # a background border, as around a skull-stripped brain
    return x


def _reference(net, x):
    with torch.inference_mode():
        return net(torch.from_numpy(x)).numpy()


def test_fused_torch_engine_equals_reference():
    net = _trained_like_inception()
    x = _hu_input()
    ref = _reference(net, x)
    out = TorchEngine(net)(x)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 1e-5
    assert isinstance(TorchEngine(net).model, FusedInception)
    # building an engine leaves the caller's network as it was (plain NCHW weights)
    assert all(p.is_contiguous() for p in net.parameters())
    # the logits too, before the sigmoid can hide differences
    with torch.inference_mode():
        t = torch.from_numpy(x)
        logit_ref = net.logits(t)
        logit_fused = FusedInception(net).logits(t)
    assert float((logit_fused - logit_ref).abs().max()) < 1e-4 * max(1.0, float(logit_ref.abs().max()))


@pytest.mark.skipif(not onnxruntime_available(), reason="onnx/onnxruntime not installed")
def test_onnxruntime_engine_equals_reference():
    net = _trained_like_inception(3)
    x = _hu_input(1, 64, 51)
    ref = _reference(net, x)
    out = OnnxEngine(net, threads=1)(x)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 1e-5
    assert isinstance(make_engine(net), OnnxEngine)


def test_unet_uses_the_torch_engine():
    torch.manual_seed(0)
    net = build_network("unet", 16).eval()
    x = _hu_input(1, 40, 40)
    engine = make_engine(net)
    assert engine.name == "torch"
    assert np.abs(engine(x) - _reference(net, x)).max() < 1e-5
    with pytest.raises(ConfigError):
        make_engine(net, "onnxruntime")
    with pytest.raises(ConfigError):
        make_engine(net, "tpu")
