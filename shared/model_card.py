"""Shipped model files and the metadata record (model card) beside each.

A pair's folder (where each file is: ``shared.model_bundle``) holds weights
(``shallow.onnx`` onboard, ``deep.pt`` on the ground) and ``<role>.json`` their card:
architecture and its config, input size, the GSD the counter works at, classes, the data and
split it was trained on, metrics, FLOPs per tile, and the sha256 of the weight file. Loading
verifies the sha256 and refuses a mismatch, so a truncated copy or a file swapped under a
card cannot count silently wrong.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class ModelIntegrityError(RuntimeError):
    """A weight file does not match the sha256 its card records (or is missing)."""


@dataclass
class ModelCard:
    name: str  # the pair, by what it counts: "aircraft", "vehicle", ...
    role: str  # "onboard" or "ground"
    architecture: str
    arch_config: dict[str, Any]
    weights: str  # file name beside the card
    sha256: str
    input_size: int
    model_gsd_m: float
    classes: list[str]  # what the counter counts
    truth_classes: list[str]  # annotation classes it was trained against
    flops_per_tile: int
    data: dict[str, Any] = field(default_factory=dict)  # datasets, split file, synthetic
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # The pixels it counts have no detail finer than this (a ground counter that counts
    # downlinked tiles, at the onboard counter's GSD, enlarged to ``model_gsd_m``): finer
    # scenes are limited to it first, and a scene without a GSD is taken to be at it.
    detail_gsd_m: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_card(path: Path) -> ModelCard:
    if not path.exists():
        raise FileNotFoundError(f"no model card at {path}")
    try:
        data = json.loads(path.read_text())
        return ModelCard(**data)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid model card: {exc}") from None


def verified_weights(card: ModelCard, card_file: Path) -> Path:
    """The weight file beside ``card_file``, after checking its sha256."""
    weights = card_file.parent / card.weights
    if not weights.exists():
        raise ModelIntegrityError(f"weights {weights} named by {card_file} are missing")
    actual = sha256_of(weights)
    if actual != card.sha256:
        raise ModelIntegrityError(
            f"{weights}: sha256 {actual[:16]}... does not match {card.sha256[:16]}... recorded "
            f"in {card_file.name}; the file is corrupt or not the one the card describes")
    return weights


def write_card(card: ModelCard, card_file: Path) -> Path:
    card_file.parent.mkdir(parents=True, exist_ok=True)
    card.sha256 = sha256_of(card_file.parent / card.weights)
    card_file.write_text(card.to_json() + "\n")
    return card_file
