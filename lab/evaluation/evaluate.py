"""Scoring the shipped counters on annotated scenes: what ``targetfuse eval`` reports.

Per scene: the true count (objects of the chosen classes, duplicate labels merged:
``lab.data.label_cleaning``), the onboard-only count (shallow
ONNX counter on every tile) and the ground-only count (deep counter on every tile, the
accuracy ceiling). Over the dataset: CMAE (mean |predicted - true| per scene), relative CMAE
(CMAE / mean true count), per-tile MAE against per-tile truth by object centre, the Jaccard
index of each mask head, the onboard confidence's AUROC (all tiles and non-empty tiles) and
expected calibration error, and milliseconds per tile of each counter.

With a :class:`PipelineRun`, each scene also goes through the collaborative pipeline
(``lab.simulator``) under scene-relative downlink and energy budgets, beside the
vanilla and random baselines at the same budgets; ``onboard_only`` is then the shallow
counter in capture order until the energy budget is spent (equal to counting every tile at
energy fraction 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from lab.data.label_cleaning import DEFAULT_IOU, merge_duplicates
from lab.simulator import SceneSimulator
from lab.training.density import object_mask
from shared.annotations import AnnotatedImage
from shared.confidence import auroc, expected_calibration_error, is_right, tile_features
from shared.pipeline.config import PipelineConfig
from shared.pipeline.energy import EnergyModel
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.tiling import TilingEntry
from shared.tile_grid import true_counts


def _jaccard_counts(mask_logits: np.ndarray, grid, objects, scale_out: float
                    ) -> tuple[float, float]:
    """Intersection and union of predicted vs true object pixels at the output resolution."""
    h_out, w_out = mask_logits.shape[1:]
    full = object_mask(objects, grid.cols * w_out, grid.rows * h_out, scale_out)
    inter = union = 0.0
    for tile in grid:
        truth = full[tile.row * h_out:(tile.row + 1) * h_out,
                     tile.col * w_out:(tile.col + 1) * w_out] > 0
        pred = mask_logits[tile.index] > 0
        inter += float((pred & truth).sum())
        union += float((pred | truth).sum())
    return inter, union


def truth_objects(img: AnnotatedImage, classes: set[str] | None, dedupe_iou: float):
    """The objects that count as truth: of the chosen classes, duplicate labels merged."""
    objects = [o for o in img.objects if classes is None or o.class_name in classes]
    return merge_duplicates(objects, dedupe_iou)


@dataclass
class PipelineRun:
    """The collaborative pipeline's settings for ``evaluate`` (scene-relative budgets)."""

    cfg: PipelineConfig = field(default_factory=PipelineConfig)
    budget_fraction: float = 0.10
    energy_fraction: float = 1.0
    energy: EnergyModel = field(default_factory=EnergyModel)
    tiling: TilingEntry | None = None
    error_model: ErrorModel | None = None


PIPELINE_KEYS = ("collaborative", "onboard_only_zero", "vanilla", "vanilla_resized",
                 "vanilla_zero", "random")


def simulate(img: AnnotatedImage, pixels, onboard, ground, ground_total: float,
             run: PipelineRun, counted: list[str] | None = None) -> dict:
    """One scene through the pipeline and its baselines: the per-image fields of eval."""
    sim = SceneSimulator(img, onboard, ground, run.energy, run.tiling, run.error_model,
                         pixels=pixels, ground_only=ground_total, classes=counted)
    collab = sim.run(run.cfg, run.budget_fraction, run.energy_fraction)
    base = sim.baselines(run.cfg, run.budget_fraction, run.energy_fraction)
    p = collab.plan
    return {
        "collaborative": round(collab.total, 3),
        **{name: round(r.total, 3) for name, r in base.items()},
        "bytes_raw": sim.raw_bytes(run.cfg.raw_quality),
        "bytes_downlinked": int(p.decisions.bytes_used),
        "onboard_inferences": int(p.inferences),
        "energy_j": round(p.ledger.total, 4),
        "energy_budget_j": round(run.energy_fraction * sim.full_energy, 4),
        "pipeline_tile_size": p.tile_size,
        "tiles_by_provenance": collab.tiles_by_provenance,
        "onboard_only_inferences": int(base["onboard_only"].plan.inferences),
    }


def evaluate(images: list[AnnotatedImage], classes: set[str] | None, onboard, ground,
             progress: bool = True, dedupe_iou: float = DEFAULT_IOU,
             pipeline: PipelineRun | None = None, counted: list[str] | None = None) -> dict:
    """Counters on every tile; with ``pipeline``, also the collaborative pipeline and its
    baselines, and ``onboard_only`` becomes the energy-limited onboard-only baseline.
    ``counted``: the counters' classes to count (default all; a multi-class pair asked for
    the classes the truth is of)."""
    rows, tile_truth, tile_on, tile_ground, tile_feats = [], [], [], [], []
    jac = {"onboard_only": [0.0, 0.0], "ground_only": [0.0, 0.0]}
    seconds = {"onboard_only": 0.0, "ground_only": 0.0}
    n_tiles = 0
    for img in tqdm(images, desc="eval", unit="scene", disable=not progress):
        pixels = img.load_pixels()
        objects, removed = truth_objects(img, classes, dedupe_iou)
        t0 = time.perf_counter()
        on = onboard.count(pixels, img.meta.gsd_m, classes=counted)
        t1 = time.perf_counter()
        gr = ground.count(pixels, img.meta.gsd_m, classes=counted)
        t2 = time.perf_counter()
        seconds["onboard_only"] += t1 - t0
        seconds["ground_only"] += t2 - t1
        grid = on.outputs.grid
        truth = true_counts(grid, objects).ravel()
        n_tiles += len(grid)
        tile_truth.append(truth)
        tile_on.append(on.outputs.counts)
        tile_ground.append(gr.counts)
        tile_feats.append(on.confidence)
        scale_out = onboard.input_size / onboard.tile_size_for(img.meta.gsd_m) / 4
        for key, out in (("onboard_only", on.outputs), ("ground_only", gr)):
            i, u = _jaccard_counts(out.mask_logits, grid, objects, scale_out)
            jac[key][0] += i
            jac[key][1] += u
        rows.append({"image": img.image_id, "truth": len(objects),
                     "duplicate_labels_removed": removed,
                     "onboard_only": round(on.outputs.total, 3),
                     "ground_only": round(gr.total, 3), "tiles": len(grid),
                     "tile_size": grid.tile_size})
        if pipeline is not None:
            rows[-1].update(simulate(img, pixels, onboard, ground, gr.total, pipeline,
                                     counted))
    truth_t = np.concatenate(tile_truth) if tile_truth else np.zeros(0)
    on_t = np.concatenate(tile_on) if tile_on else np.zeros(0)
    gr_t = np.concatenate(tile_ground) if tile_ground else np.zeros(0)
    conf = np.concatenate(tile_feats) if tile_feats else np.zeros(0)
    truths = np.array([r["truth"] for r in rows], float)
    result: dict = {"images": rows, "cmae": {}, "relative_cmae": {}, "tile_mae": {},
                    "jaccard": {}, "ms_per_tile": {}}
    keys = [("onboard_only", on_t), ("ground_only", gr_t)]
    if pipeline is not None:
        keys += [(k, None) for k in PIPELINE_KEYS]
    for key, tiles in keys:
        pred = np.array([r[key] for r in rows], float)
        cmae = float(np.mean(np.abs(pred - truths))) if len(rows) else 0.0
        result["cmae"][key] = round(cmae, 4)
        result["relative_cmae"][key] = round(cmae / max(truths.mean(), 1e-9), 4) \
            if len(rows) else 0.0
        if tiles is None:
            continue
        result["tile_mae"][key] = round(float(np.mean(np.abs(tiles - truth_t))), 4) \
            if len(truth_t) else 0.0
        result["jaccard"][key] = round(jac[key][0] / max(jac[key][1], 1.0), 4)
        result["ms_per_tile"][key] = round(1000 * seconds[key] / max(n_tiles, 1), 2)
    if len(conf) and not np.isnan(conf).any():
        right = is_right(on_t, truth_t)
        nonempty = truth_t > 0
        result["confidence"] = {
            "definition": "right = |onboard - true| < 0.5 + floor(0.1 * true), per tile",
            "right_rate": round(float(right.mean()), 4),
            "auroc": _r(auroc(conf, right)),
            "auroc_nonempty": _r(auroc(conf[nonempty], right[nonempty])),
            "ece": round(expected_calibration_error(conf, right), 4),
            "tiles": int(len(conf)), "nonempty_tiles": int(nonempty.sum())}
    return result


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def tile_training_data(counter, images: list[AnnotatedImage], classes: set[str] | None,
                       dedupe_iou: float = DEFAULT_IOU) -> tuple[np.ndarray, np.ndarray]:
    """Confidence features and 'right' labels of every tile, from the onboard counter."""
    feats, labels = [], []
    for img in tqdm(images, desc="confidence tiles", unit="scene"):
        out = counter.count(img.load_pixels(), img.meta.gsd_m).outputs
        objects, _ = truth_objects(img, classes, dedupe_iou)
        truth = true_counts(out.grid, objects).ravel()
        feats.append(tile_features(out.density, out.mask_logits))
        labels.append(is_right(out.counts, truth))
    return np.concatenate(feats), np.concatenate(labels)
