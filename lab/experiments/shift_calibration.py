"""The shift experiment's starting point: the shipped calibration of a multi-source pair,
fit again without one source.

The shipped ``objects`` pair's confidence (``shared.confidence.fit_confidence`` on every
source's training tiles, its isotonic calibration on their validation tiles, the
familiarity reference on both: ``lab.shipping.ship``) and error model (``targetfuse
calibrate-sources``: tiles drawn from each source's training images) saw every real-dev
source. The experiment needs a satellite whose calibration has never seen the imagery it
meets, so both are fit again here, by the same functions, on every source but the one left
out. The counters (the ONNX onboard counter and the ground's deep counter) stay the shipped
ones: they were trained on that source's training images too, so the shift is in the
calibration only (what the loop can fix), not in the counters.

Per source, what is costly is computed once and kept in a cache folder (``.npz``):

* ``<source>-<part>-confidence.npz``: for every tile of the source's ``part`` images (at
  the counter's natural tile size, each image counted for the classes its labels cover, as
  ``lab.evaluation.sources.confidence_tiles``): the confidence features, the label "right"
  and the pooled embedding.
* ``<source>-error.npz``: ``tiles_per_source`` tiles drawn (seeded, per source) from the
  source's training images (``calibrate-sources``' tiles): true count, onboard count,
  confidence features and embedding (the confidence is the refit model's, computed when the
  error model is fit), and the ground counter's count of the tile as received at each JPEG
  quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lab.data.classes import load_class_map
from lab.data.label_cleaning import DEFAULT_IOU
from lab.evaluation.calibrate_sources import source_tiles
from lab.evaluation.sources import covered_images
from shared.confidence import ConfidenceModel, fit_confidence, is_right, tile_features
from shared.pipeline.codec import decode_tile, downlink_pixels, encode_tile
from shared.pipeline.error_model import ErrorModel
from shared.tile_grid import true_counts

TILES_PER_SOURCE = 120  # what the shipped error model was fit with (its fit_on)


def split_part(source: str, part: str, splits_dir: Path) -> list[str]:
    return json.loads((Path(splits_dir) / f"{source}.json").read_text()).get(part, [])


def confidence_cache(counter, source: str, part: str, splits_dir: Path, cache: Path,
                     root=None, dedupe_iou: float = DEFAULT_IOU) -> dict[str, np.ndarray]:
    """Features, labels and embeddings of every tile of the source's ``part`` images."""
    path = Path(cache) / f"{source}-{part}-confidence.npz"
    if path.exists():
        return dict(np.load(path))
    feats, labels, emb = [], [], []
    for img, covered, objects in covered_images(source, split_part(source, part, splits_dir),
                                                counter.classes, load_class_map(), root,
                                                dedupe_iou):
        out = counter.count(img.load_pixels(), img.meta.gsd_m, classes=covered).outputs
        feats.append(tile_features(out.density, out.mask_logits))
        labels.append(is_right(out.counts, true_counts(out.grid, objects).ravel()))
        emb.append(out.embedding)
    width = len(counter.confidence.mean) if counter.confidence else 11
    table = {"features": np.concatenate(feats) if feats else np.zeros((0, width)),
             "right": np.concatenate(labels) if labels else np.zeros(0, bool),
             "embedding": np.concatenate(emb) if emb else np.zeros((0, 0))}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **table)
    return table


def error_cache(onboard, ground, source: str, splits_dir: Path, cache: Path, qualities,
                tiles_per_source: int = TILES_PER_SOURCE, seed: int = 0, root=None,
                dedupe_iou: float = DEFAULT_IOU) -> dict[str, np.ndarray]:
    """``calibrate-sources``' per-tile table for one source (its own seeded draw)."""
    from ground.counting import ground_class_counts

    path = Path(cache) / f"{source}-error.npz"
    if path.exists():
        return dict(np.load(path))
    tiles = source_tiles(source, split_part(source, "train", splits_dir), onboard,
                         load_class_map(), root, dedupe_iou)
    rng = np.random.default_rng([seed, *source.encode()])
    pick = sorted(rng.permutation(len(tiles))[:tiles_per_source])
    rows: dict[str, list] = {"truth": [], "onboard": [], "features": [], "embedding": [],
                             **{f"ground_q{q}": [] for q in qualities}}
    for k in pick:
        pixels, size, channels, n = tiles[k]
        run, _ = onboard.run_at([pixels], size, channels)
        rows["truth"].append(n)
        rows["onboard"].append(float(run.counts[0]))
        rows["features"].append(tile_features(run.density, run.mask_logits)[0])
        rows["embedding"].append(run.embedding[0])
        sent = downlink_pixels(pixels, size, onboard.input_size)
        for q in qualities:
            rgb = decode_tile(encode_tile(sent, q))
            rows[f"ground_q{q}"].append(float(ground_class_counts(
                ground, rgb, None, onboard.input_size, channels).sum()))
    table = {k: np.asarray(v, float) for k, v in rows.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **table)
    return table


def _stack(tables: list[dict], key: str) -> np.ndarray:
    parts = [t[key] for t in tables if len(t[key])]
    return np.concatenate(parts) if parts else np.zeros(0)


def fit_left_out(conf_train: list[dict], conf_val: list[dict], errors: list[dict],
                 qualities, meta: dict, ground_scale: str = "pooled"
                 ) -> tuple[ConfidenceModel, ErrorModel]:
    """The confidence (as ``ship`` fits it) and error model (as ``calibrate-sources`` does,
    its ground bias ``ground_scale``: "pooled", or "by-source", ``shared.pipeline.
    ground_bias``) on the given sources' tables."""
    tx, ty = _stack(conf_train, "features"), _stack(conf_train, "right").astype(bool)
    vx, vy = _stack(conf_val, "features"), _stack(conf_val, "right").astype(bool)
    conf = fit_confidence(tx, ty, vx, vy)
    te, ve = _stack(conf_train, "embedding"), _stack(conf_val, "embedding")
    if te.ndim == 2 and ve.ndim == 2 and len(te) and len(ve):
        conf.fit_ood(te, ve)
    on = _stack(errors, "onboard")
    p = conf.predict(_stack(errors, "features"), _stack(errors, "embedding")
                     if conf.ood_mean is not None else None)
    sources = np.concatenate([np.full(len(e["truth"]), s) for s, e in
                              zip(meta["sources"], errors, strict=True)])
    model = ErrorModel.fit(_stack(errors, "truth"), on, p,
                           {q: _stack(errors, f"ground_q{q}") for q in qualities},
                           {**meta, "tiles": len(on), "part": "train", "tile_size": "natural"},
                           sources=sources if ground_scale == "by-source" else None)
    return conf, model
