"""The shift experiment (``targetfuse shift-experiment``): its loop on generated scenes with
the shipped ``aircraft`` pair, the no-loop arm's bytes, what the ground refits on (every
downlinked tile, weighted), a bundle
applied through the onboard keeper, and the report's check against its results."""

import json
from dataclasses import replace

import numpy as np
import pytest

from ground.counter import GroundCounter
from ground.recalibrate import Recalibration
from lab.experiments import shift
from lab.experiments.shift_report import results, tables
from lab.synth import SceneConfig, generate_scene
from onboard.counter import OnboardCounter
from shared.pipeline.config import PipelineConfig
from shared.pipeline.error_model import ErrorModel

# Counts generated scenes with both shipped counters: the slow tier.
pytestmark = pytest.mark.slow

ERR = ErrorModel([0.2, 0.05, 0.5, 0.2], {"50": [0.4, 0.08], "75": [0.3, 0.06],
                                         "90": [0.3, 0.05]}, 0.8)


@pytest.fixture(scope="module")
def counters():
    return (OnboardCounter.shipped("aircraft", threads=1, batch_size=8, variant="fp32"),
            GroundCounter.shipped("aircraft", threads=1))


@pytest.fixture(scope="module")
def scenes(counters):
    onboard, ground = counters
    out = []
    for seed in range(5):
        img = generate_scene(SceneConfig(width=768, height=768, gsd_m=1.0, layout="airport",
                                         classes=("aircraft",), cloud_cover=0.0), seed=seed)
        out.append(shift.ShiftScene(img, img.objects, onboard, ground, None))
    return out


@pytest.fixture(scope="module")
def played(counters, scenes, tmp_path_factory):
    """Four passes; the ground's evidence thresholds lowered. A few small scenes give too
    little evidence for a refit to pass its checks, so after the first pass the ground's
    answer is replaced by a map it would send (the rest of the loop as in the experiment:
    the bundle signed, received and applied by the onboard keeper, its bytes charged)."""
    onboard, _ = counters
    calls = []
    real = shift.recalibrate

    def spy(ev, group, version, conf, em, **k):
        calls.append(ev)
        rec = real(ev, group, version, conf, em, **k)
        if len(calls) == 1 and not rec.changed:
            rec = Recalibration(group, len(ev), version,
                                confidence=conf.with_recalibration([0.0, 1.0], [0.05, 0.9]))
        if len(calls) == 2:  # more evidence no longer bears the map out
            rec = Recalibration(group, len(ev), version,
                                reason="the refit was no better on the held-back tiles")
        return rec

    shift.recalibrate = spy
    try:
        s = shift.Settings(passes=4, share=0.2, budget=0.5, min_tiles=10, min_each=1)
        rows = shift.run_loop(scenes, onboard, onboard.bundle.confidence, ERR, PipelineConfig(), s,
                              tmp_path_factory.mktemp("loop"), progress=lambda _: None)
    finally:
        shift.recalibrate = real
    assert onboard.confidence is onboard.bundle.confidence  # left as it came
    return rows, calls


def test_each_pass_reports_both_arms_within_their_budgets(played):
    rows, _ = played
    assert [r["pass"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert r["loop_bytes_used"] <= r["loop_budget_bytes"] + 1
        assert r["no_loop_bytes_used"] <= r["no_loop_budget_bytes"] + 1
        assert 0 <= r["loop_ece"] <= 1 and 0 <= r["no_loop_ece"] <= 1
        assert r["exploration_bytes"] <= r["loop_bytes_used"]
        assert np.isfinite(r["loop_cmae"]) and np.isfinite(r["no_loop_cmae"])
    assert sum(r["exploration_tiles"] for r in rows) > 0
    assert not rows[-1]["recalibrated"]  # nothing is sent after the last pass
    # the bundle sent after pass 1 is in force from pass 2 on
    assert rows[0]["recalibrated"] and rows[0]["uplink_bytes_sent"] > 1000
    assert [r["bundle_version"] for r in rows][:2] == [0, 1]
    assert rows[1]["loop_ece"] != rows[0]["loop_ece"]  # the new map rates the tiles
    assert rows[1]["no_loop_ece"] == rows[0]["no_loop_ece"]  # the starting one, still
    # A refit on more evidence that finds the starting calibration no worse takes the map
    # back: bundle 2 carries the starting files, and pass 3 rates tiles as the start did.
    assert rows[1]["recalibrated"] and rows[1]["recalibration_reason"] == ""
    assert rows[2]["bundle_version"] == 2
    assert rows[2]["loop_ece"] == pytest.approx(rows[2]["no_loop_ece"])


def test_the_no_loop_arm_gets_the_loop_s_bytes(played):
    """Its budget is the loop's plus the uplink bytes of the bundle each pass runs under;
    over the run, both arms are given the same bytes."""
    rows, _ = played
    for prev, r in zip([None, *rows], rows, strict=False):
        charged = 0 if prev is None else prev["uplink_bytes_sent"]
        assert r["uplink_bytes_charged"] == charged
        assert r["no_loop_budget_bytes"] == pytest.approx(r["loop_budget_bytes"] + charged)
    assert rows[1]["no_loop_budget_bytes"] > rows[1]["loop_budget_bytes"]
    assert sum(r["no_loop_budget_bytes"] for r in rows) == pytest.approx(
        sum(r["loop_budget_bytes"] + r["uplink_bytes_sent"] for r in rows))


def test_the_ground_refits_on_every_downlinked_tile_weighted(played):
    """The evidence after each pass is every tile received so far, by value or drawn for
    exploration; an exploration tile weighs for the accepted tiles it was drawn from."""
    rows, calls = played
    assert len(calls) == len(rows) - 1
    explored = np.cumsum([r["exploration_tiles"] for r in rows])
    assert [int(ev.exploration.sum()) for ev in calls] == list(explored[:-1])
    for r, ev in zip(rows, calls, strict=False):
        assert r["evidence_tiles"] == len(ev)
        assert len(ev) > ev.exploration.sum()  # tiles sent by value are evidence too
        assert np.all(ev.weight[~ev.exploration] == 1.0)
        assert np.all(ev.weight[ev.exploration] >= 1.0)


def test_a_recalibration_is_signed_received_and_applied_onboard(counters, tmp_path):
    onboard, _ = counters
    base = onboard.bundle.confidence
    sat, ground = shift.make_loop(tmp_path, onboard, base, ERR, PipelineConfig())
    try:
        new_conf = base.with_recalibration([0.0, 1.0], [0.1, 0.6])
        new_err = replace(ERR, onboard=[0.3, 0.1, 0.4, 0.1])
        rec = Recalibration("sat", 50, 0, confidence=new_conf, error_model=new_err)
        size = shift.uplink(ground, sat, rec)
        assert size > 1000 and sat.keeper.version == 1
        assert onboard.confidence.recalibration == new_conf.recalibration
        assert sat.error_model.onboard == new_err.onboard
        # a part the refit did not take goes back to its starting value
        shift.uplink(ground, sat, Recalibration("sat", 60, 1, error_model=new_err))
        assert sat.keeper.version == 2 and onboard.confidence.recalibration is None
        assert sat.error_model.onboard == new_err.onboard
        # the same again: nothing differs from what is in force, nothing is sent
        assert shift.uplink(ground, sat, Recalibration("sat", 70, 2, error_model=new_err)) == 0
        assert sat.keeper.version == 2
    finally:
        onboard.confidence = base


def _result(source="src", loop=(3.0, 2.0, 1.0), flat=(3.0, 3.0, 3.0)):
    passes = [{"pass": k + 1, "bundle_version": k, "scenes": 4, "loop_cmae": a,
               "no_loop_cmae": b, "loop_budget_bytes": 1000.0, "no_loop_budget_bytes": 1000.0,
               "loop_bytes_used": 900, "no_loop_bytes_used": 950, "exploration_bytes": 50,
               "exploration_tiles": 1, "uplink_bytes_charged": 0, "uplink_bytes_sent": 0,
               "loop_ece": 0.1, "no_loop_ece": 0.2, "loop_auroc": 0.7, "no_loop_auroc": 0.6,
               "loop_auroc_busy": None, "no_loop_auroc_busy": 0.5, "evidence_tiles": k + 1,
               "evidence_wrong": 0, "recalibrated": False,
               "recalibration_reason": "not enough evidence", "confidence_taken": False,
               "error_model_taken": False}
              for k, (a, b) in enumerate(zip(loop, flat, strict=True))]
    return {"source": source, "settings": {"passes": 3, "share": 0.05, "budget": 0.1,
                                           "min_tiles": 200, "min_each": 20,
                                           "held_back": 0.3, "seed": 0},
            "command": "targetfuse shift-experiment --sources src",
            "summary": shift.summary(passes), "passes": passes}


def test_the_summary_judges_the_target_after_convergence():
    s = _result()["summary"]
    assert s["loop_cmae"] == pytest.approx(1.5) and s["no_loop_cmae"] == pytest.approx(3.0)
    assert s["reduction"] == pytest.approx(0.5) and s["target_met"] is True
    assert shift.summary(_result(loop=(3.0, 2.9, 2.8))["passes"])["target_met"] is False


def test_the_report_check_fails_when_the_document_and_results_disagree(tmp_path):
    from lab.experiments.shift_report import add_parser

    folder = tmp_path / "shift"
    folder.mkdir()
    (folder / "src.json").write_text(json.dumps(_result()))
    doc = tmp_path / "DOC.md"
    doc.write_text("".join(f"<!-- {n}:begin -->\n<!-- {n}:end -->\n" for n in
                           ("shift-settings", "shift-summary", "shift-passes",
                            "shift-commands")))
    import argparse

    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers())

    def report(*extra):
        args = p.parse_args(["report-shift", "--doc", str(doc), "--results", str(folder),
                             *extra])
        return args.func(args)

    with pytest.raises(ValueError, match="report-shift"):
        report("--check")
    assert report() == 0 and (folder / "shift.png").exists()
    assert report("--check") == 0
    assert "| src | 4 | 3 (last 2 averaged) |" in doc.read_text()
    (folder / "src.json").write_text(json.dumps(_result(loop=(3.0, 2.9, 2.8))))
    with pytest.raises(ValueError, match="differs"):
        report("--check")
    assert set(tables(folder)) == {"shift-settings", "shift-summary", "shift-passes",
                                   "shift-commands"}
    assert list(results(folder)) == ["src"]


def test_closed_loop_document_agrees_with_the_result_files():
    from lab.evaluation.report import render
    from lab.experiments.shift_report import DOC, RESULTS

    generated = tables(RESULTS)
    if not generated:
        pytest.skip(f"no shift results under {RESULTS}")
    text = DOC.read_text()
    assert render(text, generated) == text, "run `targetfuse report-shift`"


def test_the_loop_adapts_the_counter_and_the_no_loop_arm_keeps_the_shipped_one(tmp_path):
    """--adapt-every: the ground fine-tunes the counter on what came down (here a ground
    that counts 1.6x what the satellite counts), the satellite's keeper checks and applies
    the signed model, the loop counts with it from the next pass, its bytes are charged to
    the no-loop arm, which keeps the shipped counter; the counter is left as it came."""
    from lab.closed_loop.adapt import AdaptSettings
    from tests.lab.test_adapt import GAIN, ScaledTeacher

    onboard = OnboardCounter.shipped("objects", threads=1, batch_size=8, variant="fp32")
    shipped = (onboard.session, onboard.card.sha256, onboard.variant)
    teacher = ScaledTeacher()
    sims = []
    for seed in range(8):
        img = generate_scene(SceneConfig(width=768, height=768, gsd_m=0.5, density=3.0,
                                         cloud_cover=0.0), seed=seed)
        sims.append(shift.ShiftScene(img, img.objects, onboard, teacher, None))
    # Four held-back scenes cannot give the bootstrap 95 % support (two of them better is
    # what this generated loop shows): the swap's mechanics are what is tested here. The
    # fine-tune on 89 tiles lands differently on AVX2 and AVX-512 kernels (seed 0 passed
    # the checks on an AVX2 machine and on one AVX-512 VNNI machine, not on another;
    # seed 3 passed on both VNNI machines).
    adapter = shift.Adapter.of(onboard, teacher, 3, AdaptSettings(
        min_tiles=10, min_held_back=10, held_back=0.5, max_tiles=400, epochs=8, lr=3e-3,
        min_support=0.5, seed=3), tmp_path / "adapt")
    s = shift.Settings(passes=5, share=0.2, budget=0.5, min_tiles=10_000, min_each=1,
                       adapt_every=3)
    rows = shift.run_loop(sims, onboard, onboard.bundle.confidence, ERR, PipelineConfig(), s,
                          tmp_path / "loop", progress=lambda _: None, adapter=adapter)
    assert (onboard.session, onboard.card.sha256, onboard.variant) == shipped
    assert [r["counter_adapted"] for r in rows] == [False, False, True, False, False]
    r2, r3 = rows[2], rows[3]
    check = r2["adaptation"]["checks"]["counter"]
    assert check["mae_after"] <= 0.95 * check["mae_before"] and check["bias_before"] < 0
    # It went up with a calibration of its own, because the throttle replayed on the
    # held-back scenes with it (and that calibration) left less error than with the old.
    replay = r2["adaptation"]["checks"]["decisions"]
    assert replay["replayed_after"] <= 0.95 * replay["replayed_before"]
    assert replay["gain_support"] >= 0.5 and replay["held_back_scenes"] == 4
    assert replay["ece_after"] <= replay["ece_before"] + replay["max_ece_rise"]
    assert r2["adaptation"]["checks"]["calibration"]["confidence"]
    assert r2["uplink_bytes_sent"] > r2["adaptation"]["onnx_bytes"] > 1_000_000
    assert r3["bundle_version"] == 1 and r3["uplink_bytes_charged"] == r2["uplink_bytes_sent"]
    assert r3["no_loop_budget_bytes"] > r3["loop_budget_bytes"]
    # The loop's satellite counted with the adapted counter (closer to the 1.6x ground), the
    # no-loop arm's with the shipped one: two sets of outputs per scene.
    totals = {}
    for sim in sims:
        for (sha, _), out in sim._runs.items():
            totals[sha] = totals.get(sha, 0.0) + float(out[0].sum())
    assert len(totals) == 2
    adapted = sum(v for k, v in totals.items() if k != shipped[1])
    assert totals[shipped[1]] < adapted <= GAIN * 1.2 * totals[shipped[1]]


def test_the_starting_error_model_pools_the_ground_s_bias_unless_asked_by_source():
    """fit_left_out: one factor over every tile by default; with "by-source" the estimator
    that transfers best to a left-out source (shared.pipeline.ground_bias), recorded."""
    from lab.experiments.shift_calibration import fit_left_out
    from shared.confidence import FEATURE_NAMES

    rng = np.random.default_rng(0)

    def conf_table(n):
        return {"features": rng.random((n, len(FEATURE_NAMES))),
                "right": (rng.random(n) < 0.7).astype(float),
                "embedding": rng.random((n, 4))}

    def error_table(ratio, n=30):
        truth = np.full(n, 4.0)
        return {"truth": truth, "onboard": truth * 0.9,
                "features": rng.random((n, len(FEATURE_NAMES))),
                "embedding": rng.random((n, 4)), "ground_q90": truth / ratio}

    tables = [conf_table(80) for _ in range(4)]
    errors = [error_table(r) for r in (1.0, 1.05, 0.95)] + [error_table(3.0, 300)]
    meta = {"sources": ["a", "b", "c", "big"]}
    _, pooled = fit_left_out(tables, tables, errors, (90,), meta)
    _, by_source = fit_left_out(tables, tables, errors, (90,), meta, "by-source")
    assert "ground_scale_fit" not in pooled.fit_on
    assert by_source.fit_on["ground_scale_fit"]["estimator"] == "median"
    assert by_source.ground_scale["90"] < pooled.ground_scale["90"]


def test_the_adaptation_table_says_which_check_refused_a_counter():
    from lab.closed_loop.candidate import refused_by
    from lab.experiments.shift_report import REFUSALS

    base = {"replayed_before": 100.0, "min_gain": 0.05, "min_support": 0.95,
            "ece_before": 0.10, "max_ece_rise": 0.06, "held_back_scenes": 5,
            "held_back_tiles": 40}
    assert REFUSALS[refused_by({**base, "replayed_after": 99.0})] == "no: chose no better"
    assert REFUSALS[refused_by({**base, "replayed_after": 80.0, "gain_support": 0.7,
                                "ece_after": 0.1})] == "no: gain not supported"
    assert REFUSALS[refused_by({**base, "replayed_after": 80.0, "gain_support": 1.0,
                                "ece_after": 0.25})] == "no: calibrated worse"
    assert refused_by({**base, "replayed_after": 80.0, "gain_support": 1.0,
                       "ece_after": 0.12}) is None
    # A run made before the support and calibration steps records the replay only.
    old = {k: v for k, v in base.items() if k not in ("min_support", "max_ece_rise")}
    assert refused_by({**old, "replayed_after": 80.0, "ece_after": 0.25}) is None
    assert REFUSALS[None] == "no"
