"""The cheap rejection before verification's full comparison never changes a verdict."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.pipeline import dedup


def _pairs(rng):
    base = rng.normal(120, 40, (16, 16))
    for _ in range(60):
        a = np.clip(np.kron(base + rng.normal(0, 30, (16, 16)), np.ones((4, 4))) +
                    rng.normal(0, 5, (64, 64)), 0, 255).astype(np.uint8)
        kind = rng.integers(0, 3)
        if kind == 0:  # a revisit: gain, offset and noise
            b = np.clip(a * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20) +
                        rng.normal(0, 2, a.shape), 0, 255).astype(np.uint8)
        elif kind == 1:  # an object moved
            b = a.copy()
            y, x = rng.integers(0, 56, 2)
            b[y:y + 8, x:x + 8] = 255 - b[y:y + 8, x:x + 8]
        else:  # other ground
            b = np.clip(np.kron(rng.normal(120, 40, (16, 16)), np.ones((4, 4))), 0,
                        255).astype(np.uint8)
        yield a, b


def test_the_bound_is_below_the_rms_and_verdicts_are_unchanged():
    rng = np.random.default_rng(0)
    verdicts = []
    for a, b in _pairs(rng):
        qa, qb = dedup.grey_quantiles(a), dedup.grey_quantiles(b)
        sa, sb = dedup.block_stats(a), dedup.block_stats(b)
        lut = np.interp(np.arange(256.0), qb, qa)
        rms, _ = dedup.residual(a, b, qa, qb)
        assert dedup.rms_lower_bound(lut, sa, sb) <= rms + 1e-9
        fast = dedup.near_duplicate(a, b, qa=qa, qb=qb, sa=sa, sb=sb)
        assert fast == dedup.near_duplicate(a, b, qa=qa, qb=qb)
        verdicts.append(fast)
    assert any(verdicts) and not all(verdicts)


@pytest.mark.parametrize("shape", [(64, 64), (30, 64), (3, 2)])
def test_block_stats_of_partial_thumbnails(shape):
    t = np.arange(np.prod(shape)).reshape(shape).astype(np.uint8)
    stats = dedup.block_stats(t)
    if min(shape) < dedup.BOUND_BLOCK:
        assert stats is None
    else:
        assert stats.pixels == t.size
        assert len(stats.mean) == (shape[0] // 4) * (shape[1] // 4)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.integers(0, 2 ** 32 - 1),
       st.floats(0.5, 80.0))
def test_histogram_quantiles_are_numpys_to_the_bit(h, w, seed, spread):
    # Thumbnails of any size (partial tiles give smaller ones), from flat to full range.
    rng = np.random.default_rng(seed)
    a = np.clip(rng.normal(rng.uniform(0, 255), spread, (h, w)), 0, 255).astype(np.uint8)
    expected = np.percentile(a.astype(np.float64).ravel(), dedup.QUANTILES)
    assert np.array_equal(dedup.grey_quantiles(a), expected)
    # Non-uint8 input takes numpy's own path.
    assert np.array_equal(dedup.grey_quantiles(a.astype(np.float32)), expected)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), st.integers(0, 2 ** 32 - 1))
def test_block_stats_are_the_blocks_own_sums_minima_and_maxima(h, w, seed):
    t = np.random.default_rng(seed).integers(0, 256, (h, w)).astype(np.uint8)
    stats, b = dedup.block_stats(t), dedup.BOUND_BLOCK
    if h < b or w < b:
        assert stats is None
        return
    blocks = t[:h // b * b, :w // b * b].reshape(h // b, b, w // b, b)
    assert np.array_equal(stats.mean, blocks.sum(axis=(1, 3), dtype=np.int64).ravel() / b ** 2)
    assert np.array_equal(stats.low, blocks.min(axis=(1, 3)).ravel())
    assert np.array_equal(stats.high, blocks.max(axis=(1, 3)).ravel())
    assert stats.low.dtype == np.uint8 and stats.pixels == t.size


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.floats(0.0, 80.0))
def test_rows_interpolate_as_np_interp_to_the_bit(seed, spread):
    # Quantiles of flat thumbnails repeat levels (zero-width segments); wide ones do not.
    rng = np.random.default_rng(seed)

    def thumb() -> np.ndarray:
        return np.clip(rng.normal(rng.uniform(0, 255), spread, (16, 16)), 0,
                       255).astype(np.uint8)

    xp = dedup.grey_quantiles(thumb())
    fp = np.stack([dedup.grey_quantiles(thumb()) for _ in range(4)])
    expected = np.stack([np.interp(np.arange(256.0), xp, row) for row in fp])
    assert np.array_equal(dedup._interp_rows(xp, fp), expected)


def test_reuse_source_finds_what_pairwise_verification_finds():
    # The batched rejection and the pair-by-pair comparison agree on every tile.
    rng = np.random.default_rng(3)
    thumbs = [a for pair in _pairs(rng) for a in pair][:60]
    n = len(thumbs)
    plan = dedup.ContextPlan(np.zeros(n, np.int64), np.arange(n), 1,
                             z=rng.normal(size=(n, 4)))
    found = 0
    for i in range(1, n):
        counted = list(range(i))
        expected = next((j for j in dedup._nearest(i, plan, np.asarray(counted)).tolist()
                         if dedup.near_duplicate(thumbs[j], thumbs[i])), None)
        assert dedup.reuse_source(i, plan, counted, thumbs) == expected
        found += expected is not None
    assert found  # some tiles do have a near-duplicate


def test_choose_k_scores_as_silhouette_score_on_its_sample():
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(4 * c, 0.6, (40, 3)) for c in range(3)])
    scores = {k: silhouette_score(x, KMeans(k, n_init=4, random_state=0).fit_predict(x),
                                  sample_size=len(x), random_state=0) for k in range(2, 6)}
    k, labels = dedup.choose_k(x, 5, 0)
    assert k == max(scores, key=scores.get) == 3
    assert len(set(labels)) == 3
