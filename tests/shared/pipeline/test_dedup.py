import numpy as np
import pytest

from shared.annotations import Footprint
from shared.pipeline import dedup
from shared.pipeline.scene import _remember
from shared.tile_grid import TileGrid


def textured(seed: int, size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 200, (size // 16, size // 16, 3)).astype(np.float32)
    import cv2

    img = cv2.resize(base, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def with_object(img: np.ndarray, x: int, y: int) -> np.ndarray:
    out = img.copy()
    out[y:y + 24, x:x + 40] = 250
    return out


def relit(img: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = img.astype(np.float32) * 1.1 + 8
    x = 255 * (np.clip(x, 0, 255) / 255) ** 0.9 + rng.normal(0, 2, img.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def test_a_relit_revisit_verifies_and_a_moved_object_does_not():
    tile = with_object(textured(1), 60, 60)
    a = dedup.thumbnail(tile, 256)
    assert dedup.near_duplicate(a, dedup.thumbnail(relit(tile, 2), 256))
    moved = with_object(textured(1), 160, 150)
    assert not dedup.near_duplicate(a, dedup.thumbnail(relit(moved, 2), 256))


def test_look_alike_tiles_with_different_counts_are_not_duplicates():
    # Same ground, near-identical moments, but one object more.
    ground = textured(5)
    one, two = with_object(ground, 30, 30), with_object(with_object(ground, 30, 30), 150, 180)
    d1, d2 = dedup.descriptor(one), dedup.descriptor(two)
    assert np.abs(d1 - d2).max() < 1.0  # moments alone would call them the same
    assert not dedup.near_duplicate(dedup.thumbnail(one, 256), dedup.thumbnail(two, 256))


def test_hu_descriptor_is_rotation_invariant():
    tile = with_object(textured(3), 100, 60)
    d, r = dedup.descriptor(tile), dedup.descriptor(np.rot90(tile).copy())
    assert np.allclose(d, r, atol=1e-3)


def test_contexts_group_alike_tiles_and_put_representatives_first():
    tiles = [textured(s) for s in (1, 1, 1)] + [np.full((256, 256, 3), v, np.uint8)
                                                 for v in (30, 31, 32)]
    plan = dedup.plan_contexts(np.stack([dedup.descriptor(t) for t in tiles]))
    assert plan.k >= 2
    assert len(set(plan.contexts[:3])) == 1 and plan.contexts[0] != plan.contexts[3]
    reps = plan.order[: plan.k]
    assert sorted(set(plan.contexts[reps])) == sorted(set(plan.contexts))


def test_choose_k_with_few_tiles_is_one_context():
    assert dedup.choose_k(np.zeros((3, 4)))[0] == 1


def test_revisit_cache_reuses_the_earlier_density_over_the_shifted_footprint():
    rng = np.random.default_rng(0)
    scene = textured(7, 512)
    grid = TileGrid(512, 512, 256)
    thumbs = [dedup.thumbnail(grid.crop(scene, i), 256) for i in range(4)]
    dens = {i: rng.uniform(0, 0.01, (64, 64)).astype(np.float32) for i in range(4)}
    fp = Footprint((1000.0, 0.5, 0.0, 2000.0, 0.0, -0.5))
    cache = dedup.RevisitCache()
    _remember(cache, "first", fp, grid, thumbs, dens, 256 / dedup.THUMB)
    # The revisit starts 64 px right and 32 px down: its tile at (0, 0) is the ground the
    # first capture saw at (64, 32).
    revisit = relit(np.ascontiguousarray(scene[32:32 + 256, 64:64 + 256]), 4)
    fp2 = Footprint((1000.0 + 64 * 0.5, 0.5, 0.0, 2000.0 - 32 * 0.5, 0.0, -0.5))
    hit = cache.lookup(fp2, 0, 0, dedup.thumbnail(revisit, 256), 256 / dedup.THUMB)
    assert hit is not None and hit[1] == "first"
    full = np.zeros((128, 128))
    for i, (y, x) in enumerate([(0, 0), (0, 64), (64, 0), (64, 64)]):
        full[y:y + 64, x:x + 64] = dens[i]
    assert hit[0] == pytest.approx(full[8:72, 16:80].sum(), rel=1e-3)
    # Elsewhere on Earth, or with an object added, no reuse.
    far = Footprint((9000.0, 0.5, 0.0, 2000.0, 0.0, -0.5))
    assert cache.lookup(far, 0, 0, dedup.thumbnail(revisit, 256), 4.0) is None
    changed = dedup.thumbnail(with_object(revisit, 100, 100), 256)
    assert cache.lookup(fp2, 0, 0, changed, 4.0) is None


def test_cache_capacity_is_bounded():
    cache = dedup.RevisitCache(capacity=2)
    fp = Footprint((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    for k in range(3):
        cache.add(f"s{k}", fp, np.zeros((4, 4)), np.zeros((4, 4)), np.ones((4, 4), bool), 4.0)
    assert len(cache) == 2
    with pytest.raises(ValueError):
        dedup.RevisitCache(0)


def test_thumbnails_are_uint8_and_verify_as_their_float_copies():
    tile = with_object(textured(1), 60, 60)
    a, b = dedup.thumbnail(tile, 256), dedup.thumbnail(relit(tile, 2), 256)
    assert a.dtype == np.uint8
    assert dedup.residual(a, b) == dedup.residual(a.astype(np.float32), b.astype(np.float32))


def _plan_of(n: int, seed: int = 0) -> dedup.ContextPlan:
    z = np.random.default_rng(seed).normal(size=(n, 4))
    return dedup.ContextPlan(np.zeros(n, np.int64), np.arange(n), 1, z=z)


def test_verification_is_bounded_to_the_nearest_counted_tiles_of_the_context():
    n = 3 * dedup.VERIFY_CANDIDATES
    plan = _plan_of(n)
    counted = list(range(1, n))
    near = dedup._nearest(0, plan, np.asarray(counted))
    assert len(near) == dedup.VERIFY_CANDIDATES
    assert list(near) == sorted(near)  # in counting order
    d = ((plan.z[1:] - plan.z[0]) ** 2).sum(1)
    assert set(near.tolist()) == set((np.argsort(d)[: dedup.VERIFY_CANDIDATES] + 1).tolist())
    few = np.arange(1, dedup.VERIFY_CANDIDATES + 1)
    assert np.array_equal(dedup._nearest(0, plan, few), few)  # small contexts: every tile


def test_reuse_source_verifies_only_bounded_candidates_of_its_own_context():
    n = 2 * dedup.VERIFY_CANDIDATES + 2
    plan = _plan_of(n)
    plan.contexts[n // 2:] = 1
    plan.verified = {}
    thumbs = [dedup.thumbnail(textured(s), 256) for s in range(n)]
    thumbs[n - 1] = thumbs[n // 2].copy()  # a duplicate of a counted tile of its context
    plan.z[n - 1] = plan.z[n // 2]
    j = dedup.reuse_source(n - 1, plan, list(range(n - 1)), thumbs)
    assert j == n // 2
    assert {a for a, _ in plan.verified} <= set(range(n // 2, n - 1))  # its context only
    assert len(plan.verified) <= dedup.VERIFY_CANDIDATES


def test_cache_bytes_are_bounded():
    fp = Footprint((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    one = 16 * (4 + 4 + 1)  # a 4 x 4 mosaic: float32 thumb and density, bool valid
    cache = dedup.RevisitCache(max_bytes=2 * one)
    for k in range(3):
        cache.add(f"s{k}", fp, np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32),
                  np.ones((4, 4), bool), 4.0)
    assert len(cache) == 2 and cache.nbytes <= 2 * one
    cache.add("big", fp, np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32),
              np.ones((8, 8), bool), 4.0)
    assert "big" not in cache._scenes and len(cache) == 2  # larger than the whole cache
    with pytest.raises(ValueError):
        dedup.RevisitCache(max_bytes=-1)


def test_shift_crop_of_a_window_equals_warping_the_whole_mosaic():
    import cv2

    img = np.random.default_rng(3).uniform(0, 255, (50, 70)).astype(np.float32)
    for x, y, w, h in ((0.0, 0.0, 8, 8), (3.4, 7.75, 16, 9), (61.5, 41.2, 8, 8),
                       (62.0, 42.0, 8, 8), (10.01, 0.99, 60, 49)):
        m = np.float32([[1, 0, x], [0, 1, y]])
        whole = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        assert np.allclose(dedup._shift_crop(img, x, y, w, h), whole, atol=1e-3)
