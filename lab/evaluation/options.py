"""The options ``eval``, ``calibrate`` and ``experiment`` share: which dataset, which images of it
(a split's part), which classes, and the pipeline's settings for a run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shared.model_bundle import MODELS_DIR


def add_data_options(p: argparse.ArgumentParser) -> None:
    """The dataset and shipped pair that eval, calibrate and experiment all score."""
    p.add_argument("--data", required=True)
    p.add_argument("--format", required=True, dest="fmt")
    p.add_argument("--model", required=True, help="shipped pair by what it counts: aircraft")
    p.add_argument("--classes", required=True,
                   help="the dataset's annotation classes that count as truth, comma-separated")
    p.add_argument("--gsd", type=float, default=None, help="scene GSD when the data omit it")
    p.add_argument("--dedupe-iou", type=float, default=0.3,
                   help="merge truth labels whose boxes overlap above this IoU (0: off)")
    p.add_argument("--models-dir", default=str(MODELS_DIR))


def parse_classes(text: str) -> set[str]:
    return {c.strip() for c in text.split(",") if c.strip()}


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    from shared.pipeline.throttling import POLICIES

    g = p.add_argument_group("collaborative pipeline (scene-relative budgets)")
    g.add_argument("--budget-fraction", type=float, default=0.10,
                   help="downlink bytes as a fraction of the scene's raw encoded tile bytes")
    g.add_argument("--energy-fraction", type=float, default=1.0,
                   help="onboard energy as a fraction of what counting every tile costs")
    g.add_argument("--policy", default=None, choices=sorted(POLICIES),
                   help="throttling policy (default: value, the best measured)")
    g.add_argument("--conf-p", type=float, default=None, help="discard below (paper policies)")
    g.add_argument("--conf-q", type=float, default=None, help="accept above (paper policies)")
    g.add_argument("--no-dedup", action="store_true", help="turn deduplication off")
    g.add_argument("--no-adaptive-tiling", action="store_true",
                   help="use the counter's natural tile size, not the calibrated one")
    g.add_argument("--discarded", default=None, choices=["onboard", "zero"],
                   help="what a discarded tile adds to the total")
    g.add_argument("--uncounted", default=None, choices=["zero", "context"],
                   help="what a tile left uncounted (energy spent) adds to the total")
    g.add_argument("--error-model", default=None,
                   help="the error model file to use (default models/NAME/error_model.json)")
    g.add_argument("--no-pipeline", action="store_true",
                   help="score the two counters only (no pipeline, no baselines)")


def pipeline_run(args: argparse.Namespace, name: str, models_dir: Path, gsd: float | None):
    """The evaluate.PipelineRun the options describe, with the model's calibration files."""
    from dataclasses import replace

    from lab.evaluation.evaluate import PipelineRun
    from lab.simulator import check_fraction
    from shared.model_bundle import PairFiles, load_tiling
    from shared.pipeline.config import PipelineConfig
    from shared.pipeline.error_model import ErrorModel

    check_fraction("--budget-fraction", args.budget_fraction)
    check_fraction("--energy-fraction", args.energy_fraction)
    err_file = Path(args.error_model) if getattr(args, "error_model", None) else \
        PairFiles.of(name, models_dir).error_model
    error_model = ErrorModel.load(err_file) if err_file.exists() else None
    table = load_tiling(PairFiles.of(name, models_dir))
    policy = args.policy or ("value" if error_model else "dynamic-conf")
    if policy == "value" and error_model is None:
        raise ValueError(f"the value policy needs {err_file} (run targetfuse calibrate)")
    cfg = PipelineConfig(policy=policy, dedup=not args.no_dedup,
                         adaptive_tiling=not args.no_adaptive_tiling)
    changes = {k: getattr(args, k) for k in ("conf_p", "conf_q", "discarded", "uncounted")
               if getattr(args, k) is not None}
    cfg = replace(cfg, **changes)
    return PipelineRun(cfg, args.budget_fraction, args.energy_fraction,
                       tiling=table.lookup(gsd) if table else None, error_model=error_model)


def counter_classes(counter, truth_names: set[str]) -> list[str] | None:
    """The classes a multi-class counter is asked for: those the truth names map to (the
    class map); None for a single-class counter (it counts its one class)."""
    if len(counter.classes) < 2:
        return None
    from lab.data.classes import load_class_map

    class_map = load_class_map()
    wanted = {class_map.canonical(n) if n in class_map.names or n in class_map.ignored
              else n for n in truth_names}
    return [c for c in counter.classes if c in wanted] or None


def select_images(images, spec: str | None):
    if not spec:
        return images
    file, sep, part = spec.rpartition(":")
    if not sep:
        raise ValueError(f"--images wants FILE:PART, got {spec!r}")
    parts = json.loads(Path(file).read_text())
    if part not in parts:
        raise ValueError(f"{file} has no part {part!r}; it has {sorted(parts)}")
    wanted = set(parts[part])
    chosen = [img for img in images if img.image_id in wanted]
    if len(chosen) != len(wanted):
        raise ValueError(f"{len(wanted) - len(chosen)} images of {spec} are not in the dataset")
    return chosen
