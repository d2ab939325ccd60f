"""Recalibration on the ground: fit on a satellite's downlinked tiles, exploration tiles
weighted for the accepted tiles they stand for (never on scenes planned under another
bundle), a map per regime (tiles the satellite sees as empty, tiles where it counts),
nothing changed without enough evidence or when the held-back tiles do not show the refit
better, a miscalibrated confidence corrected, and the command signs the result into a bundle
for that satellite."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from ground.recalibrate import Evidence, evidence, recalibrate, recalibrate_satellite
from ground.store import SQLiteStore
from ground.uplink_cli import main as uplink_main
from shared.model_bundle import ModelBundle
from shared.uplink.bundle import BundleError, open_bundle, read_confidence
from shared.uplink.keys import load_public_key
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks

PAIR = ModelBundle.shipped("objects", "onboard")


def add_scene(store, sender, name, tiles, *, version=0, crs="EPSG:32631", accepted=0):
    """A scene of len(tiles) downlinked tiles in one row, (onboard, confidence, ground,
    exploration) each, then ``accepted`` tiles kept onboard."""
    n = len(tiles) + accepted
    h = link_pb2.SceneHeader(scene_id=name, bundle_version=version, grid=link_pb2.TileGrid(
        width=256 * n, height=256, tile_size=256, rows=1, cols=n))
    if crs:
        h.footprint.CopyFrom(link_pb2.Footprint(geotransform=[0, 0.5, 0, 0, 0, -0.5],
                                                crs=crs))
    store.put_header(h, sender)
    key = f"{sender}:{name}"
    store.put_summary(link_pb2.SceneSummary(scene_id=name, tiles=[
        link_pb2.TileDecision(index=i, decision=link_pb2.DOWNLINKED, onboard_count=o,
                              confidence=c, quality=90, exploration=e)
        for i, (o, c, _, e) in enumerate(tiles)] + [
        link_pb2.TileDecision(index=len(tiles) + i, decision=link_pb2.ACCEPTED,
                              onboard_count=0.0, confidence=0.95) for i in range(accepted)]),
        key)
    for i, (o, c, g, e) in enumerate(tiles):
        chunk = tile_chunks(name, i, 0, i, b"jpeg", 90, onboard_count=o, confidence=c,
                            exploration=e)[0]
        store.commit_tile(chunk, b"jpeg", key)
        store.set_counts([(key, i, g)])


def overconfident(rng, n):
    """Tiles the satellite is sure of (0.85-0.95) but right on only about half."""
    out = []
    for _ in range(n):
        onboard = float(rng.integers(0, 6))
        right = rng.random() < 0.5
        ground = onboard if right else onboard + float(rng.integers(2, 5))
        out.append((onboard, float(rng.uniform(0.85, 0.95)), ground, True))
    return out


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "ground" / "ground.db")
    yield s
    s.close()


def fill(store, scenes=80, per_scene=5, seed=0, **kw):
    rng = np.random.default_rng(seed)
    for k in range(scenes):
        add_scene(store, "sat-1", f"s{k}", overconfident(rng, per_scene),
                  crs="EPSG:32631" if k % 2 else "EPSG:32632", **kw)


def test_an_overconfident_calibration_is_corrected_in_each_regime(store):
    fill(store, scenes=120)
    whole, regions = recalibrate_satellite(store, "sat-1", PAIR.confidence,
                                           PAIR.error_model, min_each=10)
    assert whole.tiles == 600 and whole.changed
    for regime in ("empty", "busy"):
        c = whole.checks[f"confidence_{regime}"]
        assert c["taken"] and c["brier_after"] < c["brier_before"]
        assert c["ece_after"] < c["ece_before"]
    assert sum(whole.checks[f"confidence_{r}"][k] for r in ("empty", "busy")
               for k in ("fit_tiles", "held_back_tiles")) == 600
    # The satellite's 0.85-0.95 now means what the ground saw in each regime: right about
    # as often as its tiles there were.
    ev, _ = evidence(store, "sat-1", 0)
    grid = np.linspace(0.85, 0.95, 21)
    for busy in (False, True):
        mapped = whole.confidence.recalibrated(grid, np.full(len(grid), busy))
        seen = float(ev.right[(ev.onboard >= 0.5) == busy].mean())
        assert float(mapped.mean()) == pytest.approx(seen, abs=0.15) and seen < 0.6
    assert whole.error_model is not None
    e = whole.checks["error_model"]
    assert e["mae_after"] < e["mae_before"]
    assert whole.error_model.ground == PAIR.error_model.ground  # the ground's part kept
    assert sorted(r.group for r in regions) == ["sat-1@EPSG:32631", "sat-1@EPSG:32632"]
    assert sum(r.tiles for r in regions) == 600


def test_exploration_tiles_stand_for_the_accepted_tiles_they_were_drawn_from(store):
    # 2 of 10 accepted tiles drawn for exploration (8 kept onboard), 3 sent by value.
    add_scene(store, "sat-1", "a", [(0.0, 0.9, 0.0, True)] * 2 + [(3.0, 0.4, 5.0, False)] * 3,
              accepted=8)
    ev, _ = evidence(store, "sat-1", 0)
    assert len(ev) == 5
    assert ev.weight[ev.exploration] == pytest.approx([5.0, 5.0])
    assert ev.weight[~ev.exploration] == pytest.approx([1.0] * 3)
    # A scene whose summary has not come down yet: its tiles wait (no weight without it).
    store.put_header(link_pb2.SceneHeader(scene_id="b", grid=link_pb2.TileGrid(
        width=256, height=256, tile_size=256, rows=1, cols=1)), "sat-1")
    chunk = tile_chunks("b", 0, 0, 0, b"jpeg", 90, onboard_count=1.0, confidence=0.5,
                        exploration=True)[0]
    store.commit_tile(chunk, b"jpeg", "sat-1:b")
    store.set_counts([("sat-1:b", 0, 1.0)])
    assert len(evidence(store, "sat-1", 0)[0]) == 5


def test_a_map_per_regime_keeps_busy_tiles_from_the_empty_tiles_evidence(store):
    # What hurt the loop (docs/CLOSED_LOOP.md): at one confidence, the tiles the satellite
    # sees as empty are almost always right and the busy ones it sends often wrong. One map
    # fit on exploration tiles alone raised both; per regime, each gets its own.
    rng = np.random.default_rng(5)
    for k in range(60):
        empty = [(0.0, 0.88, 0.0 if rng.random() < 0.97 else 1.0, True) for _ in range(3)]
        busy = []
        for _ in range(4):
            n = float(rng.integers(2, 6))
            busy.append((n, 0.88, n if rng.random() < 0.4 else n + 3, False))
        add_scene(store, "sat-1", f"m{k}", empty + busy, accepted=12)
    whole, _ = recalibrate_satellite(store, "sat-1", PAIR.confidence, PAIR.error_model,
                                     min_tiles=100, min_each=5)
    assert whole.checks["confidence_busy"]["taken"]
    busy = whole.confidence.recalibrated(np.array([0.88]), np.array([True]))[0]
    empty = whole.confidence.recalibrated(np.array([0.88]), np.array([False]))[0]
    assert busy < 0.6 and empty > 0.85


def test_nothing_changes_without_enough_evidence(store):
    fill(store, scenes=10)
    whole, _ = recalibrate_satellite(store, "sat-1", PAIR.confidence, PAIR.error_model)
    assert not whole.changed and whole.tiles == 50
    assert "not enough evidence: 50 tiles (50 exploration" in whole.reason
    other, _ = recalibrate_satellite(store, "sat-2", PAIR.confidence, PAIR.error_model)
    assert other.tiles == 0 and not other.changed


def test_only_scenes_planned_under_the_bundle_in_force_count(store):
    fill(store, scenes=50)  # under the shipped files (0)
    rng = np.random.default_rng(1)
    for k in range(3):  # the newest scenes: under bundle 4
        add_scene(store, "sat-1", f"new{k}", overconfident(rng, 5), version=4)
    ev, _ = evidence(store, "sat-1", 4)
    assert len(ev) == 15
    ev0, _ = evidence(store, "sat-1", 0)
    assert len(ev0) == 250


def test_a_refit_no_better_on_held_back_tiles_is_not_taken():
    # Confidence already right: the held-back check finds nothing to gain from a map fit on
    # noise (labels drawn with the stated probability), and no error-model change either.
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 3000)
    right = rng.random(3000) < p
    onboard = rng.integers(0, 5, 3000).astype(float)
    ground = np.where(right, onboard, onboard + 3)
    ev = Evidence(onboard, p, ground, [f"s{i // 3}" for i in range(3000)])
    out = recalibrate(ev, "sat", 0, PAIR.confidence, None)
    for regime in ("empty", "busy"):
        c = out.checks[f"confidence_{regime}"]
        assert abs(c["brier_after"] - c["brier_before"]) < 0.01
        assert c["taken"] == (c["brier_after"] < c["brier_before"])
    assert out.changed == any(out.checks[f"confidence_{r}"]["taken"] for r in ("empty", "busy"))


@pytest.mark.parametrize("bad, words", [({"min_tiles": 5}, "min_tiles"),
                                        ({"held_back": 0.9}, "held_back"),
                                        ({"min_each": 0}, "min_each")])
def test_bad_settings_are_refused(bad, words):
    ev = Evidence(np.zeros(3), np.zeros(3), np.zeros(3), ["a", "b", "c"])
    with pytest.raises(ValueError, match=words):
        recalibrate(ev, "sat", 0, PAIR.confidence, None, **bad)


def test_a_recalibration_map_is_checked_and_composed():
    model = PAIR.confidence.with_recalibration([0.0, 1.0], [0.0, 0.5])
    again = model.with_recalibration([0.0, 0.5, 1.0], [0.0, 1.0, 1.0])  # halves, doubles
    grid = np.linspace(0, 1, 11)
    assert again.recalibrated(grid) == pytest.approx(grid, abs=1e-9)
    data = json.dumps({**asdict(model),
                       "recalibration": {"x": [0.0, 1.0], "y": [0.9, 0.1]}}).encode()
    with pytest.raises(BundleError, match="recalibration"):
        read_confidence(data)


def test_the_command_signs_the_refit_into_a_bundle_for_the_satellite(store, tmp_path,
                                                                     monkeypatch, capsys):
    fill(store, scenes=120)
    monkeypatch.setenv("TARGETFUSE_GROUND_DB_PATH", str(tmp_path / "ground" / "ground.db"))
    out = tmp_path / "recal"
    assert uplink_main(["recalibrate", "--satellite", "sat-1", "--out", str(out),
                        "--build"]) == 0
    report = json.loads((out / "recalibration.json").read_text())
    assert report["satellite"]["changed"] and report["satellite"]["tiles"] == 600
    assert "uplink bundle 1:" in capsys.readouterr().out
    public = load_public_key(tmp_path / "ground" / "uplink-signing.pub")
    opened = open_bundle((tmp_path / "ground" / "uplink" / "bundle-1.tfb").read_bytes(),
                         public)
    assert opened.manifest.satellites == ("sat-1",)
    assert opened.manifest.roles() == ["confidence", "error_model"]
    sent = read_confidence(opened.files["confidence"])
    assert sent.recalibration_busy is not None  # too few empty tiles for their own map
    # The evidence beside the bundle, as the ground's API and dashboard show it.
    from ground.uplink import BundleShelf, evidence_summary

    shelf = BundleShelf(tmp_path / "ground" / "uplink", public)
    shown = evidence_summary(shelf.evidence(1))
    assert shown["tiles"] == 600 and shown["changed"] and shown["under_bundle"] == 0
    conf = shown["checks"]["confidence_busy"]
    assert conf["brier_after"] < conf["brier_before"] and conf["held_back_tiles"] > 0
    assert all(isinstance(v, int | float) for c in shown["checks"].values() for v in c.values())
    assert shelf.evidence(7) is None
    # Too little evidence: a report, no files, no bundle.
    assert uplink_main(["recalibrate", "--satellite", "sat-2", "--out",
                        str(tmp_path / "none"), "--build"]) == 0
    assert "no bundle: not enough evidence" in capsys.readouterr().out
    assert not (tmp_path / "ground" / "uplink" / "bundle-2.tfb").exists()


def test_a_refit_is_signed_for_the_counter_in_force(tmp_path, monkeypatch):
    """After a bundle that brought (or was fit for) another counter, the next recalibration is
    for that counter: the satellite refuses a bundle fit for one it no longer runs."""
    import argparse

    from ground.recalibrate_cli import base_models
    from ground.settings import GroundSettings
    from ground.uplink import BundleShelf
    from shared.uplink.bundle import build
    from shared.uplink.keys import load_private_key, make_signing_key

    settings = GroundSettings(grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db",
                              model="objects", auth=False)
    key = make_signing_key(settings.uplink_key_path())
    shelf = BundleShelf(settings.uplink_folder(), load_public_key(key.public))
    adapted = "cd" * 32
    shelf.put(build({"thresholds": b'{"conf_q": 0.7}'}, version=1, model="objects",
                    model_sha256=adapted, private_key=load_private_key(key.private),
                    satellites=("sat-1",)), 1)
    args = argparse.Namespace(model=None, models_dir=None, key=None, dir=None)
    assert base_models(settings, args, "sat-1", 0)[2] is None  # the shipped counter
    confidence, _, model_sha256 = base_models(settings, args, "sat-1", 1)
    assert model_sha256 == adapted and confidence is not None


def test_an_error_model_worse_in_one_regime_is_not_taken():
    # Busy tiles err by 3, empty ones never; the held-back empty tiles weigh so much that a
    # population fit predicts small errors everywhere: better on average, worse on busy tiles.
    rng = np.random.default_rng(2)
    n = 2000
    busy = rng.random(n) < 0.1
    onboard = np.where(busy, rng.integers(2, 6, n), 0).astype(float)
    ground = np.where(busy, onboard + 3, 0.0)
    p = np.where(busy, 0.5, 0.95)
    ev = Evidence(onboard, p, ground, [f"s{i // 5}" for i in range(n)],
                  ~busy, np.where(busy, 1.0, 30.0))
    em = replace(PAIR.error_model, onboard=[0.0, 0.0, 6.0, 0.0])  # 3 on busy tiles, 0.3 empty
    out = recalibrate(ev, "sat", 0, PAIR.confidence, em, min_tiles=100, min_each=5)
    e = out.checks["error_model"]
    assert e["mae_after"] < e["mae_before"]
    assert e["mae_busy_after"] > e["mae_busy_before"]
    assert not e["taken"] and out.error_model is None


def test_replayed_decisions_show_which_model_sends_the_tiles_that_matter():
    from ground.recalibrate import replayed_error

    # One scene: tile 0 doubted and undercounted (2 against the ground's 5), sent by value;
    # tile 1 confident and right (3), explored, standing for itself; the scene's by-value
    # bytes buy one tile. An error model of doubt sends tile 0 (nothing left wrong), one of
    # count alone sends tile 1 (the undercount stays).
    ev = Evidence(np.array([2.0, 3.0]), np.array([0.3, 0.9]), np.array([5.0, 3.0]),
                  ["s", "s"], np.array([False, True]), np.array([1.0, 1.0]),
                  np.array([100.0, 100.0]), np.array([90, 90]))
    doubt = replace(PAIR.error_model, onboard=[0.0, 0.0, 5.0, 0.0])
    count = replace(PAIR.error_model, onboard=[0.0, 1.0, 0.0, 0.0])
    assert replayed_error(ev, ev.confidence, doubt) == pytest.approx(0.0)
    assert replayed_error(ev, ev.confidence, count) == pytest.approx(3.0)
    # An exploration tile costs the bytes of the tiles it stands for: standing for ten, tile
    # 1 no longer fits in one tile's bytes, so even the count model sends tile 0.
    heavy = replace(ev, weight=np.array([1.0, 10.0]))
    assert replayed_error(heavy, ev.confidence, count) == pytest.approx(0.0)


def test_an_error_model_is_checked_on_the_decisions_it_makes():
    rng = np.random.default_rng(5)
    n = 3000
    onboard = rng.integers(0, 6, n).astype(float)
    p = rng.uniform(0.05, 0.95, n)
    ground = np.where(rng.random(n) < p, onboard, onboard + 2)
    ev = Evidence(onboard, p, ground, [f"s{i // 20}" for i in range(n)],
                  rng.random(n) < 0.2, None, rng.uniform(500, 3000, n), np.full(n, 90))
    out = recalibrate(ev, "sat", 0, PAIR.confidence, PAIR.error_model, min_tiles=100,
                      min_each=5)
    e = out.checks["error_model"]
    assert {"replayed_before", "replayed_after"} <= set(e)
    assert e["taken"] == (e["mae_after"] < e["mae_before"]
                          and e["replayed_after"] <= e["replayed_before"]
                          and e["mae_busy_after"] <= e["mae_busy_before"]
                          and e["mae_empty_after"] <= e["mae_empty_before"])
