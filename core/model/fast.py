"""Fast slice-wise inference: the same function as the reference network, faster.

Two engines, both checked against the reference forward pass in the tests:

- ``onnxruntime`` (used when the package is installed, Inception only): the
  network is written as an ONNX graph straight from its weights and run by ONNX
  Runtime, whose CPU provider fuses each convolution with its ReLU and keeps
  activations in a blocked channel layout (NCHWc) between convolutions.
- ``torch`` (the fallback when ONNX Runtime is missing, and the U-Net's
  engine): inference mode, channels-last tensors (oneDNN's blocked convolution
  path; on our 2-core machines NCHW ran the 1x1 convolutions and 3x3 pools
  several times slower under load, and about as fast when idle), and for
  Inception the module's 1x1 convolutions that read the same input merged
  into one convolution.

Both engines apply the average-pool branch's 1x1 projection *before* the 3x3
average pool instead of after it: the pool (which excludes the padding)
averages with weights that sum to one, so ``avg(W x + b) = W avg(x) + b``
exactly, and the pool then runs on 8 channels instead of 72 (ds=4). Results
differ from the reference by float rounding only (~1e-7).
"""

from __future__ import annotations

import copy
import logging
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from .inception import InceptionNet

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime", "torch")


class SliceEngine(Protocol):
    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, 1, H, W) float32 network input -> (N, 1, H, W) float32 probabilities."""
        ...


# ----------------------------------------------------------------------- torch
class _FusedModule(nn.Module):
    """An inception module with its four x-reading 1x1 convolutions in one."""

    def __init__(self, m) -> None:
        super().__init__()
        parts = [m.b1x1, m.b3x3_reduce, m.b5x5_reduce, m.avg_proj]
        self.split = [p.out_channels for p in parts]
        self.entry = nn.Conv2d(parts[0].in_channels, sum(self.split), 1)
        with torch.no_grad():
            self.entry.weight.copy_(torch.cat([p.weight for p in parts]))
            self.entry.bias.copy_(torch.cat([p.bias for p in parts]))
        self.b3x3, self.b5x5, self.max_proj = m.b3x3, m.b5x5, m.max_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, r3, r5, avg = torch.split(self.entry(x), self.split, dim=1)
        b = F.relu_(self.b3x3(F.relu(r3)))
        c = F.relu_(self.b5x5(F.relu(r5)))
        d = F.relu_(F.avg_pool2d(avg, 3, stride=1, padding=1, count_include_pad=False))
        e = F.relu_(self.max_proj(F.max_pool2d(x, 3, stride=1, padding=1)))
        return torch.cat([F.relu(a), b, c, d, e], dim=1)


class FusedInception(nn.Module):
    """Inference-only rewrite of :class:`InceptionNet` (shares its stem/head layers)."""

    def __init__(self, net: InceptionNet) -> None:
        super().__init__()
        self.net = net
        self.fused = nn.ModuleList(_FusedModule(m) for m in net.modules_)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = F.relu_(n.conv7(F.relu_(n.conv9(x))))
        for m in self.fused:
            x = m(x)
        x = F.relu_(n.conv3(F.relu_(n.conv5(x))))
        return n.out(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class TorchEngine:
    name = "torch"

    def __init__(self, net: nn.Module, threads: int | None = None) -> None:
        net = copy.deepcopy(net).eval()  # the layout change below must not touch the caller's net
        model = FusedInception(net) if isinstance(net, InceptionNet) else net
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.threads = threads

    def __call__(self, x: np.ndarray) -> np.ndarray:
        prev = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
                out = self.model(t.contiguous(memory_format=torch.channels_last))
                return out.contiguous().numpy()
        finally:
            torch.set_num_threads(prev)


# ----------------------------------------------------------------- onnxruntime
def inception_onnx_bytes(net: InceptionNet) -> bytes:
    """The network as a serialized ONNX model (opset 17), built from its weights."""
    from onnx import TensorProto, helper, numpy_helper

    sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    nodes, inits = [], []
    counter = iter(range(1 << 30))

    def fresh(prefix: str) -> str:
        return f"{prefix}{next(counter)}"

    def conv(x: str, layer: str, act: str | None = "Relu", out: str | None = None) -> str:
        w, b = sd[f"{layer}.weight"], sd[f"{layer}.bias"]
        k = w.shape[-1]
        names = [f"{layer}.weight", f"{layer}.bias"]
        inits.extend(numpy_helper.from_array(a, n) for a, n in zip((w, b), names))
        y = fresh("conv")
        nodes.append(helper.make_node("Conv", [x, *names], [y], kernel_shape=[k, k], pads=[k // 2] * 4, strides=[1, 1]))
        return unary(act, y, out) if act else y

    def unary(op: str, x: str, y: str | None = None) -> str:
        y = y or fresh(op.lower())
        nodes.append(helper.make_node(op, [x], [y]))
        return y

    def pool(op: str, x: str, **kw) -> str:
        y = fresh(op.lower())
        nodes.append(helper.make_node(op, [x], [y], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], **kw))
        return y

    x = conv(conv("x", "conv9"), "conv7")
    for i in range(len(net.modules_)):
        m = f"modules_.{i}"
        a = conv(x, f"{m}.b1x1")
        b = conv(conv(x, f"{m}.b3x3_reduce"), f"{m}.b3x3")
        c = conv(conv(x, f"{m}.b5x5_reduce"), f"{m}.b5x5")
        d = unary("Relu", pool("AveragePool", conv(x, f"{m}.avg_proj", act=None), count_include_pad=0))
        e = conv(pool("MaxPool", x), f"{m}.max_proj")
        x = fresh("concat")
        nodes.append(helper.make_node("Concat", [a, b, c, d, e], [x], axis=1))
    conv(conv(conv(x, "conv5"), "conv3"), "out", act="Sigmoid", out="p")
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", 1, "h", "w"]) for n in ("x", "p")]
    graph = helper.make_graph(nodes, "inception", io[:1], io[1:], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hemarelay")
    return model.SerializeToString()


class OnnxEngine:
    name = "onnxruntime"

    def __init__(self, net: nn.Module, threads: int | None = None) -> None:
        if not isinstance(net, InceptionNet):
            raise ConfigError("the ONNX Runtime engine runs the Inception network only.")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(inception_onnx_bytes(net), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(["p"], {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]


def onnxruntime_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_engine(net: nn.Module, backend: str = "auto", threads: int | None = None) -> SliceEngine:
    """The fastest available engine for ``net`` (``backend`` forces one)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown inference backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    want_ort = backend == "onnxruntime" or (backend == "auto" and isinstance(net, InceptionNet))
    if want_ort:
        if onnxruntime_available():
            return OnnxEngine(net, threads)
        if backend == "onnxruntime":
            raise ConfigError("the onnxruntime backend needs the onnx and onnxruntime packages.")
        log.info("onnxruntime not installed; using the torch engine")
    return TorchEngine(net, threads)
