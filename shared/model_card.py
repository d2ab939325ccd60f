"""Shipped model files and the metadata record (model card) beside each.

``models/<pair>/<role>.<ext>`` holds weights (``shallow.onnx`` onboard, ``deep.pt`` on the
ground) and ``<role>.json`` their card: architecture and its config, input size, the GSD the
counter works at, classes, the data and split it was trained on, metrics, FLOPs per tile, and
the sha256 of the weight file. Loading verifies the sha256 and refuses a mismatch, so a
truncated copy or a file swapped under a card cannot count silently wrong.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.paths import PROJECT_ROOT

MODELS_DIR = PROJECT_ROOT / "models"


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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path(name: str, role: str, models_dir: Path | None = None) -> Path:
    stem = "shallow" if role == "onboard" else "deep"
    return (models_dir or MODELS_DIR) / name / f"{stem}.json"


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


# Files of a pair each service reads beside its card when present (the pipeline's tile-size
# table; the value policy's error model, which the onboard default policy needs).
PAIR_FILES = ("tiling.json", "error_model.json")
# Files a card names that no service loads (the training checkpoint): not shipped in images.
NOT_RUN = ("torch_weights",)


def runtime_files(name: str, role: str, models_dir: Path | None = None) -> list[Path]:
    """Every file the ``role`` service reads of pair ``name``, read from its card: the card,
    its weights, each other file the card names (fp32 ONNX, confidence model, ...) and the
    pair's shared files when present. What an image must carry for that pair; raises
    FileNotFoundError when the card or a file it names is missing."""
    card_file = card_path(name, role, models_dir)
    card = load_card(card_file)
    folder = card_file.parent
    files = [card_file, folder / card.weights]
    for key, value in card.extra.items():
        if key not in NOT_RUN and isinstance(value, str) and not key.endswith("_sha256") \
                and (folder / value).is_file():
            files.append(folder / value)
    files += [folder / f for f in PAIR_FILES if (folder / f).is_file()]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f}, named by {card_file}, is missing")
    return list(dict.fromkeys(files))


def shipped_pairs(role: str, models_dir: Path | None = None) -> list[str]:
    """The pairs under ``models_dir`` with a card for ``role``."""
    stem = "shallow" if role == "onboard" else "deep"
    return sorted(p.parent.name for p in (models_dir or MODELS_DIR).glob(f"*/{stem}.json"))


def export(role: str, src: Path, dest: Path, names: list[str]) -> list[Path]:
    """Copy the runtime files of pairs ``names`` (``all``: every pair with a ``role`` card)
    from ``src`` to ``dest`` (a container image's models folder)."""
    import shutil

    if names == ["all"]:
        names = shipped_pairs(role, src)
    if not names:
        raise ValueError(f"no {role} model pair to export from {src}")
    copied = []
    for name in names:
        for f in runtime_files(name, role, src):
            target = dest / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
            copied.append(target)
    return copied


def main(argv: list[str] | None = None) -> int:
    """``python -m shared.model_card ROLE SRC DEST PAIR...``: what the Dockerfiles run to
    put the pairs an image serves into it (``all``: every shipped pair)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m shared.model_card",
                                description="copy the files a service reads of model pairs")
    p.add_argument("role", choices=["onboard", "ground"])
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("pairs", nargs="+", help="pair names, or all")
    args = p.parse_args(argv)
    for f in export(args.role, args.src, args.dest, args.pairs):
        print(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
