import numpy as np
import pytest

from lab.data.splits import group_of, infer_sequences, split_images
from shared.annotations import AnnotatedImage, ImageMeta


def _img(name, sequence=None):
    return AnnotatedImage(ImageMeta(name, 10, 10, sequence=sequence), [])


KIT = [f"MOS{n}.png" for n in (74, 80, 86, 93, 155, 163, 171, 179)]


def test_kit_frames_form_two_sequences():
    seq = infer_sequences(KIT)
    assert {seq[n] for n in KIT[:4]} == {"MOS74-93"}
    assert {seq[n] for n in KIT[4:]} == {"MOS155-179"}


def test_dota_crops_group_by_source_and_loose_names_stand_alone():
    ids = ["P0861__1024__0___1648.jpg", "P0861__1024__824___0.jpg", "P1053__1024__0___90.jpg",
           "harbour.jpg", "scene7.png"]
    seq = infer_sequences(ids)
    assert seq[ids[0]] == seq[ids[1]] == "P0861"
    assert seq[ids[2]] == "P1053"
    assert "harbour.jpg" not in seq and "scene7.png" not in seq


def test_export_part_prefixes_do_not_cut_a_run_of_frames():
    # frames gathered from a Roboflow export's train/valid/test folders keep the part in
    # their names; neighbouring frames of one flight are one run whatever the part
    ids = ["train__DJI_0258_JPG.rf.0a.jpg", "valid__DJI_0259_JPG.rf.1b.jpg",
           "test__DJI_0260_JPG.rf.2c.jpg", "train__DJI_0261_JPG.rf.3d.jpg",
           "valid__DJI_0290_JPG.rf.4e.jpg", "train__DJI_0291_JPG.rf.5f.jpg"]
    seq = infer_sequences(ids)
    assert {seq[i] for i in ids[:4]} == {"DJI_258-261"}
    assert {seq[i] for i in ids[4:]} == {"DJI_290-291"}


def test_split_is_deterministic_and_never_divides_a_group():
    images = [_img(n) for n in KIT] + [_img(f"r{k}", sequence=f"fp{k % 3}") for k in range(9)]
    images += [_img(f"single{k}.jpg") for k in range(20)]
    parts = split_images(images, seed=5)
    assert parts == split_images(list(reversed(images)), seed=5)  # input order irrelevant
    assert sum(len(v) for v in parts.values()) == len(images)
    groups = group_of(images)
    owner = {}
    for name, imgs in parts.items():
        for img in imgs:
            assert owner.setdefault(groups[img.image_id], name) == name
    other = split_images(images, seed=6)
    assert {k: [i.image_id for i in v] for k, v in other.items()} != \
           {k: [i.image_id for i in v] for k, v in parts.items()}


def test_fractions_are_respected_roughly():
    images = [_img(f"img_{k:03d}.x") for k in range(100)]
    # names share a prefix and number: one sequence unless inference is off
    parts = split_images(images, {"train": 0.8, "test": 0.2}, seed=0, infer=False)
    assert (len(parts["train"]), len(parts["test"])) == (80, 20)


def test_every_positive_split_gets_a_group_and_bad_fractions_raise():
    images = [_img("a.jpg"), _img("b.jpg"), _img("c.jpg")]
    parts = split_images(images, {"train": 0.9, "val": 0.05, "test": 0.05})
    assert all(len(v) == 1 for v in parts.values())
    with pytest.raises(ValueError):
        split_images(images, {"train": -1})
    with pytest.raises(ValueError):
        split_images(images, {"train": 0})


def test_balanced_splits_hold_every_class_in_proportion():
    # 40 images: class A in 30 of them (1 object each), class B only in 6 crowded ones
    rng = np.random.default_rng(0)
    images = [AnnotatedImage(ImageMeta(f"img{i:02d}x", 8, 8), []) for i in range(40)]
    counts = {img.image_id: np.array([1.0, 0.0]) if i < 30 else np.array([0.0, 0.0])
              for i, img in enumerate(images)}
    for i in rng.choice(40, 6, replace=False):
        counts[images[i].image_id] = counts[images[i].image_id] + [0.0, 20.0]
    fractions = {"train": 0.5, "val": 0.25, "test": 0.25}
    parts = split_images(images, fractions, seed=3, infer=False,
                         class_counts=lambda img: counts[img.image_id])
    ids = [i.image_id for p in parts.values() for i in p]
    assert sorted(ids) == sorted(i.image_id for i in images)  # each image exactly once
    for name, part in parts.items():
        held = np.sum([counts[i.image_id] for i in part], axis=0)
        assert held[1] >= 20  # every split gets some of the rare, crowded class
        assert abs(held[0] / 30 - fractions[name]) <= 0.1
        assert abs(len(part) / 40 - fractions[name]) <= 0.1
    again = split_images(images, fractions, seed=3, infer=False,
                         class_counts=lambda img: counts[img.image_id])
    assert again == parts


def test_roboflow_export_names_keep_their_frame_numbers():
    names = [f"GE_{n}_jpg.rf.{h}.jpg" for n, h in ((1, "ab"), (2, "c0"), (3, "d1"),
                                                     (40, "e2"), (41, "f3"), (42, "09"))]
    seqs = infer_sequences(names)
    assert seqs[names[0]] == seqs[names[2]] == "GE_1-3"
    assert seqs[names[3]] == seqs[names[5]] == "GE_40-42"
