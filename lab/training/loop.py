"""Training a counter: losses, the loop with weight averaging, validation and checkpoints.

Loss per batch = ``w_density`` x MSE of the (scaled) density maps
+ ``w_count`` x mean |predicted - true| tile count / sqrt(1 + true count)
+ ``w_mask`` x soft Jaccard loss of the mask head (1 - soft IoU over the batch).
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
from tqdm import tqdm

from ground.nets.layers import DENSITY_SCALE, OUTPUT_STRIDE
from lab.nets import build
from lab.training.data import Augment, CropStream, Scene
from shared.counting import count_scene


@dataclass
class TrainConfig:
    arch: str
    arch_config: dict = field(default_factory=dict)
    input_size: int = 256
    model_gsd: float = 1.0
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
    seed: int = 0
    threads: int = 2


def soft_jaccard_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0
                      ) -> torch.Tensor:
    p = torch.sigmoid(logits)
    inter = (p * target).sum()
    union = p.sum() + target.sum() - inter
    return 1.0 - (inter + eps) / (union + eps)


def loss_terms(model_out, dens_t: torch.Tensor, mask_t: torch.Tensor, cfg: TrainConfig
               ) -> dict[str, torch.Tensor]:
    dens, mask_logits = model_out
    mse = ((dens - dens_t) * DENSITY_SCALE).pow(2).mean()
    pc, tc = dens.sum(dim=(1, 2, 3)), dens_t.sum(dim=(1, 2, 3))
    count = ((pc - tc).abs() / torch.sqrt(1.0 + tc)).mean()
    jac = soft_jaccard_loss(mask_logits, mask_t)
    total = cfg.w_density * mse + cfg.w_count * count + cfg.w_mask * jac
    return {"loss": total, "mse": mse, "count": count, "jaccard": jac}


def torch_runner(model: torch.nn.Module):
    def run(batch: np.ndarray):
        with torch.no_grad():
            d, m = model(torch.from_numpy(batch))
        return d.numpy(), m.numpy()
    return run


def validate(model: torch.nn.Module, scenes: list[Scene], input_size: int) -> dict[str, float]:
    """Whole-scene counting on validation scenes (already at the model's GSD)."""
    model.eval()
    run = torch_runner(model)
    errors, truths, tile_err, inter, union = [], [], [], 0.0, 0.0
    for sc in scenes:
        out = count_scene(run, sc.pixels, input_size, input_size, 1.0)
        errors.append(abs(out.total - sc.count))
        truths.append(sc.count)
        for i, tile in enumerate(out.grid):
            true_tile = float(sc.density[tile.y0:tile.y1, tile.x0:tile.x1].sum())
            tile_err.append(abs(out.counts[i] - true_tile))
            pred = out.mask_logits[i] > 0
            tm = sc.mask[tile.y0:tile.y1:OUTPUT_STRIDE, tile.x0:tile.x1:OUTPUT_STRIDE] > 0
            pred = pred[: tm.shape[0], : tm.shape[1]]
            inter += float((pred & tm).sum())
            union += float((pred | tm).sum())
    cmae = float(np.mean(errors))
    return {"cmae": cmae, "relative_cmae": cmae / max(float(np.mean(truths)), 1e-9),
            "tile_mae": float(np.mean(tile_err)), "jaccard": inter / max(union, 1.0)}


def train(cfg: TrainConfig, train_scenes: list[Scene], val_scenes: list[Scene], out_dir: Path,
          scene_weights: list[float] | None = None, resume: bool = True) -> dict:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build(cfg.arch, cfg.arch_config)
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
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
    aug = Augment(crop=cfg.input_size)
    for epoch in range(start, cfg.epochs):
        model.train()
        stream = CropStream(train_scenes, aug, OUTPUT_STRIDE, seed=cfg.seed * 10_007 + epoch,
                            scene_weights=scene_weights)
        loader = torch.utils.data.DataLoader(stream, batch_size=cfg.batch_size)
        sums: dict[str, float] = {}
        t0 = time.time()
        bar = tqdm(zip(range(steps_per_epoch), loader, strict=False), total=steps_per_epoch,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for step, (x, d, m) in bar:
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + step)
            terms = loss_terms(model(x), d, m, cfg)
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
        metrics = validate(ema, val_scenes, cfg.input_size)
        record = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1),
                  **{k: round(v / steps_per_epoch, 5) for k, v in sums.items()},
                  **{f"val_{k}": round(v, 5) for k, v in metrics.items()}}
        history.append(record)
        tqdm.write(json.dumps(record))
        if metrics["relative_cmae"] < best:
            best = metrics["relative_cmae"]
            torch.save({"ema": ema.state_dict(), "epoch": epoch + 1, "val": metrics},
                       out_dir / "best.pt")
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(),
                    "opt": opt.state_dict(), "epoch": epoch + 1, "history": history,
                    "best": best, "config": asdict(cfg)}, last)
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    return {"history": history, "best_val_relative_cmae": best, "out_dir": str(out_dir)}
