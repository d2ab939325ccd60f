"""A second ground network for some classes: its classes from its pass, the rest from the
main network's, and its weight file checked like every file a card names."""

import json
import shutil

import numpy as np
import pytest
import torch

from ground.class_network import ClassNetworkSpec, CountingNet
from ground.counter import GroundCounter
from shared.model_bundle import MODELS_DIR
from shared.model_card import ModelIntegrityError, sha256_of


class Constant(torch.nn.Module):
    """A network whose every density cell is ``value`` (mask logits too)."""

    def __init__(self, value: float, classes: int = 3):
        super().__init__()
        self.value, self.classes = value, classes

    def forward(self, x):
        out = torch.full((x.shape[0], self.classes, x.shape[2] // 4, x.shape[3] // 4),
                         self.value)
        return out, out.clone()


def test_the_member_counts_its_classes_and_the_main_network_the_rest():
    spec = ClassNetworkSpec.of({"architecture": "any", "classes": ["vehicle"],
                                "input_scale": 2}, ["aircraft", "ship", "vehicle"])
    net = CountingNet(Constant(1.0), ["aircraft", "ship", "vehicle"], None, Constant(0.25),
                      spec)
    density, mask = net(torch.zeros(2, 3, 64, 64))
    assert density.shape == (2, 3, 16, 16)
    assert float(density[:, :2].sum()) == pytest.approx(2 * 2 * 256)  # the main's cells
    # The member's pass is at 2x (32 x 32 cells of 0.25), merged back with its count kept.
    assert float(density[0, 2].sum()) == pytest.approx(32 * 32 * 0.25)
    assert float(mask[0, 2, 0, 0]) == pytest.approx(0.25)


@pytest.mark.parametrize("spec, match", [
    ({"architecture": "a", "classes": ["tank"]}, "some of the card's"),
    ({"architecture": "a", "classes": []}, "some of the card's"),
    ({"architecture": "a", "classes": ["ship"], "input_scale": 1.5}, "integer"),
    ({"classes": ["ship"]}, "architecture"),
])
def test_a_spec_that_does_not_fit_the_card_is_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        ClassNetworkSpec.of(spec, ["aircraft", "ship", "vehicle"])


@pytest.fixture(scope="module")
def pair_with_member(tmp_path_factory):
    """The shipped objects pair with its own ground network added as a member counting
    vehicles at 2x, and the same pair counting vehicles at 2x with one network."""
    root = tmp_path_factory.mktemp("models")
    for name in ("member", "scaled"):
        shutil.copytree(MODELS_DIR / "objects", root / name / "objects")
    card = root / "member" / "objects" / "deep.json"
    rec = json.loads(card.read_text())
    shutil.copy(card.parent / rec["weights"], card.parent / "deep-vehicle.pt")
    rec["extra"].update({"class_network": "deep-vehicle.pt",
                         "class_network_sha256": sha256_of(card.parent / "deep-vehicle.pt"),
                         "class_network_spec": {"architecture": rec["architecture"],
                                                "arch_config": rec["arch_config"],
                                                "classes": ["vehicle"], "input_scale": 2}})
    card.write_text(json.dumps(rec))
    scaled = root / "scaled" / "objects" / "deep.json"
    rec = json.loads(scaled.read_text())
    rec["extra"]["class_input_scale"] = {"vehicle": 2}
    scaled.write_text(json.dumps(rec))
    return root


def test_a_member_that_is_the_main_network_counts_as_one_network_at_its_scale(
        pair_with_member):
    tile = np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3), np.uint8)
    member = GroundCounter.shipped("objects", pair_with_member / "member", threads=1,
                                   precision="fp32")
    scaled = GroundCounter.shipped("objects", pair_with_member / "scaled", threads=1,
                                   precision="fp32")
    plain = GroundCounter.shipped("objects", threads=1, precision="fp32")
    x = member.count(tile[0], 0.5)
    y = scaled.count(tile[0], 0.5)
    z = plain.count(tile[0], 0.5)
    np.testing.assert_allclose(x.density, y.density, rtol=1e-5, atol=1e-6)
    assert not np.allclose(x.class_counts[:, 2], z.class_counts[:, 2])  # vehicles at 2x
    np.testing.assert_allclose(x.class_counts[:, :2], z.class_counts[:, :2], rtol=1e-5,
                               atol=1e-6)


def test_a_member_file_that_does_not_match_its_card_is_refused(pair_with_member, tmp_path):
    folder = tmp_path / "objects"
    shutil.copytree(pair_with_member / "member" / "objects", folder)
    with open(folder / "deep-vehicle.pt", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        GroundCounter.shipped("objects", tmp_path, threads=1)
