"""A model pair's files: where each one is, and one role's files loaded once.

A pair lives in ``models/<name>/``. Each role has a card (``shallow.json`` onboard,
``deep.json`` on the ground: ``shared.model_card``) naming its weights and, in its ``extra``,
the other files it reads (``fp32_onnx``, ``confidence``, ``canary_tiles``, each with a
``<key>_sha256``; ``torch_weights``, the training checkpoint no service loads). Beside them
are two files the roles share: the tile-size table (``tiling.json``,
``shared.pipeline.tiling``) and the value policy's error model (``error_model.json``).

``PairFiles`` is the one rule for those paths (the tooling writes there); ``ModelBundle`` is
one role's files as a service reads them, each loaded on first use and kept, and each
checked against the sha256 its card records, so a truncated copy or a file swapped under a
card is refused instead of counting silently wrong. Loading the weights into a runtime is
the counter's job (onnxruntime onboard, PyTorch on the ground): nothing here imports either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from shared.confidence import ConfidenceModel
from shared.model_card import ModelCard, ModelIntegrityError, load_card, sha256_of, verified_weights
from shared.paths import PROJECT_ROOT
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.tiling import TilingTable
from shared.scale_regressor import ScaleRegressor

MODELS_DIR = PROJECT_ROOT / "models"
ROLE_STEMS = {"onboard": "shallow", "ground": "deep"}
TILING_FILE = "tiling.json"
ERROR_MODEL_FILE = "error_model.json"
# The files of a pair each service reads beside its card when present.
PAIR_FILES = (TILING_FILE, ERROR_MODEL_FILE)


@dataclass(frozen=True)
class PairFiles:
    """Where the files of one pair are (whether or not they exist yet)."""

    folder: Path

    @classmethod
    def of(cls, name: str, models_dir: Path | str | None = None) -> PairFiles:
        return cls(Path(models_dir or MODELS_DIR) / name)

    @property
    def name(self) -> str:
        return self.folder.name

    def card(self, role: str) -> Path:
        if role not in ROLE_STEMS:
            raise ValueError(f"role must be one of {', '.join(ROLE_STEMS)}; got {role!r}")
        return self.folder / f"{ROLE_STEMS[role]}.json"

    @property
    def tiling(self) -> Path:
        return self.folder / TILING_FILE

    @property
    def error_model(self) -> Path:
        return self.folder / ERROR_MODEL_FILE


def card_path(name: str, role: str, models_dir: Path | str | None = None) -> Path:
    return PairFiles.of(name, models_dir).card(role)


def shipped_pairs(role: str, models_dir: Path | str | None = None) -> list[str]:
    """The pairs under ``models_dir`` with a card for ``role``."""
    stem = ROLE_STEMS[role]
    return sorted(p.parent.name for p in Path(models_dir or MODELS_DIR).glob(f"*/{stem}.json"))


def load_error_model(files: PairFiles) -> ErrorModel | None:
    return ErrorModel.load(files.error_model) if files.error_model.exists() else None


def load_tiling(files: PairFiles) -> TilingTable | None:
    return TilingTable.load(files.tiling) if files.tiling.exists() else None


class ModelBundle:
    """One role's files of a pair, read through its card (``card_file``), each once."""

    def __init__(self, card_file: Path | str):
        self.card_file = Path(card_file)
        self.card: ModelCard = load_card(self.card_file)
        self.files = PairFiles(self.card_file.parent)

    @classmethod
    def shipped(cls, name: str, role: str, models_dir: Path | str | None = None
                ) -> ModelBundle:
        return cls(card_path(name, role, models_dir))

    def named_file(self, key: str, strict: bool = True) -> Path | None:
        """The file the card names under ``extra[key]`` (None when it names none), after
        checking it against ``extra[key + '_sha256']``; ``strict``: a missing recorded
        sha256 is a mismatch too (else only a recorded one is checked)."""
        name = self.card.extra.get(key)
        if not name:
            return None
        path = self.files.folder / name
        expected = self.card.extra.get(f"{key}_sha256")
        if (strict or expected) and sha256_of(path) != expected:
            raise ModelIntegrityError(f"{path}: sha256 does not match its card")
        return path

    @cached_property
    def weights(self) -> Path:
        """The deployed weight file, verified."""
        return verified_weights(self.card, self.card_file)

    @cached_property
    def fp32_weights(self) -> Path | None:
        """The float32 ONNX of a quantised onboard card, verified (None: not quantised)."""
        return self.named_file("fp32_onnx")

    @cached_property
    def confidence(self) -> ConfidenceModel | None:
        path = self.named_file("confidence", strict=False)
        return ConfidenceModel.load(path) if path else None

    @cached_property
    def canary(self) -> np.ndarray | None:
        """Real uint8 RGB tiles shipped with the pair (``targetfuse ship``)."""
        path = self.named_file("canary_tiles")
        if path is None:
            return None
        with np.load(path) as data:
            return data["tiles"]

    @cached_property
    def tiling(self) -> TilingTable | None:
        return load_tiling(self.files)

    @cached_property
    def error_model(self) -> ErrorModel | None:
        return load_error_model(self.files)

    @cached_property
    def scale_regressor(self) -> ScaleRegressor | None:
        """The onboard card's GSD regressor (``shared.scale_regressor``), verified."""
        path = self.named_file("scale_regressor")
        return ScaleRegressor.load(path) if path else None
