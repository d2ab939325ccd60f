import numpy as np
import pytest
import torch

from lab.training.data import Augment, load_scene, sample
from lab.training.loop import TrainConfig, soft_jaccard_loss, train
from shared.annotations import AnnotatedImage, ImageMeta, ObjectAnnotation


def _scene_image(n_objects=6, size=192, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(60, 90, (size, size, 3), dtype=np.uint8)
    objs = []
    for k in range(n_objects):
        x, y = 30 + (k % 3) * 60, 40 + (k // 3) * 80
        pixels[y - 6:y + 6, x - 10:x + 10] = 230
        objs.append(ObjectAnnotation.from_box("plane", x - 10, y - 6, x + 10, y + 6))
    return AnnotatedImage(ImageMeta(f"s{seed}", size, size, gsd_m=1.0), objs, pixels=pixels)


def test_scene_targets_at_model_gsd():
    img = _scene_image()
    img.meta.gsd_m = 0.5
    scene = load_scene(img, model_gsd=1.0, classes={"plane"})
    assert scene.pixels.shape == (96, 96, 3)
    assert scene.density.sum() == pytest.approx(6, abs=1e-3) and scene.count == 6
    assert load_scene(img, 1.0, {"car"}).count == 0


def test_augmented_crop_keeps_density_mass_of_inner_objects():
    img = AnnotatedImage(ImageMeta("c", 400, 400, gsd_m=1.0),
                         [ObjectAnnotation.from_box("p", 190, 190, 210, 210)],
                         pixels=np.zeros((400, 400, 3), np.uint8))
    scene = load_scene(img, 1.0, None)
    rng = np.random.default_rng(3)
    # Crops centre within ~2 x crop/4 of the object: with a 256 px crop it is always inside,
    # whatever the rotation and zoom, so the crop's density must sum to one object.
    aug = Augment(crop=256, object_bias=1.0)
    for _ in range(10):
        x, d, m = sample(scene, rng, aug, stride=4)
        assert x.shape == (3, 256, 256) and d.shape == m.shape == (64, 64)
        assert m.min() >= 0.0 and m.max() <= 1.0 and m.sum() > 0
        assert d.sum() == pytest.approx(1.0, abs=0.03)


def test_soft_jaccard_is_zero_for_perfect_and_high_for_wrong():
    target = torch.zeros(1, 1, 8, 8)
    target[..., :4, :] = 1
    perfect = (target * 2 - 1) * 50
    assert float(soft_jaccard_loss(perfect, target)) < 0.02
    assert float(soft_jaccard_loss(-perfect, target)) > 0.95


def _cfg(**kw):
    base = dict(arch="shallow-mbv2-small", input_size=64, epochs=1, samples_per_epoch=32,
                batch_size=8, threads=1, lr=3e-3)
    return TrainConfig(**{**base, **kw})


def test_training_is_deterministic_and_resumable(tmp_path):
    scenes = [load_scene(_scene_image(seed=s), 1.0, None) for s in range(2)]
    a = train(_cfg(), scenes[:1], scenes[1:], tmp_path / "a")
    b = train(_cfg(), scenes[:1], scenes[1:], tmp_path / "b")
    wa = torch.load(tmp_path / "a" / "best.pt", weights_only=False)["ema"]
    wb = torch.load(tmp_path / "b" / "best.pt", weights_only=False)["ema"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["history"] == [{**h, "seconds": a["history"][0]["seconds"]} for h in b["history"]]
    resumed = train(_cfg(epochs=2), scenes[:1], scenes[1:], tmp_path / "a")
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert (tmp_path / "a" / "history.json").exists()
