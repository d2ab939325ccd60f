import numpy as np
import pytest
import torch

from lab.training.data import Augment, load_scene, sample
from lab.training.loop import TrainConfig, loss_terms, soft_jaccard_loss, train
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
    assert scene.density[0].sum() == pytest.approx(6, abs=1e-3) and scene.count == 6
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
        assert x.shape == (3, 256, 256) and d.shape == m.shape == (1, 64, 64)
        assert m.min() >= 0.0 and m.max() <= 1.0 and m.sum() > 0
        assert d.sum() == pytest.approx(1.0, abs=0.03)


def test_a_scene_enlarged_past_its_detail_keeps_that_detail_and_enlarges_in_the_crop():
    img = _scene_image()
    img.meta.gsd_m = 0.25
    scene = load_scene(img, model_gsd=0.5, classes={"plane"}, detail_gsd=1.0)
    # Kept at the detail GSD (1 m: 48 px), enlarged 2x only when a crop is cut from it.
    assert scene.pixels.shape == (48, 48, 3) and scene.enlarge == 2.0
    assert scene.density[0].sum() == pytest.approx(6, abs=1e-3)
    plain = load_scene(img, model_gsd=1.0, classes={"plane"})
    assert np.abs(scene.pixels.astype(int) - plain.pixels).max() <= 1
    # A 100 px scene: a 256 px crop at 2x spans 128 of its pixels, so the crop's centre,
    # kept a quarter crop (32 px) from the scene's edges, always has the object inside.
    one = AnnotatedImage(ImageMeta("c", 100, 100, gsd_m=1.0),
                         [ObjectAnnotation.from_box("p", 40, 40, 60, 60)],
                         pixels=np.zeros((100, 100, 3), np.uint8))
    big = load_scene(one, 0.5, None, detail_gsd=1.0)
    rng = np.random.default_rng(3)
    for _ in range(5):  # the object is 40 px across in the crop, its mass still one
        x, d, m = sample(big, rng, Augment(crop=256, object_bias=1.0, scale=(1, 1),
                                           rotate=False), stride=4)
        assert d.sum() == pytest.approx(1.0, abs=0.03)
        assert 8 * 8 <= (m[0] > 0.5).sum() <= 12 * 12  # 40 px / stride 4 = 10 cells a side


class _Recorder(torch.nn.Module):
    """Counts nothing; keeps the inputs it was given."""

    def __init__(self, channels=1):
        super().__init__()
        self.inputs, self.channels = [], channels

    def forward(self, x):
        self.inputs.append(x)
        out = torch.zeros(x.shape[0], self.channels, x.shape[2] // 4, x.shape[3] // 4)
        return out, out


def test_validation_cuts_an_enlarged_scene_into_tiles_of_the_inputs_footprint():
    from lab.training.loop import validate

    scene = load_scene(_scene_image(), 0.5, {"plane"}, detail_gsd=1.0)  # 192 px at 1 m
    model = _Recorder()
    metrics = validate(model, [scene], input_size=128)
    x = torch.cat(model.inputs)
    # 64 px of the kept scene per tile (its 128 px input footprint at 0.5 m), enlarged to
    # fill the input: 3 x 3 tiles, none with a black margin.
    assert x.shape == (9, 3, 128, 128)
    assert bool((x.abs().sum(dim=1) > 0).all())
    assert metrics["groups"]["val/0"]["objects"] == 6


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


def _two_class_image():
    img = _scene_image(n_objects=3)
    img.objects.append(ObjectAnnotation.from_box("car", 150, 150, 158, 154))
    return img


def test_multi_class_scene_has_a_channel_per_class_and_its_label_record():
    scene = load_scene(_two_class_image(), 1.0, [{"plane"}, {"car"}, {"boat"}],
                       labelled=[True, False, True], source="src")
    assert [d is None for d in scene.density] == [False, False, True]
    assert scene.density[0].sum() == pytest.approx(3, abs=1e-3)
    assert scene.density[1].sum() == pytest.approx(1, abs=1e-3)
    assert list(scene.counts) == [3, 1, 0] and scene.count == 3  # labelled classes only
    x, d, m = sample(scene, np.random.default_rng(0), Augment(crop=128), stride=4)
    assert d.shape == m.shape == (3, 32, 32) and d[2].sum() == 0


def test_a_share_of_crops_comes_as_a_downlinked_jpeg_would():
    scene = load_scene(_two_class_image(), 1.0, [{"plane"}, {"car"}])
    clean = Augment(crop=128, radiometry=False)
    lossy = Augment(crop=128, radiometry=False, jpeg_p=1.0, jpeg_quality=(20, 20))
    x0, d0, m0 = sample(scene, np.random.default_rng(3), clean, stride=4)
    x1, d1, m1 = sample(scene, np.random.default_rng(3), lossy, stride=4)
    # The same crop and targets; only the pixels carry the codec's loss.
    assert np.array_equal(d0, d1) and np.array_equal(m0, m1)
    assert 0 < float(np.abs(x0 - x1).mean()) < 0.5


def test_unknown_gsd_scene_keeps_its_resolution_and_always_gets_the_wide_scale_range():
    img = _two_class_image()
    img.meta.gsd_m = None
    scene = load_scene(img, 0.5, [{"plane"}, {"car"}])
    assert scene.pixels.shape[:2] == (192, 192) and not scene.gsd_known
    # Narrow range empty (1, 1): a crop of a known-GSD scene would keep the mass exactly;
    # this one is zoomed across the wide range, so the mass of the centred object varies.
    aug = Augment(crop=256, scale=(1.0, 1.0), wide_scale=(0.5, 2.0), rotate=False,
                  object_bias=1.0, radiometry=False)
    rng = np.random.default_rng(1)
    masses = {round(float(sample(scene, rng, aug, 4)[0].std()), 3) for _ in range(6)}
    assert len(masses) > 1


def test_loss_ignores_unlabelled_classes():
    cfg = _cfg()
    dens_t = torch.zeros(2, 2, 4, 4)
    dens_t[:, 0, 1, 1] = 1.0  # one object of class 0 in each crop
    mask_t = (dens_t > 0).float()
    good = dens_t.clone()
    # The prediction finds class 1 objects the labels do not cover: no loss where unlabelled.
    pred = good.clone()
    pred[:, 1, 2, 2] = 3.0
    logits = (mask_t * 2 - 1) * 50
    labelled = torch.tensor([[True, False], [True, False]])
    masked = loss_terms((pred, logits), dens_t, mask_t, cfg, labelled)
    perfect = loss_terms((good, logits), dens_t, mask_t, cfg, labelled)
    assert float(masked["loss"]) == pytest.approx(float(perfect["loss"]), abs=1e-6)
    unmasked = loss_terms((pred, logits), dens_t, mask_t, cfg, torch.ones(2, 2, dtype=bool))
    assert float(unmasked["count"]) > float(masked["count"]) + 1.0


def test_multi_class_training_validates_per_source_and_class(tmp_path):
    scenes = [load_scene(_two_class_image(), 1.0, [{"plane"}, {"car"}],
                         labelled=[True, s == 0], source=f"src{s}") for s in range(2)]
    result = train(_cfg(arch_config={"classes": 2}), scenes[:1], scenes, tmp_path / "m",
                   class_names=["aircraft", "vehicle"])
    groups = result["history"][-1]["val_groups"]
    assert set(groups) == {"src0/aircraft", "src0/vehicle", "src1/aircraft"}
    assert groups["src1/aircraft"]["objects"] == 3


def test_a_class_known_absent_is_validated_by_its_false_counts():
    from lab.models.nets import build
    from lab.training.loop import validate

    # The image's boats are known to be none (labelled, no object): no relative error for
    # that group, its false count per scene instead, and the selection metric ignores it.
    scene = load_scene(_two_class_image(), 1.0, [{"plane"}, {"boat"}], labelled=[True, True],
                       source="src")
    torch.manual_seed(0)
    out = validate(build("shallow-mbv2", {"classes": 2}), [scene], 64, ["aircraft", "ship"])
    ship = out["groups"]["src/ship"]
    assert ship["objects"] == 0 and ship["relative_cmae"] is None
    assert ship["false_per_scene"] >= 0
    assert out["relative_cmae"] == pytest.approx(out["groups"]["src/aircraft"]["relative_cmae"])


def test_sources_training_can_add_synthetic_scenes_with_every_class_labelled(tmp_path):
    from argparse import Namespace

    from lab.training.cli import _add_synthetic
    from lab.training.sources import SourceScenes

    real = [load_scene(_two_class_image(), 0.5, [{"plane"}, {"car"}, {"boat"}],
                       labelled=[True, False, False], source="src")]
    area = real[0].pixels.shape[0] * real[0].pixels.shape[1]
    found = SourceScenes(real, [1.0 / area])
    _add_synthetic(Namespace(synthetic=2, synthetic_weight=0.25, model_gsd=0.5, seed=0),
                   found, ["aircraft", "ship", "vehicle"])
    assert [s.source for s in found.scenes] == ["src", "synthetic", "synthetic"]
    assert all(s.labelled.all() for s in found.scenes[1:])
    shares = [w * s.pixels.shape[0] * s.pixels.shape[1]
              for w, s in zip(found.weights, found.scenes, strict=True)]
    assert sum(shares[1:]) == pytest.approx(0.25 * shares[0])


def test_exclusive_term_charges_an_unlabelled_class_for_counting_a_labelled_object():
    cfg = _cfg(w_exclusive=1.0)
    dens_t = torch.zeros(1, 2, 4, 4)
    dens_t[0, 0, 1, 1] = 1.0
    mask_t = (dens_t > 0).float()
    logits = (mask_t * 2 - 1) * 50
    labelled = torch.tensor([[True, False]])
    clean = loss_terms((dens_t.clone(), logits), dens_t, mask_t, cfg, labelled)
    spilled = dens_t.clone()
    spilled[0, 1, 1, 1] = 0.5  # the unlabelled class counts the labelled object too
    elsewhere = dens_t.clone()
    elsewhere[0, 1, 3, 3] = 0.5  # ... or something where no labelled object is
    assert float(clean["exclusive"]) == 0.0
    assert float(loss_terms((spilled, logits), dens_t, mask_t, cfg, labelled)["exclusive"]) > 0
    assert float(loss_terms((elsewhere, logits), dens_t, mask_t, cfg, labelled)[
        "exclusive"]) == 0.0


def test_distillation_loss_is_zero_at_the_teacher_and_weighs_unlabelled_classes_most():
    from lab.training.loop import distil_terms

    teacher = torch.rand(2, 3, 8, 8) / 100
    labelled = torch.tensor([[1, 0, 0], [0, 1, 1]])
    same = distil_terms((teacher.clone(), None), teacher, labelled)
    assert float(same["distil_mse"]) == 0.0 and float(same["distil_count"]) == 0.0
    off_free = teacher.clone()
    off_free[0, 1] += 0.01  # a class the first crop's labels do not cover
    off_labelled = teacher.clone()
    off_labelled[0, 0] += 0.01  # a class they cover: the labels' loss teaches it
    free = distil_terms((off_free, None), teacher, labelled)
    covered = distil_terms((off_labelled, None), teacher, labelled)
    assert float(free["distil_mse"]) > 0 and float(covered["distil_mse"]) == 0.0
    assert float(free["distil_count"]) > float(covered["distil_count"]) > 0


def test_a_counter_trains_against_a_teacher_run(tmp_path):
    scenes = [load_scene(_scene_image(seed=s), 1.0, None) for s in range(2)]
    train(_cfg(), scenes[:1], scenes[1:], tmp_path / "teacher")
    (tmp_path / "teacher" / "run.json").write_text(
        '{"config": {"arch": "shallow-mbv2-small", "arch_config": {}}}')
    result = train(_cfg(teacher=str(tmp_path / "teacher"), w_distil=1.0), scenes[:1],
                   scenes[1:], tmp_path / "student")
    assert result["history"][0]["distil_mse"] >= 0.0
    assert "distil_count" in result["history"][0]


def test_a_warm_start_carries_a_run_into_a_later_one(tmp_path):
    from lab.models.nets import build
    from lab.training.loop import load_teacher, save_warm_start, start_from

    scenes = [load_scene(_scene_image(seed=s), 1.0, None) for s in range(2)]
    train(_cfg(), scenes[:1], scenes[1:], tmp_path / "first")
    (tmp_path / "first" / "run.json").write_text(
        '{"config": {"arch": "shallow-mbv2-small", "arch_config": {}}}')
    warm = save_warm_start(tmp_path / "first", tmp_path / "warm.pt")
    best = torch.load(tmp_path / "first" / "best.pt", weights_only=False)["ema"]
    net = build("shallow-mbv2-small")
    start_from(net, warm)
    for k, v in net.state_dict().items():
        assert torch.allclose(v.float(), best[k].float(), atol=1e-2, rtol=1e-2)
    teacher = load_teacher(warm)
    assert not any(p.requires_grad for p in teacher.parameters())
    result = train(_cfg(init_from=str(warm)), scenes[:1], scenes[1:], tmp_path / "second")
    assert result["history"][0]["epoch"] == 1


def test_training_leaves_subnormal_floats_working(tmp_path):
    # Training flushes subnormals for speed; other code in the process (hypothesis, numpy)
    # must find them again afterwards.
    scenes = [load_scene(_scene_image(seed=s), 1.0, None) for s in range(2)]
    train(_cfg(), scenes[:1], scenes[1:], tmp_path / "run")
    tiny = np.array(np.finfo(np.float64).tiny)
    assert float(tiny / 2) > 0.0
    assert float(torch.tensor(1e-40, dtype=torch.float32) * 1.0) > 0.0


def test_a_shipped_weight_file_is_a_teacher_through_the_card_beside_it(tmp_path):
    import json

    from lab.models.nets import build
    from lab.training.loop import load_teacher

    net = build("shallow-mbv2-small")
    torch.save(net.state_dict(), tmp_path / "deep.pt")
    with pytest.raises(ValueError, match="no model card"):
        load_teacher(tmp_path / "deep.pt")
    (tmp_path / "deep.json").write_text(json.dumps(
        {"name": "t", "role": "ground", "architecture": "shallow-mbv2-small",
         "arch_config": {}, "weights": "deep.pt", "sha256": "", "input_size": 64,
         "model_gsd_m": 0.5, "classes": ["aircraft"], "truth_classes": [],
         "flops_per_tile": 0}))
    teacher = load_teacher(tmp_path / "deep.pt")
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(teacher(x)[0], net.eval()(x)[0])
    assert not any(p.requires_grad for p in teacher.parameters())


def test_with_class_scales_each_crop_labels_only_the_classes_of_the_scale_it_is_drawn_at():
    from lab.training.data import CropStream

    scene = load_scene(_two_class_image(), 1.0, [{"plane"}, {"car"}, {"boat"}],
                       labelled=[True, True, False])
    stream = CropStream([scene], Augment(crop=64, object_bias=1.0), 4, seed=0,
                        channel_scale=np.array([1.0, 2.0, 1.0]))
    seen = set()
    for _, (*_crop, labelled) in zip(range(40), stream, strict=False):
        seen.add(tuple(labelled.tolist()))
    assert seen == {(True, False, False), (False, True, False)}


def test_validation_counts_each_class_from_its_scales_pass():
    from lab.training.loop import validate

    scene = load_scene(_two_class_image(), 1.0, [{"plane"}, {"car"}],
                       labelled=[True, True], source="s")  # 192 px
    model = _Recorder(channels=2)
    metrics = validate(model, [scene], 64, ["aircraft", "vehicle"], np.array([1.0, 2.0]))
    sizes = [x.shape[0] for x in model.inputs]
    # The scale-1 pass: 3 x 3 tiles of 64 px; the cars' pass: 6 x 6 tiles of 32 px, each
    # enlarged to the 64 px input.
    assert sum(sizes) == 9 + 36
    assert set(metrics["groups"]) == {"s/aircraft", "s/vehicle"}


def test_crowded_scenes_get_their_share_of_crops_by_object_count():
    from lab.training.sources import scene_weights

    areas, objects = [100, 100, 300], [1, 9, 0]
    drawn = lambda crowd: np.array(scene_weights(areas, objects, 0.2, crowd)) * areas  # noqa: E731
    np.testing.assert_allclose(drawn(0.0), [0.04, 0.04, 0.12])  # by area: the share kept
    np.testing.assert_allclose(drawn(1.0), [0.02, 0.18, 0.0])  # by labelled objects
    np.testing.assert_allclose(drawn(0.5), (drawn(0.0) + drawn(1.0)) / 2)
    # a source with no labelled object is drawn by area whatever the crowd share
    np.testing.assert_allclose(np.array(scene_weights([100, 300], [0, 0], 0.2, 1.0)) *
                               [100, 300], [0.05, 0.15])


def test_the_crowd_share_is_refused_outside_zero_to_one():
    from lab.training.sources import multi_source

    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="crowd share"):
            multi_source(["kit_cars"], "train", 0.5, crowd=bad)


def test_source_shares_from_the_command_line_replace_the_defaults_they_name():
    import argparse

    from lab.training.cli import _shares
    from lab.training.sources import DEFAULT_SHARES

    got = _shares("ships_google_earth=0.3, kit_cars=0")
    assert got["ships_google_earth"] == 0.3 and got["kit_cars"] == 0.0
    assert got["airbus_aircraft"] == DEFAULT_SHARES["airbus_aircraft"]
    for bad in ("ships_google_earth", "nowhere=0.1", "kit_cars=nan", "kit_cars=2"):
        with pytest.raises(argparse.ArgumentTypeError):
            _shares(bad)


def test_local_count_term_asks_each_block_for_its_own_objects():
    cfg = _cfg(w_local_count=1.0, local_block=2)
    dens_t = torch.zeros(1, 1, 4, 4)
    dens_t[0, 0, 0, 0] = 1.0  # one object in the top-left block
    mask_t = (dens_t > 0).float()
    logits = (mask_t * 2 - 1) * 50
    labelled = torch.ones(1, 1, dtype=bool)
    moved = torch.zeros(1, 1, 4, 4)
    moved[0, 0, 3, 3] = 1.0  # the same count, in the wrong block
    within = torch.zeros(1, 1, 4, 4)
    within[0, 0, 1, 1] = 1.0  # the right block, another pixel
    right = loss_terms((dens_t.clone(), logits), dens_t, mask_t, cfg, labelled)
    wrong = loss_terms((moved, logits), dens_t, mask_t, cfg, labelled)
    near = loss_terms((within, logits), dens_t, mask_t, cfg, labelled)
    assert float(right["local_count"]) == 0.0 and float(near["local_count"]) == 0.0
    # the crop's count is right, so only the local term sees the misplaced object
    assert float(wrong["count"]) == 0.0 and float(wrong["local_count"]) > 0.0
    assert float(wrong["loss"]) > float(loss_terms((moved, logits), dens_t, mask_t,
                                                   _cfg(), labelled)["loss"])
    # unlabelled pairs teach nothing
    none = loss_terms((moved, logits), dens_t, mask_t, cfg, torch.zeros(1, 1, dtype=bool))
    assert float(none["local_count"]) == 0.0
