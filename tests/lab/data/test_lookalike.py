import numpy as np

from lab.data.lookalike import lookalike_groups
from lab.synth import SceneConfig, generate_scene
from shared.annotations import AnnotatedImage, ImageMeta


def _crop(pixels, x, y, size, image_id):
    return AnnotatedImage(ImageMeta(image_id, size, size), [],
                          pixels=np.ascontiguousarray(pixels[y:y + size, x:x + size]))


def test_overlapping_crops_group_and_other_places_do_not():
    a = generate_scene(SceneConfig(width=768, height=768, layout="urban", cloud_cover=0),
                       seed=1).pixels
    b = generate_scene(SceneConfig(width=512, height=512, layout="airport", cloud_cover=0),
                       seed=2).pixels
    images = [_crop(a, 0, 0, 512, "a1"), _crop(a, 200, 150, 512, "a2"),
              _crop(b, 0, 0, 512, "b1")]
    groups = lookalike_groups(images, side=512)
    assert groups["a1"] == groups["a2"]
    assert groups["b1"] != groups["a1"]


def test_tiles_cut_side_by_side_group_only_when_asked():
    a = generate_scene(SceneConfig(width=1024, height=512, layout="urban", cloud_cover=0),
                       seed=1).pixels
    b = generate_scene(SceneConfig(width=512, height=512, layout="airport", cloud_cover=0),
                       seed=2).pixels
    images = [_crop(a, 0, 0, 512, "left"), _crop(a, 512, 0, 512, "right"),
              _crop(b, 0, 0, 512, "other")]
    groups = lookalike_groups(images, orb=False, adjacent=True)
    assert groups["left"] == groups["right"] != groups["other"]
    plain = lookalike_groups(images, orb=False)
    assert len(set(plain.values())) == 3
