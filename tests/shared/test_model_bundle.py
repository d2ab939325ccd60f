"""A pair's files found by one rule and loaded once, each checked against its card."""

import shutil

import pytest

from shared.model_bundle import MODELS_DIR, ModelBundle, PairFiles, card_path, shipped_pairs
from shared.model_card import ModelIntegrityError


def test_pair_files_are_where_the_pair_folder_says():
    files = PairFiles.of("aircraft")
    assert files.folder == MODELS_DIR / "aircraft" and files.name == "aircraft"
    assert files.card("onboard").name == "shallow.json"
    assert files.card("ground").name == "deep.json"
    assert files.tiling.name == "tiling.json" and files.error_model.name == "error_model.json"
    assert card_path("aircraft", "ground") == files.card("ground")
    with pytest.raises(ValueError, match="role"):
        files.card("relay")
    assert "aircraft" in shipped_pairs("onboard")


def test_a_bundle_loads_each_file_once():
    bundle = ModelBundle.shipped("aircraft", "onboard")
    assert bundle.card.role == "onboard" and bundle.weights.is_file()
    assert bundle.tiling is bundle.tiling  # kept, not read again
    assert bundle.error_model is not None and bundle.error_model is bundle.error_model
    assert bundle.confidence is not None


def test_a_named_file_that_does_not_match_its_card_is_refused(tmp_path):
    pair = tmp_path / "aircraft"
    shutil.copytree(MODELS_DIR / "aircraft", pair, ignore=shutil.ignore_patterns("eval"))
    bundle = ModelBundle(PairFiles(pair).card("onboard"))
    name = bundle.card.extra["confidence"]
    (pair / name).write_text((pair / name).read_text() + " ")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        bundle.confidence  # noqa: B018 (loading it is the check)
    assert bundle.named_file("no-such-key") is None
