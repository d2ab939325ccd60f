"""``targetfuse shift-experiment``: the closed loop on imagery its calibration never saw.

A satellite starts with the ``objects`` pair's calibration (confidence and error model) fit
without one real-dev source (``lab.experiments.shift_calibration``: the shipped procedure on
the other sources' tiles; the counters stay the shipped ones), then passes over the test
scenes of that source, pass after pass. Two arms play each pass at equal bytes:

* **loop**: exploration on (``--share`` of each scene's bytes, ``shared.pipeline.
  exploration``, the scene planned by ``plan_scene`` as onboard); after each pass the ground
  refits the confidence and the error model on every tile received so far, exploration
  tiles weighted for the accepted tiles they stand for, a confidence map per regime
  (``ground.recalibrate.recalibrate``: ground counts as reference, minimum sample, check on
  held-back scenes, including the throttle's choice replayed there); what it says should
  be in force (the starting files where it found nothing better: an earlier bundle the
  evidence no longer bears out is taken back) is signed into an uplink bundle
  (``shared.uplink.bundle.build``) which the satellite's bundle keeper
  (``onboard.bundles.BundleKeeper``:
  signature, sha256, numbers and canary checks) receives and applies between scenes, so the
  next pass is planned under it.
* **no loop**: no exploration, the starting calibration throughout, and the loop's uplink
  bytes as extra downlink budget: the bundle applied before pass k costs U bytes, and the
  no-loop arm's pass k gets its budget raised by U spread over the pass's scenes (each
  scene's fraction + U / the pass's raw bytes). Exploration bytes come out of the loop's own
  budget (as onboard), so both arms spend the same bytes over the run.

Per pass: CMAE against the annotated truth of each arm; bytes used (downlink), exploration
bytes and tiles, uplink bytes; the confidence's ECE and AUROC on every tile of the pass
(and AUROC on tiles holding objects) under the calibration in force; the recalibration's
checks. A pass is every test scene once, each under a new scene id (``<image>#<pass>``: a
revisit is a new acquisition with its own exploration draw); the onboard outputs of each
tile and the ground's count of each (tile, quality) are computed once and reused over
passes (they do not depend on the calibration), only planning runs again.

With ``--adapt-every N`` the loop also adapts the counter itself (``lab.closed_loop.adapt``,
the strong form): after every N-th pass the ground fine-tunes the onboard counter in force on
the newest downlinked tiles (as received: decoded JPEG) with its own counter as the teacher,
checks it on the exploration tiles of held-back images, and, when it is better there, refits
a calibration for it on the same tiles and replays the throttle with both counters on the
held-back images (``lab.closed_loop.candidate``); a counter that chooses better is signed
with its calibration into one bundle (with the pair's canary counts) that the keeper checks
and applies like any other; its bytes are charged like a recalibration's (the no-loop arm's
next pass gets them as budget). The satellite then counts every tile with the new counter
under its calibration; the ground pools recalibration evidence afresh from it (what the old
counter counted says nothing of the new one's errors) and refits from that calibration. The
no-loop arm keeps the shipped counter throughout.

Two departures from the live ground, stated in the results: the ground pools every
tile received so far, each with its confidence under the starting calibration,
and refits from the starting models (live, it fits only tiles of scenes planned under the
bundle in force, composing its map onto that bundle's; the experiment knows the starting
confidence of each tile, which the live ground could only invert through a flat map); and the
held-back split hashes the image, not the scene id, so no image lands on both sides across
passes. ``--min-tiles`` and ``--min-each`` lower the ground's evidence thresholds (defaults
200 and 20) where a few passes of exploration cannot reach them.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ground.recalibrate import Evidence, recalibrate, stand_in_weights
from lab.closed_loop.adapt import AdaptSettings, adapt
from lab.closed_loop.candidate import calibrate_candidate
from lab.closed_loop.tiles import TileData, inputs_of
from lab.data.classes import load_class_map
from lab.data.label_cleaning import DEFAULT_IOU
from lab.data.realdev import add_real_dev_option
from lab.evaluation.sources import covered_images
from lab.experiments import shift_calibration as cal
from lab.simulator import SceneSimulator
from onboard.bundles import BundleKeeper
from shared.confidence import (
    ConfidenceModel,
    auroc,
    expected_calibration_error,
    is_right,
    tile_features,
)
from shared.model_bundle import MODELS_DIR
from shared.paths import PROJECT_ROOT
from shared.pipeline.codec import downlink_pixels, encode_tile
from shared.pipeline.config import PipelineConfig
from shared.pipeline.decisions import DOWNLINK
from shared.pipeline.energy import EnergyModel
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.exploration import check_share, explored_bytes
from shared.pipeline.ground_bias import GROUND_SCALES
from shared.pipeline.scene import ScenePlan
from shared.pipeline.selection import ACCEPT
from shared.pipeline.tiles import LazyTiles
from shared.tile_grid import TileGrid, true_counts
from shared.uplink.bundle import build as build_bundle
from shared.uplink.keys import load_private_key, load_public_key, make_signing_key

SOURCES = ("airbus_aircraft", "gdit_aerial_airport", "ships_google_earth")
SATELLITE = "satellite-shift"


class ShiftScene(SceneSimulator):
    """A scene whose onboard outputs are computed once, its confidences following the model
    the counter holds now (what a bundle swaps): ``OnboardCounter._confidence``, on cached
    features."""

    def __init__(self, image, objects, onboard, ground, classes, error_model=None, tiling=None):
        super().__init__(image, onboard, ground, EnergyModel(), tiling, error_model,
                         classes=classes)
        self.objects = objects
        self.truth = len(objects)
        self._runs: dict[int, tuple] = {}
        self._conf: dict[int, tuple] = {}

    def outputs(self, tile_size: int) -> tuple:
        """Counts, confidence features, embedding, density, truth per tile, by the counter
        in force (an adapted counter has its own)."""
        key = (self.onboard.card.sha256, tile_size)
        if key not in self._runs:
            grid = TileGrid(self.pixels.shape[1], self.pixels.shape[0], tile_size)
            run, _ = self.onboard.run_at(LazyTiles(grid, self.pixels), tile_size,
                                         self.channels)
            self._runs[key] = (run.counts, tile_features(run.density, run.mask_logits),
                               run.embedding, run.density,
                               true_counts(grid, self.objects).ravel())
        return self._runs[key]

    def received(self, plan: ScenePlan, i: int, quality: int, resized: bool) -> np.ndarray:
        """Tile i as the ground counted it: its counter inputs (``tiles.inputs_of``) from the
        JPEG it received."""
        tile = downlink_pixels(plan.grid.crop(self.pixels, i), plan.tile_size,
                               self.onboard.input_size if resized else None)
        sent = SimpleNamespace(data=encode_tile(tile, quality), resized=resized,
                               sent_gsd_m=self.gsd)
        return inputs_of(sent, self.onboard.bundle.card)

    def confidence_with(self, model: ConfidenceModel, tile_size: int) -> np.ndarray:
        _, feats, emb, _, _ = self.outputs(tile_size)
        return model.predict(feats, emb)

    def onboard_at(self, tile_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        model = self.onboard.confidence
        key = (self.onboard.card.sha256, tile_size)
        held = self._conf.get(key)
        if held is None or held[0] is not model:
            self._conf[key] = held = (model, self.confidence_with(model, tile_size))
        counts, _, _, dens, _ = self.outputs(tile_size)
        return counts, held[1], dens


@dataclass
class Satellite:
    """The onboard side the loop needs: the counter, the planner's error model and
    configuration, and its bundle keeper (``onboard.bundles``), as the service holds them."""

    counter: object
    error_model: ErrorModel
    cfg: PipelineConfig
    bundle_version: int = 0
    keeper: BundleKeeper | None = None


@dataclass
class Ground:
    """The ground's side: its key, the starting models it refits from, and the evidence
    (every downlinked tile, exploration or by value, and how many tiles were accepted
    onboard: what an exploration tile stands for, ``ground.recalibrate``)."""

    private_key: object
    base_confidence: ConfidenceModel
    base_error: ErrorModel
    onboard: list = field(default_factory=list)
    confidence: list = field(default_factory=list)
    ground: list = field(default_factory=list)
    scenes: list = field(default_factory=list)
    exploration: list = field(default_factory=list)
    size: list = field(default_factory=list)  # bytes each tile cost (its JPEG's)
    quality: list = field(default_factory=list)
    accepted: int = 0
    version: int = 0
    in_force: dict = field(default_factory=dict)  # role -> the file the satellite holds
    # The newest received tiles as counter inputs, for adaptation (None: not adapting),
    # and how many tiles each stands for (exploration tiles: the pass's (A + E) / E)
    tiles: collections.deque | None = None
    tile_weights: collections.deque | None = None

    def forget_counts(self) -> None:
        """Drop the recalibration evidence: a new counter in force makes what the old one
        counted no evidence of its errors (the received tiles are kept: adaptation fits
        images, not the old counter's counts)."""
        for name in ("onboard", "confidence", "ground", "scenes", "exploration", "size",
                     "quality"):
            getattr(self, name).clear()
        self.accepted = 0

    def evidence(self) -> Evidence:
        explored = np.array(self.exploration, bool)
        return Evidence(np.array(self.onboard, float), np.array(self.confidence, float),
                        np.array(self.ground, float), list(self.scenes), explored,
                        stand_in_weights(explored, self.accepted),
                        np.array(self.size, float), np.array(self.quality, int))


def sat_map(rec) -> dict | None:
    """The confidence maps a bundle carries (rounded), for the record: per regime."""
    if rec.confidence is None:
        return None
    maps = {"all" if rec.confidence.recalibration_busy is None else "empty":
            rec.confidence.recalibration, "busy": rec.confidence.recalibration_busy}
    return {regime: {k: [round(float(v), 4) for v in vals] for k, vals in m.items()}
            for regime, m in maps.items() if m is not None}


def make_loop(folder: Path, counter, conf0: ConfidenceModel, em0: ErrorModel,
              cfg: PipelineConfig) -> tuple[Satellite, Ground]:
    """A satellite in force with (conf0, em0) and a keeper trusting a fresh ground key."""
    key = make_signing_key(Path(folder) / "ground-key")
    counter.confidence = conf0
    sat = Satellite(counter, em0, cfg)
    sat.keeper = BundleKeeper(Path(folder) / "bundles", load_public_key(key.public), sat)
    return sat, Ground(load_private_key(key.private), conf0, em0)


def pass_stats(sims: list[ShiftScene], results: list, model: ConfidenceModel) -> dict:
    """CMAE, bytes and the confidence's ECE / AUROC on every tile of the pass."""
    totals = np.array([r.total for r in results])
    truths = np.array([s.truth for s in sims], float)
    conf, right, busy = [], [], []
    used = explored = tiles = sent = 0
    for sim, r in zip(sims, results, strict=True):
        ts = r.plan.tile_size
        counts, _, _, _, truth = sim.outputs(ts)
        conf.append(sim.confidence_with(model, ts))
        right.append(is_right(counts, truth))
        busy.append(truth > 0)
        d = r.plan.decisions
        used += int(d.bytes_used)
        explored += explored_bytes(d, r.plan.sizes)
        tiles += 0 if d.explored is None else int(d.explored.sum())
        sent += int((d.action == DOWNLINK).sum())
    conf, right, busy = np.concatenate(conf), np.concatenate(right), np.concatenate(busy)
    return {"cmae": float(np.abs(totals - truths).mean()),
            "relative_cmae": float(np.abs(totals - truths).mean() / max(truths.mean(), 1e-9)),
            "bytes_used": used, "exploration_bytes": explored, "exploration_tiles": tiles,
            "tiles_sent": sent, "ece": expected_calibration_error(conf, right),
            "auroc": auroc(conf, right),
            "auroc_busy": auroc(conf[busy], right[busy]), "tiles": int(len(conf)),
            "right_rate": float(right.mean()) if len(right) else math.nan}


def play(sims: list[ShiftScene], sat: Satellite, cfg: PipelineConfig, budget: float,
         scene_suffix: str) -> list:
    """Every scene once under the satellite's models in force (its error model on each)."""
    out = []
    for sim in sims:
        sat.keeper.between_scenes() if sat.keeper is not None else None
        sim.error_model = sat.error_model
        out.append(sim.run(cfg, budget, 1.0, scene_id=f"{sim.image.image_id}#{scene_suffix}"))
    return out


def collect(ground: Ground, sims: list[ShiftScene], results: list, cfg: PipelineConfig
            ) -> int:
    """The downlinked tiles of a pass as the ground keeps them (onboard count, the starting
    calibration's confidence, the ground's bias-corrected count, whether drawn for
    exploration; keyed by image), and how many tiles the pass accepted onboard. The number
    of exploration tiles."""
    n, accepted, received = 0, 0, []
    for sim, r in zip(sims, results, strict=True):
        d, plan = r.plan.decisions, r.plan
        ts = plan.tile_size
        explored = d.explored if d.explored is not None else np.zeros(len(d.action), bool)
        accepted += int(((d.action == ACCEPT) & np.isfinite(plan.onboard)
                         & ~np.asarray(plan.reused, bool)).sum())
        sent = np.flatnonzero(d.action == DOWNLINK)
        if not len(sent):
            continue
        base = sim.confidence_with(ground.base_confidence, ts)
        for i in sent:
            if not np.isfinite(plan.onboard[i]):
                continue
            q = int(d.quality[i])
            g = sim.ground_count(plan, int(i), q, sim.resized(cfg)) * ground.base_error.scale(q)
            if ground.tiles is not None:
                received.append(TileData(
                    sim.image.image_id, int(i), bool(explored[i]), float(g),
                    sim.received(plan, int(i), q, sim.resized(cfg)),
                    None if sim.channels is None else list(sim.channels),
                    float(plan.sizes[q][i]), q))
            ground.onboard.append(float(plan.onboard[i]))
            ground.confidence.append(float(base[i]))
            ground.ground.append(float(g))
            ground.scenes.append(sim.image.image_id)
            ground.exploration.append(bool(explored[i]))
            ground.size.append(float(plan.sizes[q][i]))
            ground.quality.append(q)
            n += int(explored[i])
    ground.accepted += accepted
    stands_for = (accepted + n) / max(n, 1)
    for t in received:
        ground.tiles.append(t)
        ground.tile_weights.append(stands_for if t.exploration else 1.0)
    return n


def model_file(model) -> bytes:
    """A confidence or error model as a bundle carries it (compact JSON)."""
    return json.dumps(asdict(model), separators=(",", ":")).encode()


def uplink(ground: Ground, sat: Satellite, rec) -> int:
    """Sign what the recalibration accepted (a part not accepted at its starting value, so
    what is in force is exactly what this refit checked), send it to the keeper, and apply
    it before the next scene; a file equal to the one in force is left out (the keeper keeps
    it). The bundle's bytes (0: nothing differs, nothing sent)."""
    wanted = {"confidence": model_file(rec.confidence or ground.base_confidence),
              "error_model": model_file(rec.error_model or ground.base_error)}
    if not ground.in_force:
        ground.in_force = {"confidence": model_file(ground.base_confidence),
                           "error_model": model_file(ground.base_error)}
    files = {role: data for role, data in wanted.items() if ground.in_force[role] != data}
    if not files:
        return 0
    ground.in_force.update(files)
    ground.version += 1
    blob = build_bundle(files, version=ground.version, model=sat.counter.card.name,
                        model_sha256=sat.counter.card.sha256, private_key=ground.private_key,
                        satellites=(SATELLITE,), note="shift experiment recalibration")
    if not sat.keeper.receive(blob, ground.version):
        raise RuntimeError(f"the satellite refused bundle {ground.version}: "
                           f"{sat.keeper.report()}")
    sat.keeper.between_scenes()
    if sat.keeper.version != ground.version:
        raise RuntimeError(f"bundle {ground.version} was not applied: {sat.keeper.info()}")
    return len(blob)


@dataclass
class Adapter:
    """The ground's adaptation of the onboard counter (``--adapt-every``): its teacher, the
    counter in force (PyTorch weights to fine-tune from, and the ONNX it runs onboard)."""

    every: int
    settings: AdaptSettings
    teacher: object  # the ground counter
    card: object  # the pair's onboard card
    state: dict  # the counter in force's weights
    onnx: bytes  # the counter in force as the satellite runs it (fp32)
    folder: Path
    # What a new counter's calibration is refit from (the satellite's starting confidence)
    base_confidence: ConfidenceModel | None = None

    @classmethod
    def of(cls, counter, teacher, every: int, settings: AdaptSettings, folder: Path
           ) -> Adapter:
        """From the pair the satellite ships with (its PyTorch weights, its fp32 ONNX)."""
        from ground.counter import load_network
        from lab.models.nets import build

        pair = counter.bundle
        weights = pair.named_file("torch_weights")
        if weights is None:
            raise ValueError(f"the pair {pair.card.name} ships no PyTorch weights to adapt")
        return cls(every, settings, teacher, pair.card,
                   load_network(pair.card, weights, build).state_dict(),
                   (pair.fp32_weights or pair.weights).read_bytes(), folder)

    def due(self, k: int, passes: int) -> bool:
        """After pass k (0-based): every ``every`` passes, never after the last."""
        return self.every > 0 and (k + 1) % self.every == 0 and k + 1 < passes


def adapt_counter(adapter: Adapter, ground: Ground, sat: Satellite, k: int, s: Settings
                  ) -> tuple[int, dict]:
    """The ground's adaptation on the tiles it holds; a counter that passes its check gets
    a calibration of its own and is checked by the throttle replayed with it
    (``lab.closed_loop.candidate``); one that passes both is signed into a bundle with its
    calibration and the pair's canary counts, received and applied by the keeper before the
    next scene. The bundle's bytes (0: not taken) and the adaptation's report."""
    from lab.models.nets import build
    from shared.preprocess import input_convention
    from shared.uplink.parity import canary_batch, canary_counts, onnx_runner

    card = adapter.card
    student = build(card.architecture, card.arch_config)
    student.load_state_dict(adapter.state)
    result = adapt(list(ground.tiles), group=SATELLITE, version=sat.keeper.version,
                   student=student.eval(), teacher=adapter.teacher,
                   in_force_onnx=adapter.onnx, card=card,
                   work_dir=adapter.folder / f"adapt-{k + 1}", settings=adapter.settings)
    report = result.report()
    if not result.changed:
        return 0, report
    held = calibrate_candidate(
        list(ground.tiles), np.array(ground.tile_weights), card=card,
        in_force_onnx=adapter.onnx, candidate_onnx=result.onnx,
        confidence_in_force=sat.counter.confidence, base=adapter.base_confidence,
        error_model=sat.error_model, group=SATELLITE, version=sat.keeper.version,
        min_tiles=adapter.settings.min_tiles, min_each=s.min_each,
        held_back=adapter.settings.held_back,
        min_gain=adapter.settings.min_gain, min_support=adapter.settings.min_support,
        threads=adapter.settings.threads)
    report["checks"].update(held.checks)
    if not held.taken:
        report["reason"] = held.reason
        report["changed"] = False
        return 0, report
    confidence, error_model = held.confidence, held.error_model
    files = {"onnx": result.onnx, "confidence": model_file(confidence),
             "error_model": model_file(error_model)}
    canary = {"file_sha256": card.extra["canary_tiles_sha256"],
              "counts": canary_counts(onnx_runner(result.onnx), canary_batch(
                  sat.counter.bundle.canary, input_convention(card.extra)))}
    ground.version += 1
    blob = build_bundle(files, version=ground.version, model=card.name,
                        model_sha256="", private_key=ground.private_key,
                        satellites=(SATELLITE,), canary=canary,
                        note="shift experiment adaptation")
    if not sat.keeper.receive(blob, ground.version):
        raise RuntimeError(f"the satellite refused counter bundle {ground.version}: "
                           f"{sat.keeper.report()}")
    sat.keeper.between_scenes()
    if sat.keeper.version != ground.version:
        raise RuntimeError(f"counter bundle {ground.version} was not applied: "
                           f"{sat.keeper.info()}")
    adapter.state, adapter.onnx = result.state_dict, result.onnx
    ground.forget_counts()
    # The new counter's calibration is what the ground refits from from now on.
    ground.base_confidence, ground.base_error = confidence, error_model
    ground.in_force = {role: data for role, data in files.items() if role != "onnx"}
    return len(blob), report


def _counter_parts(counter) -> tuple:
    """What a counter bundle swaps (``BundleKeeper._swap``)."""
    return counter.session, counter.input_name, counter.card, counter.variant


def _set_counter_parts(counter, parts: tuple) -> None:
    counter.session, counter.input_name, counter.card, counter.variant = parts


@dataclass
class Settings:
    passes: int = 8
    share: float = 0.05
    budget: float = 0.10
    min_tiles: int = 200
    min_each: int = 20
    held_back: float = 0.3
    seed: int = 0
    converged: int = 5  # passes averaged "after convergence" (the last ones)
    adapt_every: int = 0  # adapt the counter after every N-th pass (0: never)


def run_loop(sims: list[ShiftScene], counter, conf0: ConfidenceModel, em0: ErrorModel,
             cfg: PipelineConfig, s: Settings, folder: Path, progress=print,
             adapter: Adapter | None = None) -> list[dict]:
    """Both arms, pass after pass: one row per pass (``adapter``: the ground also adapts the
    counter, ``s.adapt_every``)."""
    check_share(s.share)
    raw = sum(sim.raw_bytes(cfg.raw_quality) for sim in sims)
    loop_cfg = replace(cfg, exploration_share=s.share, seed=s.seed)
    flat_cfg = replace(cfg, exploration_share=0.0, seed=s.seed)
    before, parts = counter.confidence, _counter_parts(counter)
    try:
        return _passes(sims, counter, conf0, em0, loop_cfg, flat_cfg, raw, s, folder, progress,
                       adapter)
    finally:
        # The counter as it came: the loop's bundles swapped its parts.
        counter.confidence = before
        _set_counter_parts(counter, parts)


def _passes(sims, counter, conf0, em0, loop_cfg, flat_cfg, raw, s: Settings, folder: Path,
            progress, adapter: Adapter | None = None) -> list[dict]:
    shipped = _counter_parts(counter)
    sat, ground = make_loop(folder, counter, conf0, em0, loop_cfg)
    if adapter is not None:
        ground.tiles = collections.deque(maxlen=adapter.settings.max_tiles)
        ground.tile_weights = collections.deque(maxlen=adapter.settings.max_tiles)
        adapter.base_confidence = conf0
    rows, pending_uplink = [], 0
    no_loop_cache: dict[float, tuple] = {}
    for k in range(s.passes):
        t0 = time.time()
        model_in_force = sat.counter.confidence
        loop = play(sims, sat, loop_cfg, s.budget, f"pass{k}")
        a = pass_stats(sims, loop, model_in_force)
        version = sat.keeper.version
        # The no-loop arm: the starting models, the loop's uplink bytes as extra budget.
        extra = pending_uplink / max(raw, 1)
        b_flat = s.budget + extra
        if b_flat not in no_loop_cache:
            counter.confidence, keep = conf0, sat.error_model
            sat.error_model = em0
            in_force = _counter_parts(counter)
            _set_counter_parts(counter, shipped)  # the shipped counter (an adapted one swapped)
            flat = play(sims, SimpleNamespace(keeper=None, error_model=em0), flat_cfg,
                        b_flat, f"flat{b_flat:.6f}")
            no_loop_cache[b_flat] = (pass_stats(sims, flat, conf0),)
            _set_counter_parts(counter, in_force)
            counter.confidence, sat.error_model = model_in_force, keep
        f = no_loop_cache[b_flat][0]
        # The ground: the pass's exploration tiles, a refit, a bundle when it takes one.
        # (not after the last pass: no pass would use what it sends)
        new = collect(ground, sims, loop, loop_cfg)
        rec = recalibrate(ground.evidence(), SATELLITE, version, ground.base_confidence,
                          ground.base_error,
                          min_tiles=s.min_tiles, min_each=s.min_each, held_back=s.held_back) \
            if k + 1 < s.passes else None
        # A refit judged on enough evidence says what should be in force, the starting
        # files where it found nothing better: a bundle an earlier, smaller sample passed
        # is taken back when the evidence no longer bears it out.
        judged = rec is not None and not rec.reason.startswith("not enough")
        adapted, adaptation = 0, None
        if adapter is not None and adapter.due(k, s.passes):
            adapted, adaptation = adapt_counter(adapter, ground, sat, k, s)
            progress(f"pass {k + 1}: adaptation "
                     f"{'taken' if adapted else 'not taken'} ({adaptation['reason'] or ''}"
                     f"{adaptation['checks'].get('counter', {})})")
        # A new counter in force: its calibration is refit from its own tiles later on.
        uplink_bytes = adapted or (uplink(ground, sat, rec) if judged else 0)
        changed = uplink_bytes > 0 and not adapted
        ev = ground.evidence()
        rows.append({
            "pass": k + 1, "bundle_version": version, "scenes": len(sims),
            "budget_fraction": s.budget, "raw_bytes": raw,
            "loop_cmae": a["cmae"], "no_loop_cmae": f["cmae"],
            "loop_relative_cmae": a["relative_cmae"], "no_loop_relative_cmae":
                f["relative_cmae"],
            "loop_bytes_used": a["bytes_used"], "no_loop_bytes_used": f["bytes_used"],
            "loop_budget_bytes": s.budget * raw, "no_loop_budget_bytes": b_flat * raw,
            "uplink_bytes_charged": pending_uplink, "exploration_bytes": a["exploration_bytes"],
            "exploration_tiles": a["exploration_tiles"], "evidence_tiles": len(ev),
            "evidence_wrong": int((~ev.right).sum()) if len(ev) else 0,
            "loop_tiles_sent": a["tiles_sent"], "no_loop_tiles_sent": f["tiles_sent"],
            "loop_ece": a["ece"], "no_loop_ece": f["ece"], "loop_auroc": a["auroc"],
            "no_loop_auroc": f["auroc"], "loop_auroc_busy": a["auroc_busy"],
            "no_loop_auroc_busy": f["auroc_busy"], "tiles": a["tiles"],
            "recalibrated": changed,
            "recalibration_reason": "last pass" if rec is None else (
                "a new counter sent instead (its calibration refit from its own tiles)"
                if adapted else "" if changed else
                rec.reason or "the refit gives the files in force"),
            "confidence_taken": changed and rec.confidence is not None,
            "error_model_taken": changed and rec.error_model is not None,
            "checks": {} if rec is None else rec.checks, "uplink_bytes_sent": uplink_bytes,
            "map_sent": sat_map(rec) if changed else None,
            "counter_adapted": bool(adapted), "adaptation": adaptation,
            "new_exploration_tiles": new, "seconds": round(time.time() - t0, 1)})
        pending_uplink = uplink_bytes
        sent = f"uplinked {uplink_bytes} B" if uplink_bytes else \
            rows[-1]["recalibration_reason"]
        progress(f"pass {k + 1}: loop CMAE {a['cmae']:.3f} (ECE {a['ece']:.3f}, bundle "
                 f"{version}), no loop {f['cmae']:.3f} (ECE {f['ece']:.3f}); evidence "
                 f"{len(ev)} tiles; {sent}")
    return rows


def load_scenes(source: str, onboard, ground, splits_dir: Path, root=None, limit=None,
                dedupe_iou: float = DEFAULT_IOU) -> list[ShiftScene]:
    ids = cal.split_part(source, "test", splits_dir)
    out = []
    for img, covered, objects in covered_images(source, ids, onboard.classes,
                                                load_class_map(), root, dedupe_iou):
        out.append(ShiftScene(img, objects, onboard, ground, covered))
        if limit and len(out) >= limit:
            break
    return out


def starting_calibration(source: str, onboard, ground, splits_dir: Path, cache: Path,
                         sources: list[str], root=None, ground_scale: str = "pooled"
                         ) -> tuple[ConfidenceModel, ErrorModel]:
    """The pair's calibration fit on every source but ``source`` (cached per source)."""
    others = [s for s in sources if s != source]
    qualities = PipelineConfig().qualities
    train = [cal.confidence_cache(onboard, s, "train", splits_dir, cache, root)
             for s in others]
    val = [cal.confidence_cache(onboard, s, "val", splits_dir, cache, root) for s in others]
    errors = [cal.error_cache(onboard, ground, s, splits_dir, cache, qualities, root=root)
              for s in others]
    return cal.fit_left_out(train, val, errors, qualities,
                            {"sources": others, "left_out": source,
                             "tiles_per_source": cal.TILES_PER_SOURCE}, ground_scale)


def summary(rows: list[dict], converged: int = 2, target: float = 0.2,
            ece_off: float = 0.05) -> dict:
    """After convergence (the last ``converged`` passes): mean CMAE of each arm, the
    reduction, and whether the issue's target holds where the starting calibration is off."""
    last = rows[-converged:]
    loop = float(np.mean([r["loop_cmae"] for r in last]))
    flat = float(np.mean([r["no_loop_cmae"] for r in last]))
    reduction = (flat - loop) / flat if flat > 0 else 0.0
    ece0 = rows[0]["no_loop_ece"]
    return {"passes": len(rows), "converged_passes": converged, "loop_cmae": loop,
            "no_loop_cmae": flat, "reduction": reduction, "starting_ece": ece0,
            "calibration_off": ece0 > ece_off, "target": target,
            "target_met": (reduction >= target) if ece0 > ece_off else None,
            "loop_ece": float(np.mean([r["loop_ece"] for r in last])),
            "loop_auroc": _mean([r["loop_auroc"] for r in last]),
            "no_loop_auroc": rows[0]["no_loop_auroc"],
            "bundles": sum(1 for r in rows if r["recalibrated"]),
            "adapted_counters": sum(1 for r in rows if r.get("counter_adapted")),
            "uplink_bytes": sum(r["uplink_bytes_sent"] for r in rows),
            "exploration_bytes": sum(r["exploration_bytes"] for r in rows),
            "loop_bytes": sum(r["loop_bytes_used"] for r in rows),
            "no_loop_bytes": sum(r["no_loop_bytes_used"] for r in rows),
            "evidence_tiles": rows[-1]["evidence_tiles"]}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def write_results(out: Path, source: str, rows: list[dict], meta: dict,
                  converged: int = 5) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    keys = [k for k in rows[0] if k not in ("checks", "adaptation")]
    with (out / f"{source}.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    path = out / f"{source}.json"
    path.write_text(json.dumps({"source": source, **meta, "summary": summary(rows, converged),
                                "passes": rows}, indent=1, default=float) + "\n")
    return path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shift-experiment",
                       help="the closed loop on a left-out source: CMAE with and without it")
    p.add_argument("--sources", default=",".join(SOURCES),
                   help="real-dev sources to leave out, one run each, comma-separated")
    p.add_argument("--model", default="objects")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--splits-dir", default=str(PROJECT_ROOT / "models" / "splits"))
    p.add_argument("--passes", type=int, default=8)
    p.add_argument("--share", type=float, default=0.05, help="exploration share (loop arm)")
    p.add_argument("--budget-fraction", type=float, default=0.10)
    p.add_argument("--min-tiles", type=int, default=200,
                   help="the ground's minimum sample of downlinked tiles (ground default 200)")
    p.add_argument("--min-each", type=int, default=20,
                   help="exploration tiles, and right and wrong tiles on each side, needed "
                        "(ground default 20)")
    p.add_argument("--held-back", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--converged-passes", type=int, default=5,
                   help="the last passes averaged as 'after convergence'")
    p.add_argument("--limit-scenes", type=int, default=None, help="first N test scenes only")
    a = AdaptSettings()
    p.add_argument("--adapt-every", type=int, default=0,
                   help="adapt the onboard counter after every N-th pass (distillation from "
                        "the ground, lab.closed_loop.adapt; 0: recalibration only)")
    p.add_argument("--adapt-max-tiles", type=int, default=1000,
                   help="the newest received tiles adaptation reads (default 1000)")
    p.add_argument("--adapt-min-tiles", type=int, default=a.min_tiles,
                   help=f"tiles to fit on (default {a.min_tiles})")
    p.add_argument("--adapt-min-held-back", type=int, default=30,
                   help="exploration tiles of held-back images to check on (default 30)")
    p.add_argument("--adapt-epochs", type=int, default=a.epochs,
                   help=f"fine-tuning passes over the tiles (default {a.epochs})")
    p.add_argument("--adapt-min-support", type=float, default=a.min_support,
                   help="share of the held-back scenes' bootstrap resamples the replayed "
                        f"gain must hold in (default {a.min_support})")
    p.add_argument("--ground-scale", choices=GROUND_SCALES, default="pooled",
                   help="the starting error model's ground bias correction: pooled over every "
                        "tile (default) or by-source (shared.pipeline.ground_bias)")
    p.add_argument("--cache", default="out/shift/cache",
                   help="per-source calibration tiles (computed once)")
    p.add_argument("--out", default="docs/shift")
    add_real_dev_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ground.counter import GroundCounter
    from onboard.counter import OnboardCounter
    from shared.model_card import load_card

    models_dir = Path(args.models_dir)
    ground = GroundCounter.shipped(args.model, models_dir, threads=1)
    card_sources = sorted(load_card(models_dir / args.model / "shallow.json").data
                           .get("split_files") or {})
    for source in [s.strip() for s in args.sources.split(",") if s.strip()]:
        onboard = OnboardCounter.shipped(args.model, models_dir, variant="fp32", threads=1,
                                         batch_size=8)
        conf0, em0 = starting_calibration(source, onboard, ground, Path(args.splits_dir),
                                          Path(args.cache), card_sources, args.real_dev,
                                          args.ground_scale)
        sims = load_scenes(source, onboard, ground, Path(args.splits_dir), args.real_dev,
                           args.limit_scenes)
        s = Settings(args.passes, args.share, args.budget_fraction, args.min_tiles,
                     args.min_each, args.held_back, args.seed, args.converged_passes,
                     args.adapt_every)
        print(f"{source}: {len(sims)} test scenes, {sum(x.truth for x in sims)} objects")
        with tempfile.TemporaryDirectory() as tmp:
            adapter = None if not args.adapt_every else Adapter.of(
                onboard, ground, args.adapt_every, adapt_settings(args), Path(tmp))
            rows = run_loop(sims, onboard, conf0, em0, PipelineConfig(), s, Path(tmp),
                            adapter=adapter)
        meta = {"settings": asdict(s), "model": args.model, "variant": "fp32",
                "starting_calibration": {"left_out": source,
                                         "sources": [x for x in card_sources if x != source],
                                         "error_model": asdict(em0)["fit_on"]},
                "command": "targetfuse shift-experiment " + _argline(args)}
        print(f"wrote {write_results(Path(args.out), source, rows, meta, s.converged)}")
    return 0


def adapt_settings(args) -> AdaptSettings:
    """The adaptation's settings from the command line, checked."""
    if args.adapt_every < 0:
        raise ValueError(f"--adapt-every must be >= 0, got {args.adapt_every}")
    out = AdaptSettings(min_tiles=args.adapt_min_tiles,
                        min_held_back=args.adapt_min_held_back,
                        max_tiles=args.adapt_max_tiles, epochs=args.adapt_epochs,
                        min_support=args.adapt_min_support, seed=args.seed)
    out.check()
    return out


def _argline(args) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in (
        ("sources", args.sources), ("passes", args.passes), ("share", args.share),
        ("budget_fraction", args.budget_fraction), ("min_tiles", args.min_tiles),
        ("min_each", args.min_each), ("seed", args.seed),
        ("converged_passes", args.converged_passes))) + (
        f" --ground-scale {args.ground_scale}" if args.ground_scale != "pooled" else "") + (
        f" --adapt-every {args.adapt_every} --adapt-max-tiles {args.adapt_max_tiles} "
        f"--adapt-min-tiles {args.adapt_min_tiles} --adapt-min-held-back "
        f"{args.adapt_min_held_back} --adapt-epochs {args.adapt_epochs} "
        f"--adapt-min-support {args.adapt_min_support}"
        if args.adapt_every else "") + f" --out {args.out}"
