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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ground.recalibrate import (
    Evidence,
    held_back_mask,
    recalibrate,
    replayed_error,
)
from lab.closed_loop.tiles import TileData, count_scale, in_convention
from shared.confidence import ConfidenceModel, expected_calibration_error, tile_features
from shared.counting import combine
from shared.pipeline.error_model import ErrorModel


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
                        min_gain: float = 0.05, threads: int = 1) -> CandidateCheck:
    """Steps 1-4. ``weights``: how many tiles each stands for (``ground.recalibrate.
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
        replayed[name] = (replayed_error(new_b, p, em), p)
    chosen = min(replayed, key=lambda k: replayed[k][0])
    after, after_conf = replayed[chosen]
    row = {"held_back_scenes": len(set(new_b.scenes)), "held_back_tiles": len(new_b),
           "replayed_before": replayed_error(old_b, old_b.confidence, error_model),
           "replayed_after": after, "calibration": chosen,
           "replayed_under_refit": replayed["refit"][0],
           "replayed_under_in_force": replayed["in force"][0],
           "ece_before": expected_calibration_error(old_b.confidence, old_b.right),
           "ece_after": expected_calibration_error(after_conf, new_b.right),
           "tiles_right_before": float(old_b.right.mean()) if len(old_b) else None,
           "tiles_right_after": float(new_b.right.mean()) if len(new_b) else None,
           "min_gain": float(min_gain)}
    out = CandidateCheck(bool(len(new_b) and row["replayed_after"] <= (1 - min_gain)
                              * row["replayed_before"]), *options[chosen],
                         {"calibration": rec.report(), "decisions": row})
    if not out.taken:
        out.reason = (f"the throttle replayed on {row['held_back_scenes']} held-back scenes "
                      f"left {row['replayed_after']:.4g} objects of error with the candidate "
                      f"against {row['replayed_before']:.4g} with the counter in force (at "
                      f"least {min_gain:.0%} less needed)")
    return out
