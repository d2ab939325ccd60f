"""Training a counter: losses, the loop with weight averaging, validation and checkpoints.

Loss per batch, over the (crop, class) pairs whose class the crop's labels cover (partial
labels: an airport image's unboxed cars teach nothing about cars):
``w_density`` x MSE of the (scaled) density maps
+ ``w_count`` x mean |predicted - true| tile count / sqrt(1 + true count)
+ ``w_mask`` x soft Jaccard loss of the mask head (1 - soft IoU over the batch, per class,
averaged over the classes some crop labels)
+ ``w_exclusive`` x the (scaled) density an unlabelled class puts on pixels a labelled class's
mask covers: a boxed boat is not a car, so masking the car loss must not let the car channel
count it (off by default).
+ ``w_local_count`` x the count term over blocks of ``local_block`` x ``local_block`` output
pixels (each block's |predicted - true| / sqrt(1 + true), summed over the crop's blocks;
off by default). Why: in a crowd the density MSE's gradient per missing object is tiny (an object is
a low Gaussian spread over many pixels) and the crop's count term mixes a crowd's undercount
with overcounts elsewhere in the crop; a count per block asks every neighbourhood for its
own objects, as the count losses of crowd counting do (a local version of the tile count).
AdamW with a warm-up then cosine learning rate; an exponential moving average of the weights
(EMA) is what gets validated and shipped (it smooths the checkpoint-to-checkpoint swings a
plain density counter shows). Every epoch: validation by counting whole validation scenes
tile by tile, a ``last.pt`` checkpoint (resumable) and ``best.pt`` when the validation
relative CMAE improves. Deterministic for a seed: the crop stream of epoch e is seeded with
(seed, e), so a resumed run sees the same samples.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ground.nets.layers import DENSITY_SCALE, OUTPUT_STRIDE, channels_last, nhwc
from lab.models.nets import build
from lab.training.data import Augment, CropStream, Scene
from shared.counting import scene_tiles
from shared.pipeline.codec import decode_tile, encode_tile
from shared.preprocess import prepare_tile


@dataclass
class TrainConfig:
    arch: str
    arch_config: dict = field(default_factory=dict)
    input_size: int = 256
    model_gsd: float = 1.0
    crop: int | None = None  # training crop size (None: input_size)
    class_scale: dict[str, float] | None = None  # input scale per class (class_scales)
    detail_gsd: float | None = None  # scenes' detail limited to this GSD (data.load_scene)
    epochs: int = 20
    samples_per_epoch: int = 1600
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    ema_decay: float = 0.998
    w_density: float = 1.0
    w_count: float = 0.1
    w_mask: float = 0.5
    w_exclusive: float = 0.0
    w_local_count: float = 0.0
    local_block: int = 8  # output pixels a side (x OUTPUT_STRIDE input pixels)
    seed: int = 0
    threads: int = 2
    wide_scale_p: float = 0.0  # share of known-GSD crops drawn at the wide scale range
    jpeg_p: float = 0.0  # share of crops JPEG round-tripped (``data.Augment``)
    val_jpeg: int | None = None  # validation tiles JPEG round-tripped at this quality
    val_every: int = 1  # validate every k epochs (and always after the last)
    val_from: float = 0.0  # first validation after this fraction of the epochs
    pretrained: bool = False  # the trunk starts from ImageNet weights (lab.pretrained)
    object_bias: float = 0.5  # share of crops centred near an object (the rest anywhere)
    init_from: str | None = None  # a checkpoint whose weights the network starts from
    teacher: str | None = None  # a training run folder whose best checkpoint is distilled
    w_distil: float = 0.0  # weight of the distillation loss (``distil_terms``)
    trunk_lr: float = 1.0  # the trunk's learning rate relative to ``lr`` (fine-tuning)


def soft_jaccard_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0,
                      weight: torch.Tensor | None = None) -> torch.Tensor:
    """1 - soft IoU of (B, C, h, w) maps per class over the batch, averaged over classes;
    ``weight`` (B, C) in {0, 1} leaves out unlabelled (crop, class) pairs."""
    p = torch.sigmoid(logits)
    w = torch.ones(target.shape[:2]) if weight is None else weight
    w = w[:, :, None, None]
    inter = (p * target * w).sum(dim=(0, 2, 3))
    union = (p * w).sum(dim=(0, 2, 3)) + (target * w).sum(dim=(0, 2, 3)) - inter
    present = w.sum(dim=(0, 2, 3)) > 0
    if not bool(present.any()):
        return logits.sum() * 0.0
    return (1.0 - (inter + eps) / (union + eps))[present].mean()


def loss_terms(model_out, dens_t: torch.Tensor, mask_t: torch.Tensor, cfg: TrainConfig,
               labelled: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    dens, mask_logits = model_out
    w = (torch.ones(dens.shape[:2]) if labelled is None else labelled.float())
    n = w.sum().clamp(min=1.0)
    sq = ((dens - dens_t) * DENSITY_SCALE).pow(2).mean(dim=(2, 3))
    mse = (sq * w).sum() / n
    count = count_term(dens, dens_t, w)
    jac = soft_jaccard_loss(mask_logits, mask_t, weight=w)
    total = cfg.w_density * mse + cfg.w_count * count + cfg.w_mask * jac
    terms = {"loss": total, "mse": mse, "count": count, "jaccard": jac}
    if cfg.w_local_count:
        terms["local_count"] = count_term(dens, dens_t, w, cfg.local_block)
        terms["loss"] = terms["loss"] + cfg.w_local_count * terms["local_count"]
    if cfg.w_exclusive:
        known = (mask_t * w[:, :, None, None]).amax(dim=1, keepdim=True) > 0.5
        spill = ((dens * DENSITY_SCALE).pow(2) * (1 - w)[:, :, None, None] * known).sum()
        terms["exclusive"] = spill / max(float(known.sum()), 1.0)
        terms["loss"] = terms["loss"] + cfg.w_exclusive * terms["exclusive"]
    return terms


def count_term(dens: torch.Tensor, dens_t: torch.Tensor, labelled: torch.Tensor,
               block: int | None = None) -> torch.Tensor:
    """Over the labelled (crop, class) pairs, the mean of |predicted - true count| /
    sqrt(1 + true count): of the whole crop (``block`` None), or summed over blocks of
    ``block`` x ``block`` output pixels (a partial block at the edge counts as a block).
    Summed, not averaged, over blocks: a crop's missing objects weigh as in the crop's
    count, wherever they are."""
    if block is None:
        pc, tc = dens.sum(dim=(2, 3), keepdim=True), dens_t.sum(dim=(2, 3), keepdim=True)
    else:
        pool = dict(kernel_size=block, stride=block, ceil_mode=True, divisor_override=1)
        pc, tc = F.avg_pool2d(dens, **pool), F.avg_pool2d(dens_t, **pool)  # block sums
    err = ((pc - tc).abs() / torch.sqrt(1.0 + tc)).sum(dim=(2, 3))
    w = labelled.float()
    return (err * w).sum() / w.sum().clamp(min=1.0)


def distil_terms(student_out, teacher_density: torch.Tensor, labelled: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
    """Distillation from the ground counter: MSE between the (scaled) density maps on the
    (crop, class) pairs the labels do not cover, where the teacher is the only supervision
    (an airport's unboxed cars, a harbour's aircraft), plus the tile count difference on
    all pairs at a quarter of the weight (where labels exist they stay the main target)."""
    dens = student_out[0]
    free = 1.0 - labelled.float()
    sq = ((dens - teacher_density) * DENSITY_SCALE).pow(2).mean(dim=(2, 3))
    mse = (sq * free).sum() / free.sum().clamp(min=1.0)
    pc, tc = dens.sum(dim=(2, 3)), teacher_density.sum(dim=(2, 3))
    weight = free + 0.25 * (1.0 - free)
    count = ((pc - tc).abs() / torch.sqrt(1.0 + tc) * weight).sum() / weight.sum()
    return {"distil_mse": mse, "distil_count": count}


def averaged_weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's averaged (EMA) weights in float32: a run's ``best.pt`` / ``last.pt``,
    a warm start saved by ``save_warm_start``, or a shipped state dict."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = state.get("ema", state)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def start_from(model: torch.nn.Module, checkpoint: str | Path) -> None:
    """``model`` with a checkpoint's averaged weights (``averaged_weights``)."""
    model.load_state_dict(averaged_weights(checkpoint))


def save_warm_start(run_dir: str | Path, path: str | Path) -> Path:
    """A run's best averaged weights in float16 with its record: small enough to keep with
    the project, so a later session (whose run folders are gone) can go on from them with
    ``train --init-from``."""
    run_dir = Path(run_dir)
    best = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=False)
    record = json.loads((run_dir / "run.json").read_text())
    torch.save({"ema": {k: v.half() if v.is_floating_point() else v
                        for k, v in best["ema"].items()},
                "epoch": best["epoch"], "val": best["val"], "config": record["config"],
                "sources": record.get("sources")}, path)
    return Path(path)


def shipped_card_for(weights: Path):
    """The card of the pair's role whose weights (``weights``, or the training checkpoint
    ``extra.torch_weights``) are this file (``shared.model_bundle.PairFiles``)."""
    from shared.model_bundle import ROLE_STEMS, PairFiles
    from shared.model_card import load_card

    files = PairFiles(weights.parent)
    for role in ROLE_STEMS:
        if files.card(role).exists():
            card = load_card(files.card(role))
            if weights.name in (card.weights, card.extra.get("torch_weights")):
                return card
    raise ValueError(f"{weights}: no run config inside and no model card beside it names it")


def load_teacher(source: str | Path) -> torch.nn.Module:
    """The averaged weights of a training run's best checkpoint (a run folder), of a warm
    start file (``save_warm_start``), or of a shipped pair's weights (``models/<name>/deep.pt``,
    whose card beside it names the architecture), frozen."""
    source = Path(source)
    if source.is_dir():
        config = json.loads((source / "run.json").read_text())["config"]
        checkpoint = source / "best.pt"
    else:
        saved = torch.load(source, map_location="cpu", weights_only=False)
        if "config" in saved:
            config = saved["config"]
        else:  # a shipped state dict: the card that names it holds the architecture
            card = shipped_card_for(source)
            config = {"arch": card.architecture, "arch_config": card.arch_config}
        checkpoint = source
    teacher = channels_last(build(config["arch"], config["arch_config"]))
    start_from(teacher, checkpoint)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def torch_runner(model: torch.nn.Module):
    def run(batch: np.ndarray):
        with torch.no_grad():
            d, m = model(nhwc(torch.from_numpy(batch)))
        return d.contiguous().numpy(), m.contiguous().numpy()
    return run


VAL_MIN_OBJECTS = 10  # a (source, class) enters the selection metric from this many objects


def validate(model: torch.nn.Module, scenes: list[Scene], input_size: int,
             class_names: list[str] | None = None,
             channel_scale: np.ndarray | None = None, jpeg: int | None = None) -> dict:
    """Whole-scene counting on validation scenes (already at the model's GSD), per source
    and class over the scenes that label the class. ``relative_cmae`` (what selects the
    checkpoint) is the mean over (source, class) groups holding >= VAL_MIN_OBJECTS objects
    of their relative CMAE; the other keys pool every labelled (scene, class).
    ``channel_scale``: each class counted from a pass at its input scale (as
    ``ground.class_scales`` does), the scenes' tiles keeping their footprint. ``jpeg``: each
    tile counted as it would come down, a JPEG at this quality."""
    model.eval()
    run = torch_runner(model)
    groups: dict[tuple[str, int], dict[str, list[float]]] = {}
    tile_err, inter, union = [], 0.0, 0.0
    n_classes = len(scenes[0].labelled) if scenes else 0
    scale_of = np.ones(n_classes) if channel_scale is None else np.asarray(channel_scale)
    for scale in np.unique(scale_of):
        at = scale_of == scale
        for sc in scenes:
            if not (sc.labelled & at).any():
                continue
            enlarge = sc.enlarge * float(scale)
            # A scene kept coarser than the counter's GSD (``Scene.enlarge``) is cut into
            # tiles of the input's footprint, each enlarged to the input, as the ground does.
            grid, tiles = scene_tiles(sc.pixels, round(input_size / enlarge))
            mask_step = max(1, round(OUTPUT_STRIDE / enlarge))
            dens_maps, logits = [], []
            if jpeg:
                tiles = [decode_tile(encode_tile(t, jpeg)) for t in tiles]
            batch = [prepare_tile(t, input_size, enlarge) for t in tiles]
            for k in range(0, len(batch), 8):
                d, m = run(np.stack(batch[k:k + 8]))
                dens_maps.append(d)
                logits.append(m)
            class_counts = np.concatenate(dens_maps).sum(axis=(2, 3))
            class_logits = np.concatenate(logits)
            totals = class_counts.sum(axis=0)
            for c in np.flatnonzero(sc.labelled & at):
                g = groups.setdefault((sc.source, int(c)), {"err": [], "truth": []})
                g["err"].append(abs(float(totals[c]) - float(sc.counts[c])))
                g["truth"].append(float(sc.counts[c]))
                dens, mask = sc.density_of(c), sc.mask_of(c)
                for i, tile in enumerate(grid):
                    true_tile = float(dens[tile.y0:tile.y1, tile.x0:tile.x1].sum())
                    tile_err.append(abs(class_counts[i, c] - true_tile))
                    tm = mask[tile.y0:tile.y1:mask_step, tile.x0:tile.x1:mask_step] > 0
                    pred = (class_logits[i, c] > 0)[: tm.shape[0], : tm.shape[1]]
                    inter += float((pred & tm).sum())
                    union += float((pred | tm).sum())
    names = class_names or [str(i) for i in range(max((c for _, c in groups), default=0) + 1)]
    per_group = {f"{src or 'val'}/{names[c]}": _group_figures(g)
                 for (src, c), g in sorted(groups.items())}
    errs = [e for g in groups.values() for e in g["err"]]
    chosen = [v["relative_cmae"] for v in per_group.values()
              if v["objects"] >= VAL_MIN_OBJECTS] or \
        [v["relative_cmae"] for v in per_group.values() if v["relative_cmae"] is not None] \
        or [float(np.mean(errs))]  # no object anywhere: the absolute error selects
    truths = [t for g in groups.values() for t in g["truth"]]
    return {"cmae": float(np.mean(errs)),
            "relative_cmae": float(np.mean(chosen)),
            "pooled_relative_cmae": float(np.mean(errs)) / max(float(np.mean(truths)), 1e-9),
            "tile_mae": float(np.mean(tile_err)), "jaccard": inter / max(union, 1.0),
            "groups": per_group}


def _group_figures(g: dict[str, list[float]]) -> dict:
    """One (source, class) group's validation figures: its relative CMAE; a group with no
    object (a class known to be absent there) has none, its false count per scene instead."""
    objects = int(sum(g["truth"]))
    if not objects:
        return {"relative_cmae": None, "false_per_scene": float(np.mean(g["err"])),
                "objects": 0}
    return {"relative_cmae": float(np.mean(g["err"])) / float(np.mean(g["truth"])),
            "objects": objects}


def train(cfg: TrainConfig, train_scenes: list[Scene], val_scenes: list[Scene], out_dir: Path,
          scene_weights: list[float] | None = None, resume: bool = True,
          class_names: list[str] | None = None) -> dict:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    # Subnormal activations or weights make CPU convolutions many times slower; flushing them
    # is process-wide state, so it is undone when training returns (see _train).
    torch.set_flush_denormal(True)
    try:
        return _train(cfg, train_scenes, val_scenes, out_dir, scene_weights, resume,
                      class_names)
    finally:
        torch.set_flush_denormal(False)


def _train(cfg: TrainConfig, train_scenes: list[Scene], val_scenes: list[Scene],
           out_dir: Path, scene_weights: list[float] | None, resume: bool,
           class_names: list[str] | None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build(cfg.arch, cfg.arch_config, pretrained=cfg.pretrained)
    if cfg.init_from:
        start_from(model, cfg.init_from)
    model = channels_last(model)  # before the EMA copy and the optimiser see its weights
    ema = copy.deepcopy(model).eval()
    teacher = load_teacher(cfg.teacher) if cfg.teacher and cfg.w_distil > 0 else None
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = cfg.samples_per_epoch // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))

    def lr_at(step: int) -> float:
        if step < warmup:
            return cfg.lr * (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))

    history, start, best = [], 0, math.inf
    last = out_dir / "last.pt"
    if resume and last.exists():
        state = torch.load(last, weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        start, history, best = state["epoch"], state["history"], state["best"]
    aug = Augment(crop=cfg.crop or cfg.input_size, wide_p=cfg.wide_scale_p,
                  object_bias=cfg.object_bias, jpeg_p=cfg.jpeg_p)
    channel_scale = None
    if cfg.class_scale:
        if not class_names or set(cfg.class_scale) - set(class_names):
            raise ValueError(f"class scales {cfg.class_scale} name classes not in "
                             f"{class_names}")
        channel_scale = np.array([float(cfg.class_scale.get(c, 1.0)) for c in class_names])
    for epoch in range(start, cfg.epochs):
        model.train()
        stream = CropStream(train_scenes, aug, OUTPUT_STRIDE, seed=cfg.seed * 10_007 + epoch,
                            scene_weights=scene_weights, channel_scale=channel_scale)
        loader = torch.utils.data.DataLoader(stream, batch_size=cfg.batch_size)
        sums: dict[str, float] = {}
        t0 = time.time()
        bar = tqdm(zip(range(steps_per_epoch), loader, strict=False), total=steps_per_epoch,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for step, (x, d, m, lab) in bar:
            x = nhwc(x)
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + step) * group["lr_scale"]
            out = model(x)
            terms = loss_terms(out, d, m, cfg, lab)
            if teacher is not None:
                with torch.no_grad():
                    teacher_density = teacher(x)[0]
                extra = distil_terms(out, teacher_density, lab)
                terms["loss"] = terms["loss"] + cfg.w_distil * (
                    extra["distil_mse"] + cfg.w_count * extra["distil_count"])
                terms.update(extra)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            with torch.no_grad():
                decay = min(cfg.ema_decay, (1 + epoch * steps_per_epoch + step) /
                            (10 + epoch * steps_per_epoch + step))
                for pe, pm in zip(ema.state_dict().values(), model.state_dict().values(),
                                  strict=True):
                    if pe.dtype.is_floating_point:
                        pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
                    else:
                        pe.copy_(pm)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.3f}")
        record = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1),
                  **{k: round(v / steps_per_epoch, 5) for k, v in sums.items()}}
        metrics = None
        if _validates(cfg, epoch):
            metrics = validate(ema, val_scenes, cfg.input_size, class_names, channel_scale,
                               cfg.val_jpeg)
            record.update({f"val_{k}": (round(v, 5) if isinstance(v, float) else v)
                           for k, v in metrics.items()})
        history.append(record)
        tqdm.write(json.dumps(record))
        if metrics is not None and metrics["relative_cmae"] < best:
            best = metrics["relative_cmae"]
            torch.save({"ema": ema.state_dict(), "epoch": epoch + 1, "val": metrics},
                       out_dir / "best.pt")
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(),
                    "opt": opt.state_dict(), "epoch": epoch + 1, "history": history,
                    "best": best, "config": asdict(cfg)}, last)
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    if not (out_dir / "best.pt").exists():  # e.g. a run resumed past its last validation
        raise RuntimeError(f"{out_dir}: no validated checkpoint")
    return {"history": history, "best_val_relative_cmae": best, "out_dir": str(out_dir)}


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """A pretrained trunk learns at ``trunk_lr`` x the rate of the layers trained anew."""
    trunk = getattr(model, "trunk", None)
    trunk_ids = {id(p) for p in trunk.parameters()} if trunk is not None else set()
    rest = [p for p in model.parameters() if id(p) not in trunk_ids]
    groups = [{"params": rest, "lr_scale": 1.0}]
    if trunk_ids:
        groups.append({"params": list(trunk.parameters()), "lr_scale": cfg.trunk_lr})
    return groups


def _validates(cfg: TrainConfig, epoch: int) -> bool:
    last = epoch + 1 == cfg.epochs
    due = (epoch + 1) >= cfg.val_from * cfg.epochs and (cfg.epochs - epoch - 1) % cfg.val_every == 0
    return last or due
