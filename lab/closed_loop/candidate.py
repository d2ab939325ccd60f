"""A new onboard counter goes up with a calibration of its own, and only when the throttle,
replayed with it, chooses better than with the counter in force (the strong form of the
closed loop, after ``lab.closed_loop.adapt``).

An adapted counter counts differently from the one the satellite's confidence and error
model were fit for. Measured in the shift experiment (docs/CLOSED_LOOP.md): put under the
confidence fit for the shipped counter, an adapted counter on airbus_aircraft had ECE 0.28
against 0.04, the value policy sent twice the tiles, and the scenes' CMAE rose 4x, while the
adapted counter's own counts were closer to the ground's on the held-back tiles. A counter's
mean error on held-back exploration tiles (mostly empty) does not say what the throttle will
do with it.

Algorithm (``calibrate_candidate``), on the tiles adaptation read (``TileData``, each with
what it cost and the tiles it stands for; tiles counted as more than one counter input, as
a native tile larger than the counter's input is, are left out: the onboard counter saw
each as one input):

1. Both counters (in force, candidate) run on every tile's input (onnxruntime, fp32) over
   the scene's classes: counts, the confidence features and the pooled embedding
   (``OnboardCounter._confidence``'s inputs).
2. Evidence per counter (``ground.recalibrate.Evidence``): its counts; its confidence under
   the starting model the ground refits from (``base``: the pair's); the ground's count of
   the tile (the reference recalibration uses); scene, exploration flag, stand-in weight,
   bytes and JPEG quality.
3. The candidate's calibration: ``ground.recalibrate.recalibrate`` on its evidence from
   ``base`` and the error model in force: maps per regime checked on held-back scenes
   (the same scene hash as adaptation's split, so the maps are judged on scenes the
   candidate was not fit on), the error model's onboard part refit, each judged by the
   replayed throttle. Where the evidence is below recalibration's minimum, or a part's
   refit is no better, the candidate is judged under ``base`` (or the error model in
   force).
4. The check: on the held-back scenes, the throttle's choice replayed
   (``ground.recalibrate.replayed_error``: per scene, its by-value bytes to the tiles of
   largest expected gain per byte, the rest left at the onboard count) with the counter in
   force under the calibration in force, and with the candidate under each of its two
   calibrations (the refit, and the one in force); the candidate goes up with the
   calibration that replays better, and only when its replayed error is lower than the
   counter in force's by at least ``min_gain``.
5. And only when that gain is not one or two scenes' luck: the held-back scenes are
   resampled with replacement (a paired bootstrap: each draw takes a scene's error under
   both counters, ``BOOTSTRAP_DRAWS`` draws, seeded), and the gain must hold (the
   candidate's summed error at most ``1 - min_gain`` of the counter in force's) in at
   least ``min_support`` of the draws (default 95 %). Measured before this step: on
   gdit_aerial_airport (by-source ground scale) a counter taken on 17 held-back scenes (8
   better, 4 worse; 75 % support) turned the loop's 5.6 % gain into a 1.3 % loss.
6. And only when it is calibrated on the held-back tiles (ECE against the ground's counts,
   under the calibration it would go up with) no worse than the counter in force under
   the one in force, within the ECE's sampling noise (``ece_tolerance``: 1/sqrt(tiles),
   at least ``MAX_ECE_RISE``): the throttle acts on the confidence of every tile, the
   replay sees only the few that came down. Measured: on airbus_aircraft a
   counter better on all five held-back scenes (226 -> 181 objects of error) but at ECE
   0.25 against 0.10 raised the source's CMAE 2.4x over the next passes
   (docs/CLOSED_LOOP.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ground.recalibrate import (
    Evidence,
    held_back_mask,
    recalibrate,
    replayed_scene_errors,
)
from lab.closed_loop.tiles import TileData, count_scale, in_convention
from shared.confidence import ConfidenceModel, expected_calibration_error, tile_features
from shared.counting import combine
from shared.pipeline.error_model import ErrorModel

BOOTSTRAP_DRAWS = 2000
MIN_SUPPORT = 0.95
MAX_ECE_RISE = 0.02


def ece_tolerance(tiles: int) -> float:
    """Step 6: how much higher the candidate's held-back ECE may be: about the sampling
    noise of an ECE over ``tiles`` tiles (1/sqrt(n)), at least ``MAX_ECE_RISE``."""
    return float(max(MAX_ECE_RISE, 1.0 / np.sqrt(max(tiles, 1))))


def gain_support(before: np.ndarray, after: np.ndarray, min_gain: float,
                 draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> float:
    """Step 5: the share of paired bootstrap resamples of the scenes (``before[i]``,
    ``after[i]``: scene i's error under each counter) in which ``after`` sums to at most
    ``1 - min_gain`` of ``before``; 0 without scenes."""
    before, after = np.asarray(before, float), np.asarray(after, float)
    if before.shape != after.shape:
        raise ValueError(f"paired errors differ in shape: {before.shape} vs {after.shape}")
    if not len(before):
        return 0.0
    picks = np.random.default_rng(seed).integers(0, len(before), (draws, len(before)))
    return float(np.mean(after[picks].sum(axis=1) <= (1 - min_gain) * before[picks].sum(axis=1)))


def refused_by(row: dict) -> str | None:
    """Which step refused the candidate, from its decisions row ("replay" (step 4),
    "support" (5), "calibration" (6)); None when it passed. A row written before steps 5
    and 6 existed is judged on the replay alone."""
    if not row["held_back_tiles"] or \
            row["replayed_after"] > (1 - row["min_gain"]) * row["replayed_before"]:
        return "replay"
    if "gain_support" in row and row["gain_support"] < row["min_support"]:
        return "support"
    if "max_ece_rise" in row and row["ece_after"] > row["ece_before"] + row["max_ece_rise"]:
        return "calibration"
    return None


@dataclass
class CandidateCheck:
    """The check, and the calibration the candidate was judged under (what goes up with
    it: its refit, parts not refit taken from ``base`` and the error model in force; or the
    calibration in force, whichever replayed better)."""

    taken: bool
    confidence: ConfidenceModel
    error_model: ErrorModel
    checks: dict = field(default_factory=dict)
    reason: str = ""


@dataclass
class Outputs:
    counts: np.ndarray
    features: np.ndarray
    embedding: np.ndarray | None


def counter_outputs(onnx: bytes, tiles: list[TileData], card, threads: int = 1) -> Outputs:
    """Step 1 for one counter: each single-input tile's count over its scene's classes (the
    card's count scale applied), confidence features and embedding."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    scale = count_scale(card)[None, :, None, None]
    convention = card.extra.get("input", "")
    counts, feats, embs = [], [], []
    for t in tiles:
        density, masks, *rest = session.run(None, {name: in_convention(t.canvases,
                                                                       convention)})
        emb = np.asarray(rest[0], np.float32).reshape(1, -1) if rest else None
        run = combine(np.asarray(density, np.float32) * scale, np.asarray(masks, np.float32),
                      t.channels, emb)
        counts.append(float(run.counts[0]))
        feats.append(tile_features(run.density, run.mask_logits)[0])
        embs.append(None if emb is None else emb[0])
    has_emb = bool(embs) and embs[0] is not None
    return Outputs(np.array(counts), np.array(feats).reshape(len(tiles), -1),
                   np.stack(embs) if has_emb else None)


def evidence_of(out: Outputs, confidence: ConfidenceModel, tiles: list[TileData],
                weights: np.ndarray) -> Evidence:
    """Step 2: one counter's evidence under ``confidence``."""
    return Evidence(out.counts, confidence.predict(out.features, out.embedding),
                    np.array([t.ground for t in tiles], float), [t.scene for t in tiles],
                    np.array([t.exploration for t in tiles], bool),
                    np.asarray(weights, float), np.array([t.size for t in tiles], float),
                    np.array([t.quality for t in tiles], int))


def single_input(tiles: list[TileData], weights: np.ndarray
                 ) -> tuple[list[TileData], np.ndarray]:
    keep = [i for i, t in enumerate(tiles) if len(t.canvases) == 1]
    return [tiles[i] for i in keep], np.asarray(weights, float)[keep]


def calibrate_candidate(tiles: list[TileData], weights: np.ndarray, *, card,
                        in_force_onnx: bytes, candidate_onnx: bytes,
                        confidence_in_force: ConfidenceModel, base: ConfidenceModel,
                        error_model: ErrorModel, group: str, version: int,
                        min_tiles: int, min_each: int, held_back: float,
                        min_gain: float = 0.05, min_support: float = MIN_SUPPORT,
                        threads: int = 1) -> CandidateCheck:
    """Steps 1-6. ``weights``: how many tiles each stands for (``ground.recalibrate.
    stand_in_weights``); ``confidence_in_force``: the satellite's now (``base`` with the maps
    in force); ``error_model``: the one in force."""
    tiles, weights = single_input(tiles, weights)
    old = evidence_of(counter_outputs(in_force_onnx, tiles, card, threads),
                      confidence_in_force, tiles, weights)
    new_out = counter_outputs(candidate_onnx, tiles, card, threads)
    new = evidence_of(new_out, base, tiles, weights)
    rec = recalibrate(new, group, version, base, error_model, min_tiles=min_tiles,
                      min_each=min_each, held_back=held_back)
    back = held_back_mask(new.scenes, held_back)
    old_b, new_b = old.take(back), new.take(back)
    # A part not refit (too little evidence, or no better) is judged as it starts: ``base``
    # for the confidence, the error model in force.
    options = {"refit": (rec.confidence or base, rec.error_model or error_model),
               "in force": (confidence_in_force, error_model)}
    replayed = {}
    for name, (conf, em) in options.items():
        p = conf.predict(new_out.features, new_out.embedding)[back]
        replayed[name] = (replayed_scene_errors(new_b, p, em)[1], p)
    chosen = min(replayed, key=lambda k: replayed[k][0].sum())
    after_scenes, after_conf = replayed[chosen]
    before_scenes = replayed_scene_errors(old_b, old_b.confidence, error_model)[1]
    support = gain_support(before_scenes, after_scenes, min_gain)
    row = {"held_back_scenes": len(before_scenes), "held_back_tiles": len(new_b),
           "replayed_before": float(before_scenes.sum()),
           "replayed_after": float(after_scenes.sum()), "calibration": chosen,
           "replayed_under_refit": float(replayed["refit"][0].sum()),
           "replayed_under_in_force": float(replayed["in force"][0].sum()),
           "scenes_better": int((after_scenes < before_scenes).sum()),
           "scenes_worse": int((after_scenes > before_scenes).sum()),
           "gain_support": support, "min_support": float(min_support),
           "ece_before": expected_calibration_error(old_b.confidence, old_b.right),
           "ece_after": expected_calibration_error(after_conf, new_b.right),
           "tiles_right_before": float(old_b.right.mean()) if len(old_b) else None,
           "tiles_right_after": float(new_b.right.mean()) if len(new_b) else None,
           "min_gain": float(min_gain)}
    row["max_ece_rise"] = ece_tolerance(len(new_b))
    refused = refused_by(row)
    out = CandidateCheck(refused is None, *options[chosen],
                         {"calibration": rec.report(), "decisions": row})
    if refused == "replay":
        out.reason = (f"the throttle replayed on {row['held_back_scenes']} held-back scenes "
                      f"left {row['replayed_after']:.4g} objects of error with the candidate "
                      f"against {row['replayed_before']:.4g} with the counter in force (at "
                      f"least {min_gain:.0%} less needed)")
    elif refused == "support":
        out.reason = (f"the replayed gain ({row['replayed_before']:.4g} -> "
                      f"{row['replayed_after']:.4g} objects of error on "
                      f"{row['held_back_scenes']} held-back scenes, {row['scenes_better']} "
                      f"better, {row['scenes_worse']} worse) held in {support:.0%} of the "
                      f"scenes' bootstrap resamples ({min_support:.0%} needed)")
    elif refused == "calibration":
        out.reason = (f"the candidate, under the calibration it would go up with, has ECE "
                      f"{row['ece_after']:.3f} on the held-back tiles against "
                      f"{row['ece_before']:.3f} for the counter in force (at most "
                      f"{row['max_ece_rise']:.3f} more allowed on {len(new_b)} tiles)")
    return out
