"""Adaptation, the strong form of the closed loop: the ground fine-tunes a satellite's onboard
counter on the tiles it downlinked of the imagery it now sees, with the ground counter as the
teacher (distillation), checks the result on held-back tiles, and signs the new ONNX model
into an uplink bundle (``targetfuse adapt-onboard``).

Recalibration (``ground.recalibrate``) changes what the onboard confidence and error model
believe of the counter; this changes the counter. Algorithm (``adapt``), per satellite:

1. Tiles: the satellite's newest ``max_tiles`` tiles with a ground count (``Store.
   counted_tiles``: sent by value or drawn for exploration), decoded from their JPEG bytes
   and prepared as the ground prepared them to count (``ground.counting``: a tile sent
   resized is one counter input; a native tile is cut at the counter's natural size).
2. Split by scene as recalibration does (``ground.recalibrate.held_back_mask``: a hash of the
   scene key, no scene on both sides): every tile of the other scenes is fit on; the
   **exploration** tiles of the held-back scenes are checked on (drawn at random among the
   tiles the satellite accepted, they are an unbiased sample of its counter's errors; tiles
   sent by value are the ones it doubted).
3. Enough evidence: at least ``min_tiles`` tiles to fit on and ``min_held_back`` exploration
   tiles to check on, else no change (the reason says what is missing).
4. Targets: the ground counter's density maps and mask logits on the fit tiles (the
   teacher; its per-class count scale applied, the onboard card's taken off, so the onboard
   counter counts what the ground counts once its own scale is applied again). Not the
   store's counts: those carry the error model's bias correction, pooled over the training
   sources and wrong by source (distilled into the counter on airbus_aircraft it made the
   satellite overcount 5x worse than without the loop, docs/CLOSED_LOOP.md).
5. Fine-tuning from the counter in force (the pair's ``shallow.pt``, or ``--init-from`` the
   weights of an adapted counter in force, checked against that bundle's canary counts): the
   trunk frozen (so the pooled features the onboard confidence measures a tile's novelty
   with do not move) and its features computed once; the decoder and heads trained with
   AdamW for ``epochs`` on ``lab.training.loop.distil_terms`` (the teacher's density and
   tile count) plus a binary cross-entropy to the teacher's mask, batch norm statistics
   frozen; seeded (one thread: the same weights for the same tiles and seed).
6. Export to ONNX as ``targetfuse ship`` does (``lab.shipping.ship.export_onnx``, fp32, the
   pair's input convention, the pooled features as the third output), its outputs checked
   against PyTorch.
7. The check, on the held-back exploration tiles, both counters run by onnxruntime in fp32
   on the same decoded tiles over each scene's classes: each tile's absolute error against
   the teacher's count of it (``teacher_counts``: the reference it was fit to). The
   candidate is taken only when its mean absolute error is at most
   ``1 - min_gain`` of the counter in force's (default: 5 % lower).
8. A candidate that passes goes up only with a calibration of its own, and only when the
   throttle replayed with it chooses better than with the counter in force
   (``lab.closed_loop.candidate``: the confidence maps and the error model's onboard part
   refit for it on the same tiles, judged on the held-back scenes; an adapted counter
   under the old counter's confidence sent twice the tiles and quadrupled CMAE on
   airbus_aircraft, docs/CLOSED_LOOP.md).
9. Taken: ``model.onnx``, ``confidence.json`` and ``error_model.json`` (and ``adapted.pt``,
   its weights, to adapt from next time) are written, and with ``--build`` signed into one
   bundle for the satellite (``ground.uplink_cli``'s build: the canary counts recorded, the
   bundle's bytes reported).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ground.counter import GroundCounter, load_network
from ground.recalibrate import held_back_mask, in_force
from lab.closed_loop.candidate import MIN_SUPPORT, calibrate_candidate
from lab.closed_loop.tiles import (
    TileData,
    count_scale,
    in_convention,
    normalised,
    stand_in,
    tile_data,
)
from lab.models.nets import build
from lab.shipping.ship import export_onnx, onnx_parity
from lab.training.loop import distil_terms
from shared.model_bundle import ModelBundle
from shared.preprocess import RAW_INPUT
from shared.uplink.parity import onnx_runner

MIN_TILES = 200
MIN_HELD_BACK = 50
HELD_BACK = 0.3
MIN_GAIN = 0.05
MAX_TILES = 400


@dataclass
class AdaptSettings:
    """How much evidence, how the check decides, and how the counter is fine-tuned."""

    min_tiles: int = MIN_TILES  # tiles to fit on (of the scenes not held back)
    min_held_back: int = MIN_HELD_BACK  # exploration tiles of held-back scenes to check on
    held_back: float = HELD_BACK  # share of scenes held back
    min_gain: float = MIN_GAIN  # relative cut of the held-back MAE needed to take it
    # share of the held-back scenes' bootstrap resamples the replayed gain must hold in
    min_support: float = MIN_SUPPORT
    max_tiles: int = MAX_TILES  # the satellite's newest counted tiles read
    epochs: int = 4
    lr: float = 1e-3
    batch_size: int = 8
    w_count: float = 1.0  # the tile count term, beside the density maps' (distil_terms)
    w_mask: float = 0.1  # the mask's cross-entropy to the teacher's
    seed: int = 0
    threads: int = 1

    def check(self) -> None:
        def integer(name: str, lo: int, hi: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")

        def fraction(name: str, lo: float, hi: float) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, float | int) or \
                    not math.isfinite(v) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {v!r}")

        integer("min_tiles", 10, 1_000_000)
        integer("min_held_back", 10, 1_000_000)
        integer("max_tiles", 20, 100_000)
        integer("epochs", 1, 100)
        integer("batch_size", 1, 256)
        integer("seed", 0, 2**31 - 1)
        integer("threads", 1, 256)
        fraction("held_back", 0.1, 0.5)
        fraction("min_gain", 0.0, 0.9)
        fraction("min_support", 0.5, 1.0)
        fraction("lr", 1e-6, 1e-1)
        fraction("w_count", 0.0, 100.0)
        fraction("w_mask", 0.0, 100.0)
        if self.min_tiles + self.min_held_back > self.max_tiles:
            raise ValueError(f"max_tiles ({self.max_tiles}) must hold min_tiles + "
                             f"min_held_back ({self.min_tiles + self.min_held_back})")


@dataclass
class Adaptation:
    """What an adaptation found: the evidence, the check, and the new counter (None when
    not taken). ``report`` has the shape of a recalibration's (``satellite``: the dashboard
    shows its checks)."""

    group: str
    tiles: int
    bundle_version: int
    reason: str = ""
    fit_tiles: int = 0
    held_back_tiles: int = 0
    checks: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    onnx: bytes | None = field(default=None, repr=False)
    state_dict: dict | None = field(default=None, repr=False)
    # Its calibration (``lab.closed_loop.candidate``), set when the command checks it
    confidence: object = field(default=None, repr=False)
    error_model: object = field(default=None, repr=False)

    @property
    def changed(self) -> bool:
        return self.onnx is not None

    def report(self) -> dict:
        return {"group": self.group, "tiles": self.tiles, "bundle_version": self.bundle_version,
                "changed": self.changed, "reason": self.reason, "fit_tiles": self.fit_tiles,
                "held_back_tiles": self.held_back_tiles, "checks": self.checks,
                "training": self.training, "onnx_bytes": len(self.onnx) if self.onnx else 0}


# --- the tiles -----------------------------------------------------------------------------

def split(tiles: list[TileData], held_back: float) -> tuple[list[TileData], list[TileData]]:
    """Tiles to fit on (every tile of the scenes not held back) and to check on (the
    exploration tiles of the held-back scenes)."""
    back = held_back_mask([t.scene for t in tiles], held_back)
    fit = [t for t, b in zip(tiles, back, strict=True) if not b]
    check = [t for t, b in zip(tiles, back, strict=True) if b and t.exploration]
    return fit, check


# --- fitting -------------------------------------------------------------------------------

def teacher_targets(teacher, canvases: np.ndarray, onboard_scale: np.ndarray,
                    batch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The ground counter's density (its count scale applied, the onboard card's taken off)
    and mask logits on each canvas."""
    dens, masks = [], []
    for k in range(0, len(canvases), batch):
        d, m = teacher.run_batch(normalised(canvases[k:k + batch]))[:2]
        dens.append(np.asarray(d, np.float32) / onboard_scale[None, :, None, None])
        masks.append(np.asarray(m, np.float32))
    return torch.from_numpy(np.concatenate(dens)), torch.from_numpy(np.concatenate(masks))


def teacher_counts(teacher, tiles: list[TileData], card, batch: int = 8) -> np.ndarray:
    """Each tile's count by the teacher (its own count scale, no bias correction), over its
    scene's classes: what the check compares both counters with, the same reference the
    student was fit to. (The store's counts carry the error model's bias correction, a
    factor pooled over the training sources that is wrong by source, 0.57-1.05x: a counter
    taught or judged by it inherits that error.)"""
    if not tiles:
        return np.zeros(0)
    dens, _ = teacher_targets(teacher, np.concatenate([t.canvases for t in tiles]),
                              np.ones(len(card.classes), np.float32), batch)
    starts = np.cumsum([0] + [len(t.canvases) for t in tiles[:-1]])
    per_tile = np.add.reduceat(dens.numpy().sum(axis=(2, 3)), starts)  # (tiles, classes)
    return np.array([float(c.sum() if t.channels is None else c[t.channels].sum())
                     for t, c in zip(tiles, per_tile, strict=True)])


def trunk_features(model: torch.nn.Module, canvases: np.ndarray, batch: int = 8
                   ) -> list[torch.Tensor]:
    """The frozen trunk's features of each canvas, computed once (float16 to halve them)."""
    parts: list[list[torch.Tensor]] = []
    with torch.no_grad():
        for k in range(0, len(canvases), batch):
            x = torch.from_numpy(normalised(canvases[k:k + batch]))
            feats = model.trunk(x * model.in_scale + model.in_shift)
            parts.append([f.half() for f in feats])
    return [torch.cat([p[i] for p in parts]) for i in range(len(parts[0]))]


def fine_tune(model: torch.nn.Module, canvases: np.ndarray, dens_t: torch.Tensor,
              mask_t: torch.Tensor, settings: AdaptSettings) -> list[dict]:
    """Train ``model``'s decoder and heads (the trunk frozen) towards the teacher's maps;
    the mean loss terms per epoch."""
    if not (hasattr(model, "trunk") and hasattr(model, "decode")):
        raise ValueError(f"{type(model).__name__}: adaptation fine-tunes a counter with a "
                         "trunk and a decoder (decode); this one has not")
    torch.manual_seed(settings.seed)
    model.eval()  # batch norm statistics frozen, everywhere
    for p in model.parameters():
        p.requires_grad_(False)
    feats = trunk_features(model, canvases, settings.batch_size)
    params = [p for name, p in model.named_parameters() if not name.startswith("trunk.")]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    rng = np.random.default_rng(settings.seed)
    labelled = torch.zeros(settings.batch_size, dens_t.shape[1])
    history = []
    model.heads.train()  # the density ReLU's leaky gradient (no statistics in the heads)
    try:
        for epoch in range(settings.epochs):
            sums: dict[str, float] = {}
            order = rng.permutation(len(canvases))
            batches = [order[k:k + settings.batch_size]
                       for k in range(0, len(order), settings.batch_size)]
            for idx in batches:
                i = torch.from_numpy(idx)
                dens, mask = model.decode([f[i].float() for f in feats])
                terms = distil_terms((dens, mask), dens_t[i], labelled[:len(idx)])
                terms["mask_bce"] = torch.nn.functional.binary_cross_entropy_with_logits(
                    mask, torch.sigmoid(mask_t[i]))
                loss = terms["distil_mse"] + settings.w_count * terms["distil_count"] + \
                    settings.w_mask * terms["mask_bce"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                for k, v in {"loss": loss, **terms}.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
            history.append({"epoch": epoch + 1,
                            **{k: round(v / len(batches), 6) for k, v in sums.items()}})
    finally:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    return history


def export(model: torch.nn.Module, card, folder: Path, sample: np.ndarray) -> tuple[bytes, dict]:
    """The counter as ONNX the way ``targetfuse ship`` exports it (fp32, the card's input
    convention), and its largest differences from PyTorch on ``sample`` canvases."""
    raw = card.extra.get("input") == RAW_INPUT
    path = export_onnx(model, card.input_size, folder / "model.onnx", raw_input=raw)
    parity = onnx_parity(model, path, in_convention(sample, RAW_INPUT if raw else ""))
    if parity["count_abs"] > 1e-2:
        raise ValueError(f"the exported counter differs from PyTorch: {parity}")
    return path.read_bytes(), parity


# --- the check -----------------------------------------------------------------------------

def tile_counts(model_onnx: bytes, tiles: list[TileData], card, threads: int = 1
                ) -> np.ndarray:
    """Each tile's count by an ONNX counter (onnxruntime, fp32), over its scene's classes,
    with the card's count scale: the sum over the inputs the ground counted it as."""
    run = onnx_runner(model_onnx, threads)
    scale = count_scale(card)
    convention = card.extra.get("input", "")
    out = []
    for t in tiles:
        per_class = np.asarray(run(in_convention(t.canvases, convention)), np.float64
                               ).sum(axis=(0, 2, 3)) * scale
        out.append(float(per_class.sum() if t.channels is None else per_class[t.channels].sum()))
    return np.array(out)


def judge(before: np.ndarray, after: np.ndarray, ground: np.ndarray, min_gain: float
          ) -> tuple[bool, dict]:
    """Take the candidate when its mean absolute error against the ground's counts is lower
    than the counter in force's and at most ``1 - min_gain`` of it; the figures of both."""
    e0, e1 = np.abs(before - ground), np.abs(after - ground)
    check = {"held_back_tiles": len(ground), "mae_before": float(e0.mean()),
             "mae_after": float(e1.mean()),
             "bias_before": float((before - ground).mean()),
             "bias_after": float((after - ground).mean()),
             "closer_share": float((e1 < e0).mean()), "farther_share": float((e1 > e0).mean()),
             "ground_mean": float(ground.mean()), "min_gain": float(min_gain)}
    return bool(e1.mean() < e0.mean() and e1.mean() <= (1 - min_gain) * e0.mean()), check


# --- the whole ---------------------------------------------------------------------------

def adapt(tiles: list[TileData], *, group: str, version: int, student: torch.nn.Module,
          teacher, in_force_onnx: bytes, card, work_dir: Path,
          settings: AdaptSettings | None = None) -> Adaptation:
    """Steps 2-7 on a satellite's tiles (``tile_data``), from ``student`` (the counter in
    force as PyTorch; it is trained in place) against ``in_force_onnx`` (the same counter
    as it runs onboard); ``card``: the pair's onboard card."""
    settings = settings or AdaptSettings()
    settings.check()
    out = Adaptation(group, len(tiles), version)
    fit, check = split(tiles, settings.held_back)
    out.fit_tiles, out.held_back_tiles = len(fit), len(check)
    if len(fit) < settings.min_tiles or len(check) < settings.min_held_back:
        out.reason = (f"not enough evidence: {len(fit)} tiles to fit on and {len(check)} "
                      f"exploration tiles of held-back scenes to check on; at least "
                      f"{settings.min_tiles} and {settings.min_held_back} needed")
        return out
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        t0 = time.time()
        canvases = np.concatenate([t.canvases for t in fit])
        dens_t, mask_t = teacher_targets(teacher, canvases, count_scale(card),
                                         settings.batch_size)
        t1 = time.time()
        history = fine_tune(student, canvases, dens_t, mask_t, settings)
        t2 = time.time()
        work_dir.mkdir(parents=True, exist_ok=True)
        onnx, parity = export(student, card, work_dir, canvases[:4])
        ground = teacher_counts(teacher, check, card, settings.batch_size)
        before = tile_counts(in_force_onnx, check, card, settings.threads)
        after = tile_counts(onnx, check, card, settings.threads)
        t3 = time.time()
    finally:
        torch.set_num_threads(threads)
    out.training = {"inputs": len(canvases), "history": history, "onnx_parity": parity,
                    "seconds": {"teacher": round(t1 - t0, 1), "fine_tune": round(t2 - t1, 1),
                                "export_and_check": round(t3 - t2, 1)},
                    "settings": asdict(settings)}
    taken, out.checks["counter"] = judge(before, after, ground, settings.min_gain)
    if taken:
        out.onnx = onnx
        out.state_dict = {k: v.detach().clone() for k, v in student.state_dict().items()}
    else:
        out.reason = (f"the fine-tuned counter was not better enough on the held-back "
                      f"exploration tiles: MAE {out.checks['counter']['mae_after']:.4g} against "
                      f"{out.checks['counter']['mae_before']:.4g} in force (at least "
                      f"{settings.min_gain:.0%} lower needed)")
    return out


# --- the command ---------------------------------------------------------------------------

HELP = ("fine-tune a satellite's onboard counter on its downlinked tiles with the ground's "
        "counts as targets, check it on held-back scenes, and sign it into an uplink bundle")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt-onboard", help=HELP, description=HELP)
    p.add_argument("--satellite", required=True,
                   help="the satellite's link name (its scenes' sender)")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for adaptation.json and, when taken, model.onnx and "
                        "adapted.pt")
    d = AdaptSettings()
    for name, kind, what in (
            ("min_tiles", int, "tiles to fit on (of the scenes not held back)"),
            ("min_held_back", int, "exploration tiles of held-back scenes to check on"),
            ("held_back", float, "share of scenes held back"),
            ("min_gain", float, "relative cut of the held-back MAE needed to take the "
                                "counter"),
            ("min_support", float, "share of the held-back scenes' bootstrap resamples "
                                   "the replayed gain must hold in"),
            ("max_tiles", int, "the satellite's newest counted tiles read"),
            ("epochs", int, "passes over the tiles"), ("lr", float, "learning rate"),
            ("seed", int, "the seed of the tile order"), ("threads", int, "CPU threads")):
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=getattr(d, name),
                       help=f"{what} (default {getattr(d, name)})")
    p.add_argument("--init-from", type=Path, default=None,
                   help="the PyTorch weights of the counter in force when it is an adapted "
                        "one (the adapted.pt written beside its model.onnx)")
    p.add_argument("--build", action="store_true",
                   help="sign a counter that passed its check into a bundle for the satellite")
    p.add_argument("--model", default=None, help="the model pair (default: the ground's)")
    p.add_argument("--models-dir", type=Path, default=None)
    p.add_argument("--key", type=Path, default=None,
                   help="the Ed25519 signing key (default: the ground's)")
    p.add_argument("--dir", type=Path, default=None,
                   help="the uplink folder (default: the ground's)")
    p.set_defaults(func=run)


def counter_in_force(args, settings, sender: str, version: int, pair: ModelBundle
                     ) -> tuple[torch.nn.Module, bytes]:
    """The onboard counter in force for the satellite, as PyTorch (to fine-tune) and as the
    ONNX it runs (fp32): the pair's, or an adapted one a bundle in force brought (then
    ``--init-from`` its weights, checked against that bundle's canary counts)."""
    onnx = None
    canary = None
    if version > 0:
        from ground.uplink import BundleShelf
        from shared.uplink.bundle import open_bundle
        from shared.uplink.keys import SigningKey, load_public_key

        public = load_public_key(SigningKey(args.key or settings.uplink_key_path()).public)
        held = BundleShelf(args.dir or settings.uplink_folder(), public).get(version, sender)
        if held is None:
            raise ValueError(f"{sender}'s scenes were planned under bundle {version}, which "
                             "the uplink folder does not hold: the counter in force is "
                             "unknown")
        opened = open_bundle(held.path.read_bytes(), public)
        onnx = opened.files.get("onnx")
        canary = opened.manifest.canary
    if onnx is None:
        if args.init_from is not None:
            raise ValueError("--init-from is for a counter a bundle in force brought; the "
                             "satellite counts with the pair's")
        weights = pair.named_file("torch_weights")
        if weights is None:
            raise ValueError(f"the pair {pair.card.name} ships no PyTorch weights "
                             "(torch_weights) to fine-tune")
        onnx = (pair.fp32_weights or pair.weights).read_bytes()
        return load_network(pair.card, weights, build), onnx
    if args.init_from is None:
        raise ValueError(f"bundle {version} in force brought its own counter: give "
                         "--init-from its weights (adapted.pt beside its model.onnx)")
    student = load_network(pair.card, args.init_from, build)
    _check_init_from(student, pair, canary, args.out)
    return student, onnx


def _check_init_from(student, pair: ModelBundle, canary: dict, folder: Path) -> None:
    from shared.preprocess import input_convention
    from shared.uplink.parity import canary_batch, canary_counts, parity_failure

    folder.mkdir(parents=True, exist_ok=True)
    path = export_onnx(student, pair.card.input_size, folder / "init-from.onnx",
                       raw_input=pair.card.extra.get("input") == RAW_INPUT)
    got = canary_counts(onnx_runner(path.read_bytes()),
                        canary_batch(pair.canary, input_convention(pair.card.extra)))
    path.unlink()
    failure = parity_failure(canary["counts"], got)
    if failure is not None:
        raise ValueError(f"--init-from is not the counter in force: {failure}")


def run(args: argparse.Namespace) -> int:
    from ground.settings import GroundSettings
    from ground.store import open_store

    settings = GroundSettings()
    adapt_settings = AdaptSettings(**{k: getattr(args, k) for k in (
        "min_tiles", "min_held_back", "held_back", "min_gain", "min_support", "max_tiles",
        "epochs", "lr", "seed", "threads")})
    adapt_settings.check()
    model = args.model or settings.model
    models_dir = args.models_dir or settings.models_dir
    pair = ModelBundle.shipped(model, "onboard", models_dir)
    store = open_store(settings)
    try:
        version = in_force(store, args.satellite)
        tiles = tile_data(store, args.satellite, pair.card, adapt_settings.max_tiles)
        weights = stand_in(store, tiles)
    finally:
        store.close()
    args.out.mkdir(parents=True, exist_ok=True)
    fit, check = split(tiles, adapt_settings.held_back)
    if len(fit) < adapt_settings.min_tiles or len(check) < adapt_settings.min_held_back:
        student, teacher, onnx = None, None, b""  # no model loaded for nothing
    else:
        student, onnx = counter_in_force(args, settings, args.satellite, version, pair)
        teacher = GroundCounter.shipped(model, models_dir, precision="fp32",
                                        threads=adapt_settings.threads, device="cpu")
    result = adapt(tiles, group=args.satellite, version=version, student=student,
                   teacher=teacher, in_force_onnx=onnx, card=pair.card, work_dir=args.out,
                   settings=adapt_settings)
    if result.changed:
        _check_candidate(args, settings, result, tiles, weights, onnx, pair, version,
                         adapt_settings)
    report = {"satellite": result.report(), "files": {}}
    if result.changed:
        torch.save(result.state_dict, args.out / "adapted.pt")
        report["files"] = {"onnx": str(args.out / "model.onnx"),
                           "weights": str(args.out / "adapted.pt"),
                           **{role: str(args.out / f"{role}.json") for role in (
                               "confidence", "error_model")}}
        result.confidence.save(args.out / "confidence.json")
        result.error_model.save(args.out / "error_model.json")
    else:
        for name in ("model.onnx", "confidence.json", "error_model.json"):
            (args.out / name).unlink(missing_ok=True)
    if result.changed and args.build:
        report["bundle"] = _build(args, report, result)
    (args.out / "adaptation.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report["satellite"].items() if k != "training"},
                     indent=1))
    if not result.changed:
        print(f"no new counter: {result.reason}")
    elif "bundle" in report:
        print(f"uplink bundle {report['bundle']['version']}: {report['bundle']['bytes']} bytes")
    return 0


def _check_candidate(args, settings, result: Adaptation, tiles: list[TileData],
                     weights: np.ndarray, in_force_onnx: bytes, pair: ModelBundle,
                     version: int, adapt_settings: AdaptSettings) -> None:
    """``lab.closed_loop.candidate`` on the candidate: its calibration (from the pair's
    confidence, the error model in force) and the throttle replayed with it; the result
    keeps the counter and its calibration only when that check passes."""
    from ground.recalibrate import MIN_EACH
    from ground.recalibrate_cli import base_models

    confidence, error_model, _ = base_models(settings, args, args.satellite, version)
    held = calibrate_candidate(
        tiles, weights, card=pair.card, in_force_onnx=in_force_onnx,
        candidate_onnx=result.onnx, confidence_in_force=confidence, base=pair.confidence,
        error_model=error_model, group=args.satellite, version=version,
        min_tiles=adapt_settings.min_tiles,
        min_each=min(MIN_EACH, adapt_settings.min_tiles // 2),
        held_back=adapt_settings.held_back, min_gain=adapt_settings.min_gain,
        min_support=adapt_settings.min_support, threads=adapt_settings.threads)
    result.checks.update(held.checks)
    if not held.taken:
        result.reason, result.onnx, result.state_dict = held.reason, None, None
        return
    result.confidence, result.error_model = held.confidence, held.error_model


def _build(args, report: dict, result: Adaptation) -> dict:
    """The counter signed into a bundle for the satellite (``uplink build``'s code: its
    canary counts recorded, the report kept beside it as its evidence); the bundle's
    version, path and bytes."""
    from ground.uplink_cli import sign_bundle

    sat = report["satellite"]
    c = sat["checks"]["counter"]
    note = (f"onboard counter adapted on {sat['fit_tiles']} tiles under bundle "
            f"{sat['bundle_version']}: held-back MAE {c['mae_before']:.3g} -> "
            f"{c['mae_after']:.3g}")
    held = sign_bundle(argparse.Namespace(
        confidence=args.out / "confidence.json", error_model=args.out / "error_model.json",
        onnx=args.out / "model.onnx", thresholds=None,
        conf_p=None, conf_q=None, version=None, satellite=[args.satellite], note=note,
        model=args.model, models_dir=args.models_dir, for_model_sha256=None, key=args.key,
        dir=args.dir, evidence=report))
    return {"version": held.version, "path": str(held.path), "bytes": held.size,
            "onnx_bytes": len(result.onnx)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="targetfuse")
    add_parser(parser.add_subparsers(dest="command", required=True))
    import sys

    args = parser.parse_args(["adapt-onboard", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"adapt-onboard: error: {exc}", file=sys.stderr)
        return 2
