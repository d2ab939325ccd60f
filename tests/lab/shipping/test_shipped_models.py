"""The counters shipped under models/: intact, loadable, and ONNX equal to PyTorch."""

import numpy as np
import pytest
import torch

from ground.counter import GroundCounter
from lab.models.nets import build, count_flops
from lab.shipping.ship import PARITY_TOLERANCE
from lab.synth import SceneConfig, generate_scene
from onboard.counter import OnboardCounter
from shared.model_bundle import MODELS_DIR, card_path
from shared.model_card import load_card, sha256_of

PAIRS = sorted(p.name for p in MODELS_DIR.iterdir()
               if (p / "shallow.json").exists() and (p / "deep.json").exists())


def test_the_aircraft_pair_is_shipped():
    assert "aircraft" in PAIRS


@pytest.mark.parametrize("name", PAIRS)
def test_cards_match_files_and_flops(name):
    for role in ("onboard", "ground"):
        card = load_card(card_path(name, role))
        assert sha256_of(MODELS_DIR / name / card.weights) == card.sha256
        # Small enough for the images and the uplink: the onboard model must fit an update
        # bundle; the ground's (float16 on a deeper trunk) only its image.
        limit = 8 * 2**20 if role == "onboard" else 16 * 2**20
        assert (MODELS_DIR / name / card.weights).stat().st_size < limit
        net = build(card.architecture, card.arch_config)
        assert count_flops(net, card.input_size) == card.flops_per_tile
    shallow, deep = load_card(card_path(name, "onboard")), load_card(card_path(name, "ground"))
    # The ground counter is the heavier, deeper one (a pretrained trunk pair's depth ratio is
    # about 4x per pass, before the ground's test-time augmentation).
    assert deep.flops_per_tile >= 4 * shallow.flops_per_tile


@pytest.mark.parametrize("name", PAIRS)
def test_onnx_and_pytorch_agree_on_scene_tiles(name):
    counter = OnboardCounter.shipped(name, threads=1, variant="fp32")
    card = counter.card
    net = build(card.architecture, card.arch_config).eval()
    net.load_state_dict(torch.load(MODELS_DIR / name / card.extra["torch_weights"],
                                   weights_only=True))
    cls = {"aircraft": "aircraft", "ship": "ship"}.get(name, "vehicle")
    scene = generate_scene(SceneConfig(width=512, height=512, gsd_m=card.model_gsd_m,
                                       classes=(cls,)), seed=5)
    batch = np.stack(list(counter.inputs(scene.pixels, card.model_gsd_m)))
    d_ort = counter.run_batch(batch)[0]
    with torch.no_grad():
        d_pt, _ = net(torch.from_numpy(batch))
    d_pt = d_pt.numpy()
    assert np.abs(d_ort - d_pt).max() < PARITY_TOLERANCE["map_abs"]
    assert np.abs(d_ort.sum((1, 2, 3)) - d_pt.sum((1, 2, 3))).max() < \
        PARITY_TOLERANCE["count_abs"]
    # The deployed model (int8 where it kept fp32's counts at export, else fp32) counts the
    # same tiles within a few percent of an object.
    deployed = OnboardCounter.shipped(name, threads=1)
    assert deployed.variant == card.extra.get("deployed_variant", "int8-exact")
    d_deployed = deployed.run_batch(batch)[0]
    assert np.abs(d_deployed.sum((1, 2, 3)) - d_pt.sum((1, 2, 3))).max() < \
        0.05 * max(1.0, float(d_pt.sum((1, 2, 3)).max()))


@pytest.mark.slow
@pytest.mark.parametrize("name", PAIRS)
def test_ground_counter_loads_and_counts(name):
    ground = GroundCounter.shipped(name, threads=1)
    out = ground.count(np.zeros((300, 300, 3), np.uint8), scene_gsd=ground.card.model_gsd_m)
    assert out.counts.shape == (len(out.grid),)
    assert out.total < 1.0  # a black scene holds nothing
