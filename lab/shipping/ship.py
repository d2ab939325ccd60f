"""``targetfuse ship``: turn a training run's best checkpoint into shipped model files.

Deep (ground): the averaged weights as a float16 state dict, ``models/NAME/deep.pt``.
Shallow (onboard): exported to ONNX (TorchScript exporter, ``dynamo=False``, dynamic batch)
taking normalised float32 tiles or, with ``--raw-input``, raw uint8 RGB tiles (N, S, S, 3)
normalised inside the graph (the card's ``extra.input`` says which:
``shared.preprocess``), checked against PyTorch, statically quantised to int8
(``quantize.py``; the default where it counts the canary tiles as fp32 does, else fp32: the
card's ``deployed_variant``),
then its confidence model is fit on the int8 model's outputs (logistic regression on
the training split's tiles, isotonic calibration on the validation split) and saved beside it.
The shallow PyTorch weights ship too (``shallow.pt``, for parity checks and fine-tuning; the
onboard service never loads them). Each model gets a card with its sha256, FLOPs per tile and
the run's record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from lab.models.nets import ARCHITECTURES, build, count_flops
from lab.shipping.quantize import quantize_int8
from shared.model_bundle import MODELS_DIR, PairFiles, card_path
from shared.model_card import ModelCard, load_card, sha256_of, write_card
from shared.preprocess import NORMALISED_INPUT, RAW_INPUT, input_convention

ONNX_OPSET = 17
PARITY_TOLERANCE = {"count_abs": 1e-3, "map_abs": 1e-4}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ship", help="export a training run's best checkpoint under models/")
    p.add_argument("--run", required=True, help="training run folder (has run.json, best.pt)")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--raw-input", action="store_true",
                   help="export the onboard counter taking uint8 RGB and normalising in its "
                        "graph (card extra.input); measured slower than the numpy look-up "
                        "normalisation on an AVX-512 VNNI CPU (docs/PERFORMANCE.md)")
    p.set_defaults(func=run)


class _WithEmbedding(torch.nn.Module):
    """Exports the onboard counter's pooled features as a third output."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model.embed(x)


class _RawInput(torch.nn.Module):
    """Takes uint8 RGB tiles (N, S, S, 3), the counter's input canvas as numpy holds it, and
    normalises them before the wrapped network exactly as ``shared.preprocess.normalise``
    does (the same float32 operations in the same order: divide by 255, subtract the mean,
    divide by the spread), inside the ONNX graph."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        from shared.preprocess import MEAN, STD

        self.model = model
        self.register_buffer("mean", torch.from_numpy(MEAN.copy()).view(1, 3, 1, 1))
        self.register_buffer("std", torch.from_numpy(STD.copy()).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor):
        x = x.permute(0, 3, 1, 2).to(torch.float32)
        return self.model((x / 255.0 - self.mean) / self.std)


def export_onnx(model: torch.nn.Module, input_size: int, path: Path,
                raw_input: bool = False) -> Path:
    """The counter as ONNX. ``raw_input``: taking uint8 RGB (N, S, S, 3) and normalising in
    the graph (``shared.preprocess.RAW_INPUT``; its card must say so in ``extra.input``),
    else normalised float32 (N, 3, S, S) as cards before it."""
    model.eval()
    names = ["density", "mask_logits"]
    if hasattr(model, "embed"):
        model, names = _WithEmbedding(model).eval(), [*names, "embedding"]
    if raw_input:
        model = _RawInput(model).eval()
        dummy = torch.zeros(1, input_size, input_size, 3, dtype=torch.uint8)
    else:
        dummy = torch.zeros(1, 3, input_size, input_size)
    torch.onnx.export(model, (dummy,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                      input_names=["tile"], output_names=names,
                      dynamic_axes={"tile": {0: "batch"}, **{n: {0: "batch"} for n in names}})
    return path


def raw_input_onnx(src: Path, dst: Path) -> Path:
    """An exported counter that takes normalised float32 (N, 3, S, S) (any card shipped
    before ``RAW_INPUT``; fp32 or int8 QDQ) rewritten to take uint8 RGB (N, S, S, 3): Cast,
    Transpose and ``normalise``'s three float32 operations put in front of the graph, so
    it computes from the same bytes exactly what it computed from numpy's normalised copy."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from shared.preprocess import MEAN, STD

    model = onnx.load(str(src))
    graph = model.graph
    old = graph.input[0]
    dims = old.type.tensor_type.shape.dim
    if old.type.tensor_type.elem_type != TensorProto.FLOAT or len(dims) != 4 or \
            dims[1].dim_value != 3:
        raise ValueError(f"{src}: input {old.name} is not normalised float32 (N, 3, S, S)")
    inner = f"{old.name}_normalised"
    for node in graph.node:
        node.input[:] = [inner if n == old.name else n for n in node.input]
    batch = dims[0].dim_param or dims[0].dim_value
    new = helper.make_tensor_value_info(old.name, TensorProto.UINT8,
                                        [batch, dims[2].dim_value, dims[3].dim_value, 3])
    consts = [numpy_helper.from_array(np.array(255.0, np.float32), f"{old.name}_255"),
              numpy_helper.from_array(MEAN.reshape(1, 3, 1, 1), f"{old.name}_mean"),
              numpy_helper.from_array(STD.reshape(1, 3, 1, 1), f"{old.name}_std")]
    n = old.name
    # Transposed while still uint8 (a quarter of the bytes to move), then made float32.
    nodes = [helper.make_node("Transpose", [n], [f"{n}_chw8"], perm=[0, 3, 1, 2]),
             helper.make_node("Cast", [f"{n}_chw8"], [f"{n}_chw"], to=TensorProto.FLOAT),
             helper.make_node("Div", [f"{n}_chw", f"{n}_255"], [f"{n}_unit"]),
             helper.make_node("Sub", [f"{n}_unit", f"{n}_mean"], [f"{n}_centred"]),
             helper.make_node("Div", [f"{n}_centred", f"{n}_std"], [inner])]
    graph.input.remove(old)
    graph.input.insert(0, new)
    graph.initializer.extend(consts)
    for node in reversed(nodes):
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def raw_input_pair(card_file: Path, out_dir: Path) -> Path:
    """A copy of a shipped onboard pair in ``out_dir`` whose ONNX files take raw uint8 RGB
    (``raw_input_onnx``; its card says ``extra.input``), its other files copied: the pair
    shipped before the export normalised in the graph, converted without retraining."""
    import shutil

    card = load_card(card_file)
    if card.extra.get("input") == RAW_INPUT:
        raise ValueError(f"{card_file}: already takes raw input")
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in card_file.parent.iterdir():
        if f.is_file() and f.suffix != ".onnx":
            shutil.copy2(f, out_dir / f.name)
    raw_input_onnx(card_file.parent / card.weights, out_dir / card.weights)
    if card.extra.get("fp32_onnx"):
        fp32 = raw_input_onnx(card_file.parent / card.extra["fp32_onnx"],
                              out_dir / card.extra["fp32_onnx"])
        card.extra["fp32_onnx_sha256"] = sha256_of(fp32)
    card.extra["input"] = RAW_INPUT
    return write_card(card, out_dir / card_file.name)


def onnx_parity(model: torch.nn.Module, onnx_path: Path, batch: np.ndarray) -> dict:
    """Largest differences between onnxruntime and PyTorch on the same inputs: ``batch``
    normalised float32 (N, 3, S, S), or uint8 RGB (N, S, S, 3) for a raw-input export
    (normalised by ``shared.preprocess.normalise`` for PyTorch)."""
    import onnxruntime as ort

    from onboard.counter import session_options
    from shared.preprocess import normalise

    sess = ort.InferenceSession(str(onnx_path), session_options(1),
                                providers=["CPUExecutionProvider"])
    d_ort, m_ort = sess.run(None, {"tile": batch})[:2]
    ref = np.stack([normalise(t) for t in batch]) if batch.dtype == np.uint8 else batch
    with torch.no_grad():
        d_pt, m_pt = (t.numpy() for t in model(torch.from_numpy(ref))[:2])
    return {"map_abs": float(np.abs(d_ort - d_pt).max()),
            "count_abs": float(np.abs(d_ort.sum((1, 2, 3)) - d_pt.sum((1, 2, 3))).max()),
            "mask_abs": float(np.abs(m_ort - m_pt).max())}


def _load_run(run_dir: Path) -> tuple[dict, torch.nn.Module, dict]:
    record = json.loads((run_dir / "run.json").read_text())
    best = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=False)
    cfg = record["config"]
    model = build(cfg["arch"], cfg["arch_config"])
    model.load_state_dict(best["ema"])
    return record, model.eval(), best


def _card(record: dict, model: torch.nn.Module, role: str, weights: str, best: dict
          ) -> ModelCard:
    if record.get("sources"):
        return _sources_card(record, model, role, weights, best)
    cfg = record["config"]
    return ModelCard(
        name=record["name"], role=role, architecture=cfg["arch"], arch_config=cfg["arch_config"],
        weights=weights, sha256="", input_size=cfg["input_size"], model_gsd_m=cfg["model_gsd"],
        classes=[record["name"]], truth_classes=record["classes"],
        flops_per_tile=count_flops(model, cfg["input_size"]),
        data={"dataset": Path(record["data"]).name, "format": record["format"],
              "scene_gsd_m": record["scene_gsd"], "split_file": record["split_file"],
              "train_images": len(record["split"]["train"]),
              "val_images": len(record["split"]["val"]), "synthetic_scenes": record["synthetic"],
              "dedupe_iou": record.get("dedupe_iou", 0.0),
              "training": {k: cfg[k] for k in ("epochs", "samples_per_epoch", "batch_size",
                                                "lr", "seed")}},
        metrics={"val_best_epoch": best["epoch"],
                 "val": _rounded(best["val"])},
        extra={"parameters": sum(p.numel() for p in model.parameters())})


def _rounded(metrics: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}


def _sources_card(record: dict, model: torch.nn.Module, role: str, weights: str, best: dict
                  ) -> ModelCard:
    """The card of a multi-class counter trained on several sources (``train --sources``)."""
    from lab.data.classes import load_class_map

    cfg = record["config"]
    class_map = load_class_map()
    return ModelCard(
        name=record["name"], role=role, architecture=cfg["arch"], arch_config=cfg["arch_config"],
        weights=weights, sha256="", input_size=cfg["input_size"], model_gsd_m=cfg["model_gsd"],
        detail_gsd_m=cfg.get("detail_gsd"), classes=list(record["classes"]),
        truth_classes=sorted(n for n, c in class_map.names.items() if c in record["classes"]),
        flops_per_tile=flops_per_tile(model, cfg["input_size"], record["classes"],
                                       cfg.get("class_scale")),
        data={"sources": record["sources"], "left_out": record.get("left_out"),
              "class_map": record["class_map"], "split_files": record["split_files"],
              "train_images": {s: len(v) for s, v in record["split"]["train"].items()},
              "val_images": {s: len(v) for s, v in record["split"]["val"].items()},
              "synthetic_scenes": record.get("synthetic", 0),
              "dedupe_iou": record.get("dedupe_iou", 0.0),
              "training": {k: cfg[k] for k in ("epochs", "samples_per_epoch", "batch_size",
                                                "lr", "seed", "wide_scale_p")},
              # the validation figures' tiles: JPEG at this quality, or clean (None)
              "val_jpeg": cfg.get("val_jpeg"),
              # A blend of a start and its continuations (``targetfuse soup``)
              **({"soup": {k: v for k, v in record["soup"].items()
                           if k in ("start", "start_sha256", "ends", "alpha")}}
                 if record.get("soup") else {})},
        metrics={"val_best_epoch": best["epoch"],
                 "val": _rounded(best["val"])},
        extra={"parameters": sum(p.numel() for p in model.parameters()),
               **({"class_input_scale": cfg["class_scale"]} if cfg.get("class_scale")
                  else {})})


def flops_per_tile(model: torch.nn.Module, input_size: int, classes: list[str],
                    class_scale: dict[str, float] | None) -> int:
    """One pass per input scale in use (``ground.class_scales``)."""
    from ground.class_scales import by_scale

    return int(sum(count_flops(model, round(input_size * s))
                   for s in by_scale(list(classes), class_scale)))


def run(args: argparse.Namespace) -> int:
    run_dir, models_dir = Path(args.run), Path(args.models_dir)
    record, model, best = _load_run(run_dir)
    role = ARCHITECTURES[record["config"]["arch"]].role
    out_dir = PairFiles.of(record["name"], models_dir).folder
    out_dir.mkdir(parents=True, exist_ok=True)
    if role == "ground":
        torch.save({k: v.half() if v.is_floating_point() else v
                    for k, v in model.state_dict().items()}, out_dir / "deep.pt")
        card = _card(record, model, role, "deep.pt", best)
        card.extra["weights_dtype"] = "float16"
        path = write_card(card, card_path(record["name"], role, models_dir))
        print(f"shipped {out_dir / 'deep.pt'} ({(out_dir / 'deep.pt').stat().st_size} bytes), "
              f"card {path}")
        return 0
    raw = bool(getattr(args, "raw_input", False))
    onnx_path = export_onnx(model, record["config"]["input_size"], out_dir / "shallow.onnx",
                            raw_input=raw)
    # The PyTorch weights travel too: for parity checks and fine-tuning, never onboard.
    torch.save(model.state_dict(), out_dir / "shallow.pt")
    calibration = _calibration_tiles(record, record["config"]["input_size"],
                                     convention=RAW_INPUT if raw else NORMALISED_INPUT)
    int8_path = quantize_int8(onnx_path, out_dir / "shallow.int8.onnx", calibration)
    canary = save_canary(calibration, out_dir / "canary.npz")
    # The deployed onboard model is the int8 one where it keeps fp32's counts on the canary
    # tiles (``deployed_variant``; ~1.7x faster on one thread for the earlier counters,
    # benchmarks/counters.py), else fp32; the other export stays for parity checks.
    card = _card(record, model, role, int8_path.name, best)
    card.extra.update({"onnx_opset": ONNX_OPSET, "quantization": "int8 static QDQ, per channel",
                       "fp32_onnx": onnx_path.name, "fp32_onnx_sha256": sha256_of(onnx_path),
                       "input": RAW_INPUT if raw else NORMALISED_INPUT,
                       "torch_weights": "shallow.pt",
                       "torch_weights_sha256": sha256_of(out_dir / "shallow.pt"),
                       "canary_tiles": canary.name, "canary_tiles_sha256": sha256_of(canary)})
    path = write_card(card, card_path(record["name"], role, models_dir))
    card.extra["deployed_variant"] = deployed_variant(path)
    write_card(card, path)
    _fit_and_attach_confidence(record, card, path, model)
    print(f"shipped {int8_path} ({int8_path.stat().st_size} bytes; fp32 {onnx_path.name} "
          f"{onnx_path.stat().st_size} bytes), card {path}")
    return 0


def deployed_variant(card_file: Path) -> str:
    """"int8-exact" when the int8 model counts the canary tiles as fp32 does (within the
    start-up choice's tolerances, ``onboard.kernel_choice``), else "fp32": what the counter
    runs by default and what evaluation scores (a service may still choose by measurement)."""
    from onboard.counter import OnboardCounter

    choice = OnboardCounter(card_file, variant="auto").kernel_choice
    return "int8-exact" if choice and "int8-exact" in choice.qualified else "fp32"


def save_canary(calibration: np.ndarray, path: Path, count: int = 8) -> Path:
    """A few real tiles (uint8 RGB) spread over the calibration set (which takes an equal
    share from each source; uint8 RGB, or normalised float32 as older exports took),
    shipped with the onboard model: the start-up kernel choice (``onboard.kernel_choice``)
    compares int8 and fp32 counts on them."""
    from shared.preprocess import MEAN, STD

    picks = calibration[np.linspace(0, len(calibration) - 1, count).round().astype(int)]
    if picks.dtype == np.uint8:
        np.savez_compressed(path, tiles=np.ascontiguousarray(picks))
        return path
    rgb = (picks.transpose(0, 2, 3, 1) * STD + MEAN) * 255.0
    np.savez_compressed(path, tiles=np.clip(rgb.round(), 0, 255).astype(np.uint8))
    return path


def _calibration_tiles(record: dict, input_size: int, count: int = 128,
                       convention: str = RAW_INPUT) -> np.ndarray:
    """Counter inputs from the training split, for int8 activation ranges, in the export's
    input ``convention``."""
    from lab.data.formats import read_dataset
    from shared.counting import scene_inputs
    from shared.preprocess import tile_px

    if record.get("sources"):
        return _source_calibration_tiles(record, input_size, count, convention)
    ds = read_dataset(record["data"], record["format"], gsd_m=record["scene_gsd"])
    by_id = {img.image_id: img for img in ds.images}
    tiles: list[np.ndarray] = []
    for image_id in record["split"]["train"]:
        img = by_id[image_id]
        size = tile_px(input_size, record["config"]["model_gsd"], img.meta.gsd_m)
        tiles += scene_inputs(img.load_pixels(), size, input_size, input_size / size,
                              convention)
        if len(tiles) >= count:
            break
    return np.stack(tiles[:count])


def _source_calibration_tiles(record: dict, input_size: int, count: int,
                              convention: str = RAW_INPUT) -> np.ndarray:
    """An equal share of the calibration tiles from each source's training images."""
    from lab.data.realdev import load_real
    from shared.counting import scene_inputs
    from shared.preprocess import tile_px

    per_source = -(-count // len(record["sources"]))
    tiles: list[np.ndarray] = []
    for source in record["sources"]:
        ids = record["split"]["train"][source]
        by_id = {img.image_id: img for img in load_real(source, record.get("real_dev")).images}
        got: list[np.ndarray] = []
        for image_id in ids:
            img = by_id[image_id]
            size = tile_px(input_size, record["config"]["model_gsd"], img.meta.gsd_m)
            got += scene_inputs(img.load_pixels(), size, input_size, input_size / size,
                                convention)
            if len(got) >= per_source:
                break
        tiles += got[:per_source]
    return np.stack(tiles[:count])


def refit_confidence(card_file: Path, splits_dir: Path | None = None,
                     real_dev: str | Path | None = None) -> None:
    """Refit a shipped multi-source onboard counter's confidence on its own training and
    validation splits (as ``ship`` does), e.g. after its count scale changed the counts."""
    from ground.counter import load_network
    from lab.data.label_cleaning import DEFAULT_IOU
    from lab.training.sources import SPLITS_DIR, split_ids

    card = load_card(card_file)
    sources = card.data.get("sources")
    if not sources:
        raise ValueError(f"{card_file}: not a multi-source pair; ship its run again instead")
    splits = {src: split_ids(src, splits_dir or SPLITS_DIR) for src in sources}
    record = {"sources": sources, "real_dev": real_dev,
              "dedupe_iou": card.data.get("dedupe_iou", DEFAULT_IOU),
              "split": {part: {src: splits[src].get(part, []) for src in sources}
                        for part in ("train", "val")}}
    model = load_network(card, card_file.parent / card.extra["torch_weights"], build)
    _fit_and_attach_confidence(record, card, card_file, model)
    print(f"refit {card_file.parent / card.extra['confidence']}: validation AUROC "
          f"{card.metrics['confidence_val']['auroc']:.3f}")


def _fit_and_attach_confidence(record: dict, card: ModelCard, card_file: Path,
                               model: torch.nn.Module) -> None:
    from lab.data.formats import read_dataset
    from lab.data.label_cleaning import DEFAULT_IOU
    from lab.evaluation.evaluate import tile_training_data
    from onboard.counter import OnboardCounter
    from shared.confidence import auroc, expected_calibration_error, fit_confidence

    counter = OnboardCounter(card_file)
    dedupe = record.get("dedupe_iou", DEFAULT_IOU)
    if record.get("sources"):
        from lab.evaluation.sources import confidence_tiles

        root = record.get("real_dev")
        train_x, train_y, train_e = confidence_tiles(counter, record["split"]["train"], None,
                                                     root, dedupe)
        val_x, val_y, val_e = confidence_tiles(counter, record["split"]["val"], None, root,
                                               dedupe)
    else:
        ds = read_dataset(record["data"], record["format"], gsd_m=record["scene_gsd"])
        by_id = {img.image_id: img for img in ds.images}
        classes = set(record["classes"])
        train_x, train_y = tile_training_data(
            counter, [by_id[i] for i in record["split"]["train"]], classes, dedupe)
        val_x, val_y = tile_training_data(
            counter, [by_id[i] for i in record["split"]["val"]], classes, dedupe)
        train_e = val_e = None
    conf = fit_confidence(train_x, train_y, val_x, val_y)
    if train_e is not None and val_e is not None:
        conf.fit_ood(train_e, val_e)
    conf_file = conf.save(card_file.parent / "confidence.json")
    probs = conf.predict(val_x, val_e)
    card.extra.update({"confidence": conf_file.name, "confidence_sha256": sha256_of(conf_file)})
    card.metrics["confidence_val"] = {"auroc": auroc(probs, val_y),
                                      "ece": expected_calibration_error(probs, val_y),
                                      "right_rate": float(val_y.mean())}
    rng = np.random.default_rng(0)
    s = card.input_size
    batch = rng.integers(0, 256, (4, s, s, 3), dtype=np.uint8) \
        if input_convention(card.extra) == RAW_INPUT else \
        rng.normal(0, 1, (4, 3, s, s)).astype(np.float32)
    card.metrics["onnx_parity"] = onnx_parity(model, card_file.parent / card.extra["fp32_onnx"],
                                              batch)
    write_card(card, card_file)
