"""Weights files: round trip, sha256 check, wrong architecture, no pickle."""

from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from core.errors import ConfigError, InputError
from core.model.architectures import build_network
from core.model.input import InputConvention
from core.model.weights import WeightsMeta, load_weights, read_meta, save_weights, tensors_sha256


def _net(arch="inception", ds=4, seed=0):
    torch.manual_seed(seed)
    return build_network(arch, ds)


def _save(path, arch="inception", ds=4, **meta):
    net = _net(arch, ds)
    m = save_weights(path, net.state_dict(), WeightsMeta(arch, ds, **meta))
    return net, m


def test_round_trip(tmp_path):
    path = tmp_path / "w.safetensors"
    net, written = _save(
        path,
        preset="cpu-small",
        training={"epochs": 3, "n_train_patches": 120},
        metrics={"val_loss": 0.25},
        parent_sha256="ab" * 32,
        version="v1",
    )
    loaded = load_weights(path)
    assert loaded.meta == written
    assert written.sha256 == tensors_sha256(net.state_dict())
    assert loaded.meta.input == InputConvention()
    assert loaded.meta.training["epochs"] == 3 and loaded.meta.parent_sha256 == "ab" * 32
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict[k], v)
    x = torch.randn(1, 1, 20, 20) * 30
    with torch.no_grad():
        assert torch.equal(loaded.network()(x), net.eval()(x))
    assert read_meta(path).sha256 == written.sha256


def _tensor_data_offset(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw, 8 + n


def test_tampered_weights_are_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    _save(path)
    raw, start = _tensor_data_offset(path)
    flipped = bytearray(raw)
    flipped[start + 100] ^= 0x40  # one bit of one weight
    path.write_bytes(bytes(flipped))
    with pytest.raises(InputError, match="sha256"):
        load_weights(path)


def test_recorded_hash_edited_in_header_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    _save(path)
    raw, start = _tensor_data_offset(path)
    header = json.loads(raw[8:start])
    meta = json.loads(header["__metadata__"]["hemarelay"])
    meta["sha256"] = "0" * 64
    header["__metadata__"]["hemarelay"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[start:])
    with pytest.raises(InputError, match="sha256"):
        load_weights(path)


def test_wrong_architecture(tmp_path):
    path = tmp_path / "unet.safetensors"
    _save(path, "unet", 16)
    assert load_weights(path).meta.architecture == "unet"
    with pytest.raises(InputError, match="'inception' network is needed"):
        load_weights(path, expect_architecture="inception")
    # U-Net tensors under metadata that claims an Inception network
    net = _net("unet", 16)
    meta = WeightsMeta("inception", 4, sha256=tensors_sha256(net.state_dict()))
    forged = tmp_path / "forged.safetensors"
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, str(forged), metadata={"hemarelay": meta.to_json()}
    )
    with pytest.raises(InputError, match="do not form a inception network"):
        load_weights(forged)
    # Inception with another width divisor
    with pytest.raises(InputError, match="ds=2"):
        net4 = _net("inception", 4)
        bad = tmp_path / "ds.safetensors"
        m = WeightsMeta("inception", 2, sha256=tensors_sha256(net4.state_dict()))
        save_file(dict(net4.state_dict()), str(bad), metadata={"hemarelay": m.to_json()})
        load_weights(bad)


def test_unknown_architecture_and_foreign_files(tmp_path):
    net = _net()
    odd = tmp_path / "odd.safetensors"
    m = json.loads(WeightsMeta("inception", 4).to_json()) | {"architecture": "transformer"}
    save_file(dict(net.state_dict()), str(odd), metadata={"hemarelay": json.dumps(m)})
    with pytest.raises(InputError, match="transformer"):
        load_weights(odd)
    plain = tmp_path / "plain.safetensors"
    save_file(dict(net.state_dict()), str(plain))
    with pytest.raises(InputError, match="without Hematoma Relay metadata"):
        load_weights(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01not a weights file at all" * 10)
    with pytest.raises(InputError, match="not a readable weights file"):
        load_weights(junk)
    with pytest.raises(InputError, match="not found"):
        load_weights(tmp_path / "missing.safetensors")


class _Boom:
    def __reduce__(self):  # would run when unpickled
        import os

        return (os.mkdir, ("/tmp/hemarelay-pickle-ran",))


def test_pickle_files_are_never_unpickled(tmp_path):
    marker = "/tmp/hemarelay-pickle-ran"
    import os

    if os.path.exists(marker):
        os.rmdir(marker)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"conv9.weight": _Boom()}))
    with pytest.raises(InputError):
        load_weights(evil)
    torch_file = tmp_path / "model.pt"
    torch.save(_net().state_dict(), torch_file)
    with pytest.raises(InputError):
        load_weights(torch_file)
    assert not os.path.exists(marker)


def test_identifiers_are_kept_out(tmp_path):
    net = _net()
    with pytest.raises(ConfigError, match="case_ids"):
        save_weights(
            tmp_path / "w.safetensors",
            net.state_dict(),
            WeightsMeta("inception", 4, training={"case_ids": ["049", "050"]}),
        )
    with pytest.raises(ConfigError, match="patient"):
        save_weights(
            tmp_path / "w.safetensors",
            net.state_dict(),
            WeightsMeta("inception", 4, training={"data": {"patient": "x"}}),
        )
    assert not (tmp_path / "w.safetensors").exists()
