"""Train tiny counters through the CLI, ship them, load them, evaluate with them."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ground.counter import GroundCounter
from lab.data.formats import read_dataset, write_dataset
from lab.models.nets import build
from lab.shipping.ship import PARITY_TOLERANCE, export_onnx, onnx_parity
from lab.synth import SceneConfig, generate_scene
from onboard.counter import OnboardCounter, session_options
from shared.annotations import Dataset
from shared.model_bundle import card_path
from shared.model_card import ModelIntegrityError
from shared.pipeline.config import PipelineConfig
from targetfuse.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    cfg = SceneConfig(width=256, height=256, gsd_m=1.0, layout="airport", cloud_cover=0.0)
    images = [generate_scene(cfg, seed=s, image_id=f"airport_{s}") for s in range(3)]
    write_dataset(Dataset(images, list(cfg.classes)), root / "data", "dota")
    split = root / "split.json"
    split.write_text(json.dumps({"train": ["airport_0.png"], "val": ["airport_1.png"],
                                 "test": ["airport_2.png"]}))
    models = root / "models"
    for model, arch in (("shallow", "shallow-mbv2-small"), ("deep", "deep-aspp")):
        run = root / f"run-{model}"
        assert main(["train", "--model", model, "--arch", arch, "--data", str(root / "data"),
                     "--format", "dota", "--classes", "aircraft", "--split", str(split),
                     "--input-size", "64", "--epochs", "1", "--samples-per-epoch", "16",
                     "--threads", "1", "--out", str(run)]) == 0
        assert main(["ship", "--run", str(run), "--models-dir", str(models)]) == 0
    return root, models


def test_cards_weights_and_integrity(shipped):
    _, models = shipped
    onboard = OnboardCounter.shipped("aircraft", models)
    ground = GroundCounter.shipped("aircraft", models)
    assert onboard.card.role == "onboard" and ground.card.role == "ground"
    assert ground.card.flops_per_tile >= 10 * onboard.card.flops_per_tile
    parity = onboard.card.metrics["onnx_parity"]
    assert parity["count_abs"] < PARITY_TOLERANCE["count_abs"]
    # Export measured whether the int8 model keeps fp32's counts; the default runs that.
    assert onboard.card.extra["deployed_variant"] in ("int8-exact", "fp32")
    assert onboard.variant == onboard.card.extra["deployed_variant"]
    weights = models / "aircraft" / "deep.pt"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256 .* does not match"):
        GroundCounter.shipped("aircraft", models)
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    GroundCounter.shipped("aircraft", models)


def test_counters_count_and_confidence_is_a_probability(shipped):
    _, models = shipped
    onboard = OnboardCounter.shipped("aircraft", models)
    pixels = np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8)
    # 64 px inputs at 1 m: a 0.5 m scene is cut into 128 px tiles, a 1 m scene into 64 px.
    result = onboard.count(pixels, scene_gsd=0.5)
    assert result.outputs.grid.tile_size == 128 and len(result.outputs.counts) == 2
    assert len(onboard.count(pixels, scene_gsd=1.0).outputs.counts) == 6
    assert ((result.confidence >= 0) & (result.confidence <= 1)).all()
    ground = GroundCounter.shipped("aircraft", models, precision="bf16")
    out = ground.count(pixels, scene_gsd=1.0)
    assert out.counts.shape == (6,) and (out.counts >= 0).all()


def test_eval_writes_the_documented_json(shipped, tmp_path, capsys):
    root, models = shipped
    out = tmp_path / "eval.json"
    assert main(["eval", "--data", str(root / "data"), "--format", "dota", "--model",
                 "aircraft", "--classes", "aircraft", "--models-dir", str(models),
                 "--json", str(out)]) == 0
    assert "ground sample distance" not in capsys.readouterr().err  # the data give it
    result = json.loads(out.read_text())
    assert len(result["images"]) == 3
    for row in result["images"]:
        assert set(row) >= {"image", "truth", "onboard_only", "ground_only"}
        assert row["truth"] == int(row["truth"]) >= 0
    truths = np.array([r["truth"] for r in result["images"]])
    onboard = np.array([r["onboard_only"] for r in result["images"]])
    assert result["cmae"]["onboard_only"] == pytest.approx(np.abs(onboard - truths).mean(),
                                                           abs=1e-3)
    assert result["relative_cmae"]["ground_only"] == pytest.approx(
        result["cmae"]["ground_only"] / truths.mean(), abs=1e-3)
    assert 0 <= result["confidence"]["auroc"] <= 1
    assert main(["eval", "--data", str(root / "data"), "--format", "dota", "--model",
                 "aircraft", "--classes", "boat", "--models-dir", str(models)]) == 2


def test_eval_says_when_no_gsd_is_known(shipped, tmp_path, capsys):
    root, models = shipped
    ds = read_dataset(root / "data", "dota")
    for img in ds.images:
        img.meta.gsd_m = None
    write_dataset(ds, tmp_path / "nogsd", "yolo")
    assert main(["eval", "--data", str(tmp_path / "nogsd"), "--format", "yolo", "--model",
                 "aircraft", "--classes", "aircraft", "--models-dir", str(models)]) == 0
    err = capsys.readouterr().err
    assert "warning: 3 of 3 images: ground sample distance unknown" in err


def test_calibrate_eval_and_experiment_run_the_pipeline(shipped, tmp_path):
    root, models = shipped
    data = ["--data", str(root / "data"), "--format", "dota", "--model", "aircraft",
            "--classes", "aircraft", "--models-dir", str(models)]
    assert main(["calibrate", *data, "--split", str(root / "split.json"), "--threshold", "16",
                 "--exhaustive-step", "8"]) == 0
    table = json.loads((models / "aircraft" / "tiling.json").read_text())
    entry = table["entries"][0]
    assert entry["gsd_m"] == 1.0 and 32 <= entry["tile_size"] <= 128
    assert (models / "aircraft" / "error_model.json").exists()
    out = tmp_path / "eval.json"
    assert main(["eval", *data, "--json", str(out), "--budget-fraction", "0.2"]) == 0
    result = json.loads(out.read_text())
    for row in result["images"]:
        assert set(row) >= {"collaborative", "vanilla", "random", "bytes_raw",
                            "bytes_downlinked", "onboard_inferences", "energy_j"}
        assert row["bytes_downlinked"] <= 0.2 * row["bytes_raw"]
        assert row["energy_j"] <= row["energy_budget_j"] + 1e-6
    assert set(result["cmae"]) >= {"onboard_only", "ground_only", "collaborative", "vanilla",
                                   "random"}
    assert result["pipeline"]["policy"] == "value"
    assert main(["eval", *data, "--budget-fraction", "-1"]) == 2
    runs = []
    for k in range(2):
        exp = tmp_path / f"exp{k}"
        assert main(["experiment", *data, "--sweeps", "tiles,budget", "--out", str(exp)]) == 0
        assert (exp / "budget.png").stat().st_size > 0 and (exp / "tiles.png").exists()
        runs.append((exp / "budget.csv").read_text())
    assert runs[0] == runs[1]  # same seed, same numbers
    for name in ("vanilla", "vanilla-resized", "vanilla-zero", "onboard-only-zero",
                 "dynamic-conf"):
        assert f",{name}," in runs[0]
    # Choices made on one part, figures reported on another, and the summary says which.
    split = str(root / "split.json")
    exp = tmp_path / "tuned"
    assert main(["experiment", *data, "--sweeps", "budget,compute-cost", "--images",
                 f"{split}:test",
                 "--tune-images", f"{split}:val", "--out", str(exp)]) == 0
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["reported_on"]["part"] == "test" and summary["tuned_on"]["part"] == "val"
    chosen = summary["tuned_on"]["choices"]
    assert summary["policy"] == chosen["policy"]
    deployed = PipelineConfig.load(exp / "pipeline.json")  # what a service deploys as is
    assert {k: getattr(deployed, k) for k in chosen} == chosen
    best = min(summary["tuned_on"]["scores"], key=lambda s: s["mean_relative_cmae"])
    assert (best["policy"], best["uncounted"]) == (chosen["policy"], chosen["uncounted"])
    point = summary["budget"]["points"][0]
    assert set(point["baselines"]) >= {"onboard-only", "onboard-only-zero", "vanilla",
                                       "vanilla-resized", "vanilla-zero", "random"}
    costs = summary["compute_cost"]
    assert [c["compute_cost"] for c in costs[::2]] == [
        "counting costs what sending costs", "default", "counting 10x dearer"]
    assert costs[-1]["j_per_flop"] == pytest.approx(10 * costs[2]["j_per_flop"])
    strongest = point["strongest"]["vanilla"]
    assert point["baselines"][strongest] == min(
        point["baselines"][v] for v in ("vanilla", "vanilla-resized", "vanilla-zero"))


def test_onnx_export_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    model = build("shallow-mbv2").eval()
    path = export_onnx(model, 64, tmp_path / "m.onnx", raw_input=False)
    batch = np.random.default_rng(1).normal(size=(3, 3, 64, 64)).astype(np.float32)
    diff = onnx_parity(model, path, batch)
    assert diff["count_abs"] < PARITY_TOLERANCE["count_abs"]
    assert diff["map_abs"] < PARITY_TOLERANCE["map_abs"]


def test_session_options_for_a_constrained_cpu():
    opts = session_options(1)
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    # exact int8 kernels where the CPU lacks VNNI (else uint8 x int8 sums saturate)
    assert opts.get_session_config_entry("session.x64quantprecision") == "1"
    with pytest.raises(ValueError):
        session_options(0)


def test_missing_card_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model card"):
        OnboardCounter(card_path("aircraft", "onboard", tmp_path))
