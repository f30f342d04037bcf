"""Presets, TOML files and --set overrides."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.training.config import list_presets, load_config, parse_override


def test_presets_exist_with_the_papers_numbers():
    assert {"paper", "cpu-small"} <= set(list_presets())
    paper = load_config("paper")
    assert (paper.architecture, paper.ds, paper.patch_size, paper.patches_per_volume) == ("inception", 4, 255, 1000)
    assert (paper.batch_size, paper.learning_rate, paper.patience, paper.min_delta) == (8, 1e-4, 10, 1e-4)
    # soft Dice: what the authors' code trained (their cDC branch never ran)
    assert (paper.loss, paper.val_fraction, paper.val_split, paper.preset) == ("soft_dice", 0.2, "patch", "paper")
    small = load_config("cpu-small")
    assert small.preset == "cpu-small" and small.patch_size < 255 and small.patience < 10
    product = load_config()  # the product recipe is the default
    assert (product.preset, product.architecture, product.loss, product.val_split) == (
        "default",
        "unet25d-click",
        "dice_bce",
        "case",
    )
    assert product.input_convention().in_plane_mm > 0 and product.context_slices == 1
    assert product.click_sigma_mm > 0  # one network for automatic and click-guided segmentation


def test_file_then_overrides(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('patience = 7\nloss = "soft_dice"\nlearning_rate = 1\n')
    c = load_config("paper", f, ["patience=4", "val_split=case", "healthy_per_lesion=3"])
    assert c.patience == 4 and c.loss == "soft_dice" and c.learning_rate == 1.0
    assert c.val_split == "case" and c.healthy_per_lesion == 3.0 and c.patch_size == 255


@pytest.mark.parametrize(
    "override, message",
    [
        ("nonsense=3", "unknown training setting"),
        ("patience=2.5", "should be int"),
        ("patience", "key=value"),
        ("loss=hinge", "loss"),
        ("ds=3", "width divisor"),
        ("val_fraction=1.5", "between 0 and 1"),
        ("architecture=vgg", "architecture"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("cpu-small", None, [override])


def test_bad_files_and_presets(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config("gpu-huge")
    bad = tmp_path / "bad.toml"
    bad.write_text("patience = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(None, bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(None, tmp_path / "none.toml")


def test_override_values_are_read_as_toml():
    assert parse_override("learning_rate=3e-4") == ("learning_rate", 3e-4)
    assert parse_override("val_split = case") == ("val_split", "case")
    assert parse_override('loss="cdc"') == ("loss", "cdc")
