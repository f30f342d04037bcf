"""The default model shipped with the program (``core/resources/models/``).

Trained with the product recipe (preset ``default``) on both CT-ICH sites'
``train/`` folders by ``bench/train_default_model.py --ship``. It is what
``hemarelay predict`` uses without ``--model``, what the desktop application
predicts with before any ring turn, and what ``ring init --start-from default``
starts a ring from. The model card beside it (``default.json``) records the file's
sha256, the recipe, the training data (described, no case ids) and the scores
measured when it was made; loading checks the file against that sha256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..resources import resource_path

if TYPE_CHECKING:  # torch: loaded with the weights, not with the card
    from .weights import LoadedWeights

MODEL_FILE = "default.safetensors"
CARD_FILE = "default.json"
TRAINING_DATA = (
    "PhysioNet CT-ICH v1.2.0 (Hssayeni et al., doi:10.13026/w8q8-ky94), CC BY 4.0: both simulated sites' "
    "train/ and test/ cases and normal/ scans"
)


def default_model_path() -> Path:
    return resource_path("models", MODEL_FILE)


def default_card_path() -> Path:
    return resource_path("models", CARD_FILE)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_card() -> dict:
    path = default_card_path()
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(
            f"{path}: the default model's card is missing from this installation; "
            "reinstall the program or give a model file with --model."
        ) from None
    except ValueError as exc:
        raise InputError(f"{path}: the default model's card is damaged ({exc}).") from None
    if not isinstance(card, dict) or not isinstance(card.get("file_sha256"), str):
        raise InputError(f"{path}: the default model's card lacks the file's sha256.")
    return card


def load_default_model() -> "LoadedWeights":
    """The shipped weights, verified against the sha256 in their card."""
    from .weights import load_weights

    path = default_model_path()
    if not path.is_file():
        raise InputError(
            f"{path}: the default model is missing from this installation; "
            "reinstall the program or give a model file with --model."
        )
    card = read_card()
    if file_sha256(path) != card["file_sha256"]:
        raise InputError(
            f"{path}: the default model does not match the sha256 recorded in its "
            "card; the installation is damaged. Reinstall the program."
        )
    return load_weights(path)


def has_default_model() -> bool:
    return default_model_path().is_file() and default_card_path().is_file()
