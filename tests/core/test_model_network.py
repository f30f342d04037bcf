"""The Inception network's layers, parameter count and FLOPs; the U-Net option."""

from __future__ import annotations

import pytest
import torch

from core.errors import ConfigError
from core.model.architectures import build_network, inception_macs_per_pixel
from core.model.inception import RECEPTIVE_RADIUS, InceptionNet
from core.model.unet import UNet2D

# (name, kernel, in channels, out channels) at ds=4, written out from the paper's
# Figure 2 / the authors' inception.py: 64/4=16, 96/4=24, 128/4=32, 32/4=8, 16/4=4.
LAYERS_DS4 = [("conv9", 9, 1, 16), ("conv7", 7, 16, 16)]
for _i, _cin in enumerate((16, 72, 72)):
    LAYERS_DS4 += [
        (f"modules_.{_i}.b1x1", 1, _cin, 16),
        (f"modules_.{_i}.b3x3_reduce", 1, _cin, 24),
        (f"modules_.{_i}.b3x3", 3, 24, 32),
        (f"modules_.{_i}.b5x5_reduce", 1, _cin, 4),
        (f"modules_.{_i}.b5x5", 5, 4, 8),
        (f"modules_.{_i}.avg_proj", 1, _cin, 8),
        (f"modules_.{_i}.max_proj", 1, _cin, 8),
    ]
LAYERS_DS4 += [("conv5", 5, 72, 8), ("conv3", 3, 8, 4), ("out", 1, 4, 1)]


def test_layer_shapes_ds4():
    sd = InceptionNet(4).state_dict()
    assert len(sd) == 2 * len(LAYERS_DS4)
    for name, k, cin, cout in LAYERS_DS4:
        assert tuple(sd[f"{name}.weight"].shape) == (cout, cin, k, k), name
        assert tuple(sd[f"{name}.bias"].shape) == (cout,), name


def test_parameter_count_by_hand():
    # weights k*k*cin*cout plus one bias per output channel, per layer:
    # stem 1296+16 + 12544+16; module 1: 256+16 + 384+24 + 6912+32 + 64+4 + 800+8 + 128+8
    # + 128+8 = 8772; modules 2 and 3: 1152+16 + 1728+24 + 6912+32 + 288+4 + 800+8 + 576+8
    # + 576+8 = 12132 each; head 14400+8 + 288+4 + 4+1.
    expected = (1296 + 16 + 12544 + 16) + 8772 + 2 * 12132 + (14400 + 8 + 288 + 4 + 4 + 1)
    assert expected == 61613
    assert sum(p.numel() for p in InceptionNet(4).parameters()) == expected
    assert sum(k * k * cin * cout + cout for _, k, cin, cout in LAYERS_DS4) == expected


def test_macs_per_pixel_match_layers():
    # Every layer is stride 1 at full resolution: MACs per pixel = sum of weight sizes.
    assert inception_macs_per_pixel(4) == sum(k * k * cin * cout for _, k, cin, cout in LAYERS_DS4)
    assert inception_macs_per_pixel(4) == 61268
    for ds in (1, 2, 8):
        net = InceptionNet(ds)
        assert inception_macs_per_pixel(ds) == sum(
            m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.Conv2d)
        )


@pytest.mark.parametrize("shape", [(1, 1, 33, 33), (2, 1, 17, 40)])
def test_any_input_size_same_output_size(shape):
    with torch.no_grad():
        out = InceptionNet(4)(torch.randn(shape) * 30)
    assert out.shape == shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_receptive_field_is_33_pixels():
    torch.manual_seed(0)
    net = InceptionNet(4).eval()
    x = torch.zeros(1, 1, 81, 81, requires_grad=True)
    net.logits(x)[0, 0, 40, 40].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1))
    assert RECEPTIVE_RADIUS == 16
    assert int(rows.min()) == 40 - 16 and int(rows.max()) == 40 + 16


def test_ds_must_divide_every_width():
    assert InceptionNet(2).conv9.out_channels == 32
    with pytest.raises(ConfigError):
        InceptionNet(3)
    with pytest.raises(ConfigError):
        build_network("resnet")


def test_unet_selectable_and_size_preserving():
    net = build_network("unet", 16)
    assert isinstance(net, UNet2D)
    with torch.no_grad():
        out = net.eval()(torch.randn(1, 1, 37, 50))
    assert out.shape == (1, 1, 37, 50)
    # 4 poolings: the deepest level has 1024/ds channels
    assert net.down[-1].b.out_channels == 1024 // 16
