"""Exploration: a share of each scene's bytes for tiles drawn at random among those the
throttle accepted, never among those it sent by value; the share holds in expectation, the
draw is uniform whatever a tile's size, reproducible from the seed and the scene id, and
flagged on the wire."""

import math

import numpy as np
import pytest

from shared import limits
from shared.pipeline import exploration
from shared.pipeline.config import PipelineConfig
from shared.pipeline.decisions import DOWNLINK, Candidates
from shared.pipeline.scene import SceneBudgets, SceneCounter, plan_scene
from shared.pipeline.selection import ACCEPT
from shared.pipeline.throttling import throttle
from shared.wire import link_pb2
from shared.wire.convert import scene_header, scene_summary, summary_explored

from .test_dedup import textured, with_object
from .test_scene import ENERGY, FLOPS, count_fn, scene_of


@pytest.mark.parametrize("bad", [-0.01, 0.21, 1.0, math.nan, math.inf, "0.1", None, True])
def test_a_bad_share_is_refused_saying_what_is_allowed(bad, tmp_path):
    with pytest.raises(ValueError, match=r"exploration_share must be a finite number in "
                                         r"\[0, 0.2\]"):
        PipelineConfig(exploration_share=bad)
    (tmp_path / "p.json").write_text(f'{{"exploration_share": {1.5}}}')
    with pytest.raises(ValueError, match="exploration_share"):
        PipelineConfig.load(tmp_path / "p.json")


def test_good_shares_are_kept():
    for share in (0, 0.0, 0.02, 0.05, 0.2):
        assert PipelineConfig(exploration_share=share).exploration_share == share


def scene_candidates(n=200, seed=0):
    """A scene's tiles: some uncounted (NaN), confidences spread, sizes from 2 kB to 40 kB."""
    rng = np.random.default_rng(seed)
    onboard = rng.poisson(2.0, n).astype(float)
    conf = rng.uniform(0, 1, n)
    onboard[:10], conf[:10] = np.nan, np.nan
    sizes = {q: (rng.uniform(2_000, 40_000, n) * q / 90).astype(np.int64) for q in (50, 90)}
    return Candidates(onboard, conf, sizes)


def run(c, budget, share, rng, reused=None, policy="low-conf-first"):
    def again(b, eligible=None):
        cc = Candidates(c.onboard, c.confidence, c.sizes, eligible)
        return throttle(policy, cc, b, 90)

    d0 = again(budget)
    return d0, exploration.explore(c, d0, budget, share, 90, rng, again, reused=reused)


def test_exploration_tiles_come_only_from_tiles_accepted_onboard():
    c = scene_candidates()
    reused = np.zeros(len(c), bool)
    reused[10:30] = True  # counts copied from a near-duplicate: not the counter's own
    seen = set()
    for seed in range(60):
        d0, d = run(c, 400_000, 0.2, np.random.default_rng(seed), reused)
        explored = np.flatnonzero(d.explored) if d.explored is not None else []
        for i in explored:
            assert d0.action[i] == ACCEPT and not reused[i] and not np.isnan(c.onboard[i])
            assert d.action[i] == DOWNLINK and d.quality[i] == 90
        if len(explored):  # the rest: the throttle's choice in the bytes left
            eligible = np.ones(len(c), bool)
            eligible[explored] = False
            spent = exploration.explored_bytes(d, c.sizes)
            rest = throttle("low-conf-first", Candidates(c.onboard, c.confidence, c.sizes,
                                                         eligible), 400_000 - spent, 90)
            rest.action[explored] = DOWNLINK
            assert np.array_equal(rest.action, d.action)
            assert rest.bytes_used + spent == d.bytes_used
        assert d.bytes_used <= 400_000
        seen |= set(int(i) for i in explored)
    assert len(seen) > 20  # the draw moves around the pool


def test_the_share_of_bytes_holds_in_expectation_and_the_budget_always():
    c = scene_candidates(seed=3)
    budget, share = 300_000, 0.05
    spent = []
    for seed in range(400):
        _, d = run(c, budget, share, np.random.default_rng(seed))
        assert d.bytes_used <= budget
        spent.append(exploration.explored_bytes(d, c.sizes))
    # Expected exactly share x budget (K x mean size); the mean of 400 draws within 10 %.
    assert np.mean(spent) == pytest.approx(share * budget, rel=0.10)
    assert max(spent) < 4 * share * budget


def test_the_draw_is_uniform_whatever_a_tiles_size():
    sizes = np.r_[np.full(20, 1_000), np.full(20, 30_000)]  # small and large tiles
    pool = np.arange(40)
    hits = np.zeros(40)
    for seed in range(3000):
        hits[exploration.draw(pool, sizes, 20_000, np.random.default_rng(seed))] += 1
    # E[K] = 20000 / 15500 per draw, the same chance for each tile, small or large.
    expected = 3000 * (20_000 / sizes.mean()) / 40
    assert hits[:20].mean() == pytest.approx(expected, rel=0.08)
    assert hits[20:].mean() == pytest.approx(expected, rel=0.08)


def test_a_seed_and_a_scene_id_give_the_same_draw_again():
    c = scene_candidates(seed=5)
    a = run(c, 300_000, 0.1, exploration.scene_rng(7, "scene-a"))[1]
    b = run(c, 300_000, 0.1, exploration.scene_rng(7, "scene-a"))[1]
    assert np.array_equal(a.explored, b.explored) and np.array_equal(a.action, b.action)
    others = [run(c, 300_000, 0.1, exploration.scene_rng(s, i))[1].explored
              for s, i in ((8, "scene-a"), (7, "scene-b"))]
    assert any(o is None or not np.array_equal(o, a.explored) for o in others)


def test_no_share_or_no_pool_changes_nothing():
    c = scene_candidates()
    d0, d = run(c, 300_000, 0.0, np.random.default_rng(0))
    assert d is d0 and d.explored is None
    # The bent pipe counts nothing onboard: nothing to explore.
    d0, d = run(c, 300_000, 0.2, np.random.default_rng(0), policy="vanilla")
    assert d is d0


def test_a_plan_explores_within_its_budget_and_the_wire_says_which_tiles():
    tiles = [with_object(textured(s), 20 + 10 * s, 40) for s in range(4)]
    scene = np.concatenate([scene_of(tiles), scene_of(tiles[::-1])], axis=0)  # 4 x 2 tiles
    cfg = PipelineConfig(policy="low-conf-first", dedup=False, adaptive_tiling=False,
                         exploration_share=0.2, seed=1)
    found = None
    for seed in range(40):  # a draw that explores (at 20 % of a 2-tile budget: most do)
        plan = plan_scene(scene, f"s{seed}", SceneCounter(count_fn([]), FLOPS, 256),
                          SceneBudgets(60_000, 100.0, ENERGY), cfg)
        if plan.decisions.explored is not None:
            found = plan
            break
    assert found is not None
    d = found.decisions
    assert d.bytes_used <= found.byte_budget
    summary = scene_summary(found)
    assert summary_explored(summary).tolist() == d.explored.tolist()
    header = scene_header(found, 0.5, None, capture_time=None, onboard_model="m",
                          ground_model="g", input_size=256, policy=cfg.policy)
    limits.check_summary(summary, header)
    flagged = [t for t in summary.tiles if t.exploration]
    assert flagged and all(t.decision == link_pb2.DOWNLINKED for t in flagged)
    # A summary that calls an accepted tile an exploration tile is refused.
    summary.tiles[flagged[0].index].decision = link_pb2.ACCEPTED
    with pytest.raises(limits.OutOfRange, match="only a downlinked tile"):
        limits.check_summary(summary, header)
