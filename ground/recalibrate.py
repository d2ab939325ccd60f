"""Recalibration on the ground: refit a satellite's onboard confidence and the value policy's
onboard error from what comes down, with the ground's count as the reference.

Tiles sent by value are the ones the old calibration doubted: alone they teach it what it
already believed, and a map fit on them misrates the tiles it accepts. Exploration tiles
alone (drawn at random among the accepted tiles, ``shared.pipeline.exploration``) are the
opposite bias: mostly empty tiles counted right, and a map fit on them raised the confidence
of the busy tiles the throttle sends, which then stayed onboard (docs/CLOSED_LOOP.md:
CMAE doubled on airbus_aircraft). So the evidence is both, each tile weighted by how many
tiles it stands for, and the map is fit per regime. Only tiles of scenes planned under the
bundle in force (the header's ``bundle_version``) count: the confidence they carry is that
bundle's, which the new maps are composed onto.

Algorithm (``recalibrate``), per satellite (``group``: every tile of the satellite; per
region too, ``by_region``, where the scene's footprint gives one: its CRS, e.g. a UTM zone):

1. Evidence: each counted downlinked tile's onboard count ``c``, confidence ``p``, ground
   count ``g`` and label ``right = is_right(c, g)`` (``shared.confidence``'s definition,
   ``g`` as truth). Weights (Horvitz-Thompson): a tile sent by value stands for itself
   (weight 1); an exploration tile stands for the accepted tiles it was drawn from,
   ``(A + E) / E`` over the scenes' summaries (``A`` tiles accepted onboard, ``E`` drawn
   for exploration: every accepted tile has the same chance to be drawn). The weighted
   evidence is a sample of every tile the satellite counted and then kept or sent.
2. Enough evidence: at least ``min_tiles`` tiles, ``min_each`` exploration tiles and
   ``min_each`` of each label, else no change (the reason says what is missing).
3. Split by scene (a hash of the scene key: reproducible, and no scene on both sides) into
   fit and held-back tiles (``held_back``, default 30 %).
4. Confidence, per regime (``empty``: onboard count under the model's ``busy_from``;
   ``busy``: from it; the onboard confidence has a regression per regime too): a weighted
   isotonic map ``p -> P(right)`` fit on the regime's fit tiles (monotone, so the onboard
   ranking within the regime is kept), accepted only when it lowers the weighted Brier score
   on the regime's held-back tiles; a regime with under ``min_each`` of each label on
   either side keeps its map.
5. Error model: the onboard part (``ErrorModel.onboard``, weighted non-negative least
   squares of ``|c - g|`` on [1, c, 1 - p', (1 - p') c] with p' the confidence after step
   4) refit on the fit tiles; accepted only when it lowers the weighted mean absolute error
   of the predicted onboard error on the held-back tiles, and raises it in neither regime.
   The ground part (the ground counter's own error and bias, which the ground cannot
   measure against itself) is kept.
6. Decisions replayed (``replayed_error``): a part that fits the held-back tiles better can
   still choose worse tiles (measured: an error model that predicted ``|c - g|`` better sent
   other tiles and raised CMAE by half on airbus_aircraft). So each part is also taken only
   when the throttle's choice replayed on the held-back scenes, with the part and without
   it, leaves those scenes' totals no further from the ground's: per scene, the bytes it
   sent by value go to the tiles of largest expected gain per byte (an exploration tile
   costs and counts for the tiles it stands for), a chosen tile's count is the ground's,
   and the scene's error is ``|sum of w (c - g)|`` over the tiles left onboard.
7. The accepted parts are the files of an uplink bundle (``ground.uplink_cli``'s build):
   ``confidence.json`` (the model in force with the maps composed onto it) and
   ``error_model.json``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace

import numpy as np

from ground.store import ExploredTile, Store
from shared.confidence import ConfidenceModel, expected_calibration_error, is_right
from shared.pipeline.error_model import ErrorModel, fit_onboard_weights
from shared.wire import link_pb2

MIN_TILES = 200
MIN_EACH = 20
HELD_BACK = 0.3
RAW_QUALITY = 90  # a tile's quality when the evidence does not say (the pipeline's raw)


@dataclass
class Evidence:
    """Downlinked tiles of one group: onboard count, confidence, ground count, scene; whether
    each was drawn for exploration, and how many tiles it stands for (step 1)."""

    onboard: np.ndarray
    confidence: np.ndarray
    ground: np.ndarray
    scenes: list[str]
    exploration: np.ndarray | None = None  # None: every tile an exploration tile
    weight: np.ndarray | None = None  # None: one each
    size: np.ndarray | None = None  # bytes each tile cost as received (None: one each)
    quality: np.ndarray | None = None  # JPEG quality it came at (None: RAW_QUALITY)

    def __post_init__(self):
        n = len(self.onboard)
        if self.exploration is None:
            self.exploration = np.ones(n, bool)
        if self.weight is None:
            self.weight = np.ones(n, float)
        if self.size is None:
            self.size = np.ones(n, float)
        if self.quality is None:
            self.quality = np.full(n, RAW_QUALITY, int)

    def __len__(self) -> int:
        return len(self.onboard)

    @property
    def right(self) -> np.ndarray:
        return is_right(self.onboard, self.ground)

    def take(self, mask: np.ndarray) -> Evidence:
        return Evidence(self.onboard[mask], self.confidence[mask], self.ground[mask],
                        [s for s, m in zip(self.scenes, mask, strict=True) if m],
                        self.exploration[mask], self.weight[mask], self.size[mask],
                        self.quality[mask])


def stand_in_weights(exploration: np.ndarray, accepted: int) -> np.ndarray:
    """Each tile's weight (step 1): 1 for a tile sent by value, ``(A + E) / E`` for an
    exploration tile (``A`` = ``accepted`` tiles kept onboard, ``E`` exploration tiles)."""
    exploration = np.asarray(exploration, bool)
    explored = int(exploration.sum())
    return np.where(exploration, (accepted + explored) / max(explored, 1), 1.0)


@dataclass
class Recalibration:
    """What a recalibration found: the evidence, each part's check, and the new files (None
    for a part not accepted)."""

    group: str
    tiles: int
    bundle_version: int
    reason: str = ""  # why nothing changed, when nothing did
    checks: dict = field(default_factory=dict)
    confidence: ConfidenceModel | None = None
    error_model: ErrorModel | None = None

    @property
    def changed(self) -> bool:
        return self.confidence is not None or self.error_model is not None

    def report(self) -> dict:
        return {"group": self.group, "tiles": self.tiles,
                "bundle_version": self.bundle_version, "changed": self.changed,
                "reason": self.reason, "checks": self.checks,
                "confidence": self.confidence is not None,
                "error_model": self.error_model is not None}


def check_settings(min_tiles: int, min_each: int, held_back: float) -> None:
    if not (isinstance(min_tiles, int) and min_tiles >= 10):
        raise ValueError(f"min_tiles must be an integer >= 10, got {min_tiles!r}")
    if not (isinstance(min_each, int) and 1 <= min_each <= min_tiles // 2):
        raise ValueError(f"min_each must be an integer in [1, min_tiles / 2], got "
                         f"{min_each!r}")
    if not (isinstance(held_back, float | int) and math.isfinite(held_back)
            and 0.1 <= held_back <= 0.5):
        raise ValueError(f"held_back must be a fraction in [0.1, 0.5], got {held_back!r}")


def in_force(store: Store, sender: str) -> int:
    """The bundle version the satellite's newest scene was planned under (0: none seen)."""
    return next((v for s, _, _, v in store.bundle_versions() if s == sender), 0)


def region_of(header) -> str | None:
    """A scene's region: its footprint's CRS when it has a real one (a UTM zone's EPSG code
    names a 6-degree band), else None."""
    crs = header.footprint.crs if header.HasField("footprint") else ""
    return crs if crs and crs.lower() != "local" else None


def evidence(store: Store, sender: str, version: int
             ) -> tuple[Evidence, dict[str, Evidence]]:
    """The satellite's counted downlinked tiles of scenes planned under ``version`` (those
    whose summary has come down), weighted (step 1), and the same by region (scenes with a
    known footprint only)."""
    headers: dict = {}
    accepted = {}
    rows: list[tuple[ExploredTile, str | None]] = []
    for t in store.explored_tiles(sender=sender, by_value=True):
        if t.onboard_count is None or t.confidence is None or t.ground_count is None:
            continue
        if t.scene_id not in headers:
            headers[t.scene_id] = store.header(t.scene_id)
            summary = store.summary(t.scene_id)
            accepted[t.scene_id] = None if summary is None else sum(
                1 for d in summary.tiles
                if d.decision == link_pb2.ACCEPTED and d.HasField("onboard_count"))
        h = headers[t.scene_id]
        if h is None or h.bundle_version != version or accepted[t.scene_id] is None:
            continue
        rows.append((t, region_of(h)))

    def of(chosen) -> Evidence:
        explored = np.array([t.exploration for t, _ in chosen], bool)
        scenes = {t.scene_id for t, _ in chosen}
        return Evidence(np.array([t.onboard_count for t, _ in chosen], float),
                        np.array([t.confidence for t, _ in chosen], float),
                        np.array([t.ground_count for t, _ in chosen], float),
                        [t.scene_id for t, _ in chosen], explored,
                        stand_in_weights(explored, sum(accepted[s] for s in scenes)),
                        np.array([t.size or 1 for t, _ in chosen], float),
                        np.array([t.quality for t, _ in chosen], int))

    regions = sorted({r for _, r in rows if r is not None})
    return of(rows), {r: of([x for x in rows if x[1] == r]) for r in regions}


def held_back_mask(scenes: list[str], fraction: float) -> np.ndarray:
    """True for tiles of held-back scenes (by a hash of the scene key)."""
    def u(s: str) -> float:
        return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big") / 2**64
    return np.array([u(s) < fraction for s in scenes], bool)


def fit_map(p: np.ndarray, right: np.ndarray, weight: np.ndarray | None = None
            ) -> tuple[list[float], list[float]]:
    """(Weighted) isotonic map of confidence to the share of right counts, as strictly
    rising x."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(np.asarray(p, float), np.asarray(right, float), sample_weight=weight)
    x, y = np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float)
    x, keep = np.unique(x, return_index=True)
    y = y[keep]
    if len(x) < 2:  # one confidence value seen: a flat map over [0, 1]
        x, y = np.array([0.0, 1.0]), np.full(2, float(y[0]) if len(y) else 0.0)
    return np.clip(x, 0, 1).tolist(), np.maximum.accumulate(np.clip(y, 0, 1)).tolist()


def brier(p: np.ndarray, right: np.ndarray, weight: np.ndarray | None = None) -> float:
    return float(np.average((np.asarray(p, float) - np.asarray(right, float)) ** 2,
                            weights=weight))


def refit_onboard_error(base: ErrorModel, ev: Evidence, confidence: np.ndarray) -> ErrorModel:
    w = fit_onboard_weights(ev.onboard, confidence, np.abs(ev.onboard - ev.ground), ev.weight)
    return replace(base, onboard=w, fit_on={**base.fit_on, "recalibrated_on": {
        "tiles": len(ev), "exploration_tiles": int(ev.exploration.sum()),
        "weighted": "exploration tiles stand for the accepted tiles they were drawn from",
        "reference": "ground counts"}})


def replayed_error(ev: Evidence, confidence: np.ndarray, model: ErrorModel) -> float:
    """Step 6: the held-back scenes' summed error against the ground's counts when each
    scene's by-value bytes go, greedily by expected gain per byte under ``model`` (and
    ``confidence``, one per tile), to its tiles; an exploration tile costs and counts ``w``
    times (the accepted tiles it stands for). Lower is better; what the tiles' received
    quality gives stands in for the knapsack's choice of quality."""
    return float(replayed_scene_errors(ev, confidence, model)[1].sum())


def replayed_scene_errors(ev: Evidence, confidence: np.ndarray, model: ErrorModel
                          ) -> tuple[np.ndarray, np.ndarray]:
    """``replayed_error`` scene by scene: (the scenes, sorted; each one's error)."""
    ground_err = np.zeros(len(ev))
    for q in np.unique(ev.quality):
        at = ev.quality == q
        ground_err[at] = model.ground_error(ev.onboard[at], int(q))
    gain = model.onboard_error(ev.onboard, confidence) - ground_err
    per_byte = gain / np.maximum(ev.size, 1.0)
    miss = ev.weight * (ev.onboard - ev.ground)
    scenes = np.array(ev.scenes)
    names = np.unique(scenes)
    errors = np.zeros(len(names))
    for j, scene in enumerate(names):
        idx = np.flatnonzero(scenes == scene)
        budget = float(ev.size[idx][~ev.exploration[idx]].sum())
        left = np.ones(len(idx), bool)
        spent = 0.0
        for k in np.argsort(-per_byte[idx], kind="stable"):
            i = idx[k]
            if gain[i] <= 0:
                break
            cost = ev.weight[i] * ev.size[i]
            if spent + cost <= budget:
                spent += cost
                left[k] = False
        errors[j] = abs(float(miss[idx][left].sum()))
    return names, errors


def _labels(ev: Evidence) -> tuple[int, int]:
    right = ev.right
    return int(right.sum()), int((~right).sum())


def recalibrate(ev: Evidence, group: str, version: int, confidence: ConfidenceModel,
                error_model: ErrorModel | None, *, min_tiles: int = MIN_TILES,
                min_each: int = MIN_EACH, held_back: float = HELD_BACK) -> Recalibration:
    """Steps 2-5 on one group's evidence, against the models in force."""
    check_settings(min_tiles, min_each, held_back)
    out = Recalibration(group, len(ev), version)
    n_right, n_wrong = _labels(ev)
    n_explored = int(ev.exploration.sum())
    if len(ev) < min_tiles or min(n_right, n_wrong, n_explored) < min_each:
        out.reason = (f"not enough evidence: {len(ev)} tiles ({n_explored} exploration, "
                      f"{n_right} right, {n_wrong} wrong); at least {min_tiles} and "
                      f"{min_each} exploration tiles and of each label needed")
        return out
    back = held_back_mask(ev.scenes, held_back)
    fit, check = ev.take(~back), ev.take(back)
    # Each tile's confidence after the maps taken (a regime not refit keeps its own).
    conf_fit, conf_check = fit.confidence.copy(), check.confidence.copy()
    model = confidence
    for regime in ("empty", "busy"):
        f_in, c_in = (_in_regime(e, regime, confidence.busy_from) for e in (fit, check))
        f, c = fit.take(f_in), check.take(c_in)
        if min(*_labels(f), *_labels(c)) < min_each:
            out.checks[f"confidence_{regime}"] = {
                "taken": False, "fit_tiles": len(f), "held_back_tiles": len(c),
                "reason": f"under {min_each} of each label on a side of the split"}
            continue
        x, y = fit_map(f.confidence, f.right, f.weight)
        after = np.clip(np.interp(c.confidence, x, y), 0, 1)
        check_row = {
            "fit_tiles": len(f), "held_back_tiles": len(c),
            "brier_before": brier(c.confidence, c.right, c.weight),
            "brier_after": brier(after, c.right, c.weight),
            "ece_before": expected_calibration_error(c.confidence, c.right),
            "ece_after": expected_calibration_error(after, c.right)}
        check_row["taken"] = check_row["brier_after"] < check_row["brier_before"]
        out.checks[f"confidence_{regime}"] = check_row
        if check_row["taken"]:
            model = model.with_recalibration(x, y, regime)
            conf_fit[f_in] = np.clip(np.interp(conf_fit[f_in], x, y), 0, 1)
            conf_check[c_in] = after
    if model is not confidence and error_model is not None:
        # Step 6 for the maps: the throttle's choice under them, the error model in force.
        row = {"replayed_before": replayed_error(check, check.confidence, error_model),
               "replayed_after": replayed_error(check, conf_check, error_model)}
        row["taken"] = row["replayed_after"] <= row["replayed_before"]
        out.checks["confidence_decisions"] = row
        if not row["taken"]:
            model = confidence
            conf_fit, conf_check = fit.confidence.copy(), check.confidence.copy()
    if model is not confidence:
        out.confidence = model
    if error_model is not None:
        new = refit_onboard_error(error_model, fit, conf_fit)
        miss_before = np.abs(error_model.onboard_error(check.onboard, check.confidence)
                             - np.abs(check.onboard - check.ground))
        miss_after = np.abs(new.onboard_error(check.onboard, conf_check)
                            - np.abs(check.onboard - check.ground))
        row = {"held_back_tiles": len(check),
               "mae_before": float(np.average(miss_before, weights=check.weight)),
               "mae_after": float(np.average(miss_after, weights=check.weight)),
               "onboard_before": error_model.onboard, "onboard_after": new.onboard}
        # Better over the population and in neither regime worse: one linear model for
        # both, fit where empty tiles weigh most, can shrink the errors it predicts for the
        # busy tiles the throttle decides on (measured: downlink halved, CMAE up 80 %).
        worse = []
        for regime in ("empty", "busy"):
            m = _in_regime(check, regime, confidence.busy_from)
            if m.any():
                before = float(np.average(miss_before[m], weights=check.weight[m]))
                after = float(np.average(miss_after[m], weights=check.weight[m]))
                row[f"mae_{regime}_before"], row[f"mae_{regime}_after"] = before, after
                if after > before:
                    worse.append(regime)
        # Step 6: the tiles it would choose, against those the model in force chooses.
        row["replayed_before"] = replayed_error(check, conf_check, error_model)
        row["replayed_after"] = replayed_error(check, conf_check, new)
        row["taken"] = (row["mae_after"] < row["mae_before"] and not worse
                        and row["replayed_after"] <= row["replayed_before"])
        out.checks["error_model"] = row
        if row["taken"]:
            out.error_model = new
    if not out.changed:
        out.reason = "the refit was no better on the held-back tiles"
    return out


def _in_regime(ev: Evidence, regime: str, busy_from: float) -> np.ndarray:
    busy = ev.onboard >= busy_from
    return busy if regime == "busy" else ~busy


def recalibrate_satellite(store: Store, sender: str, confidence: ConfidenceModel,
                          error_model: ErrorModel | None, **settings
                          ) -> tuple[Recalibration, list[Recalibration]]:
    """The satellite's recalibration, and each region's (reported beside it: the onboard
    side applies one calibration per satellite)."""
    version = in_force(store, sender)
    ev, regions = evidence(store, sender, version)
    whole = recalibrate(ev, sender or "(anonymous)", version, confidence, error_model,
                        **settings)
    by_region = [recalibrate(r_ev, f"{sender}@{r}", version, confidence, error_model,
                             **settings) for r, r_ev in regions.items()]
    return whole, by_region
