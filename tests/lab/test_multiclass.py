"""A three-class counter pair end to end on tiny generated sources: trained with ``--sources``
(partial labels), shipped, scored per source and class, and counted through both services
with a class request (per-class counts on the wire, in the ground's aggregation and REST)."""

import json
import time

import numpy as np
import onnxruntime as ort
import pytest

from ground.app import create_app as ground_app
from ground.counter import GroundCounter
from ground.settings import GroundSettings
from lab.data.formats import write_dataset
from lab.services.live import Service, get_json, post_scene
from lab.synth import SceneConfig, generate_scene
from onboard.app import create_app as onboard_app
from onboard.counter import OnboardCounter
from onboard.settings import OnboardSettings
from shared.annotations import Dataset
from shared.imageio import encode
from targetfuse.cli import main

pytestmark = pytest.mark.slow
CLASSES = ["aircraft", "ship", "vehicle"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiclass")
    real_dev, splits = root / "real-dev", root / "splits"
    splits.mkdir()
    # Two sources in the registry's formats: harbour scenes whose labels cover ships only
    # (their vehicles are unlabelled for training), street scenes labelling vehicles.
    for source, layout in (("ships_google_earth", "harbour"), ("kit_cars", "urban")):
        cfg = SceneConfig(width=256, height=256, gsd_m=0.5, layout=layout, cloud_cover=0.0)
        images = [generate_scene(cfg, seed=s, image_id=f"{layout}_{s}") for s in range(3)]
        write_dataset(Dataset(images, list(cfg.classes)), real_dev / source, "yolo")
        ids = [f"{layout}_{s}.png" for s in range(3)]
        (splits / f"{source}.json").write_text(json.dumps(
            {"train": ids[:1], "val": ids[1:2], "test": ids[2:]}))
    models = root / "models"
    for model, arch in (("shallow", "shallow-mbv2-small"), ("deep", "deep-aspp")):
        run = root / f"run-{model}"
        assert main(["train", "--model", model, "--arch", arch,
                     "--sources", "ships_google_earth,kit_cars", "--real-dev", str(real_dev),
                     "--splits-dir", str(splits), "--model-gsd", "0.5", "--input-size", "64",
                     "--epochs", "1", "--samples-per-epoch", "16", "--threads", "1",
                     "--out", str(run)]) == 0
        assert main(["ship", "--run", str(run), "--models-dir", str(models)]) == 0
    return root, real_dev, splits, models


def test_one_pair_counts_three_classes(pair):
    _, _, _, models = pair
    onboard = OnboardCounter.shipped("objects", models)
    ground = GroundCounter.shipped("objects", models)
    assert onboard.classes == ground.classes == CLASSES
    sess = ort.InferenceSession(str(models / "objects" / "shallow.int8.onnx"),
                                providers=["CPUExecutionProvider"])
    density, mask, embedding = sess.run(None, {"tile": np.zeros((2, 3, 64, 64), np.float32)})
    assert density.shape[1] == mask.shape[1] == 3 and embedding.shape[0] == 2
    card = json.loads((models / "objects" / "shallow.json").read_text())
    assert card["data"]["sources"] == ["ships_google_earth", "kit_cars"]
    assert card["metrics"]["onnx_parity"]["count_abs"] < 1e-3
    # Counting asks for classes: the total is theirs, every class's count rides along.
    pixels = generate_scene(SceneConfig(width=192, height=192, gsd_m=0.5, layout="harbour"),
                            seed=9).load_pixels()
    both = onboard.count(pixels, 0.5).outputs
    ships = onboard.count(pixels, 0.5, classes=["ship"]).outputs
    assert both.total == pytest.approx(both.class_counts.sum(), rel=1e-5)
    assert ships.total == pytest.approx(both.class_counts[:, 1].sum(), rel=1e-5)
    with pytest.raises(ValueError, match="counts aircraft, ship, vehicle; not boats"):
        onboard.count(pixels, 0.5, classes=["boats"])
    # The confidence knows the training imagery's features: a tile unlike any of it (flat
    # magenta, a colour no training scene has) is trusted less than a familiar one.
    conf = onboard.confidence
    assert conf.ood_ref is not None
    odd = np.zeros((64, 64, 3), np.uint8)
    odd[..., 0], odd[..., 2] = 255, 255
    tiles = [pixels[:64, :64], odd]
    run, _ = onboard.run_at(tiles, 64)
    assert conf.familiarity(run.embedding)[1] < conf.familiarity(run.embedding)[0]


def test_eval_sources_reports_each_source_on_the_classes_its_labels_cover(pair, tmp_path,
                                                                         capsys):
    _, real_dev, splits, models = pair
    out = tmp_path / "eval.json"
    assert main(["eval-sources", "--model", "objects", "--models-dir", str(models),
                 "--sources", "ships_google_earth,kit_cars", "--real-dev", str(real_dev),
                 "--splits-dir", str(splits), "--json", str(out)]) == 0
    result = {r["source"]: r for r in json.loads(out.read_text())["sources"]}
    # A harbour's aircraft and a street's aircraft and boats are known (zero): scored too,
    # as false counts.
    assert set(result["ships_google_earth"]["classes"]) == {"ship", "aircraft"}
    assert set(result["kit_cars"]["classes"]) == {"vehicle", "aircraft", "ship"}
    assert result["kit_cars"]["classes"]["aircraft"]["objects"] == 0
    row = result["kit_cars"]["classes"]["vehicle"]
    assert row["images"] == 1 and row["objects"] > 0
    for role in ("onboard", "ground"):
        assert row[role]["tile_mae"] >= 0 and row[role]["relative_cmae"] is not None
    dropped = tmp_path / "dropped.json"
    assert main(["eval-sources", "--model", "objects", "--models-dir", str(models),
                 "--sources", "kit_cars", "--real-dev", str(real_dev), "--splits-dir",
                 str(splits), "--drop-gsd", "--json", str(dropped)]) == 0
    assert json.loads(dropped.read_text())["gsd"] == "dropped"
    # The ground on the tiles as downlinked: another count of the same tiles, no masks.
    down = tmp_path / "downlinked.json"
    assert main(["eval-sources", "--model", "objects", "--models-dir", str(models),
                 "--sources", "kit_cars", "--real-dev", str(real_dev), "--splits-dir",
                 str(splits), "--downlink-quality", "40", "--json", str(down)]) == 0
    sent = json.loads(down.read_text())["sources"][0]
    assert sent["ground_on"] == "downlinked tiles, JPEG q40" and sent["jaccard"]["ground"] is None
    assert sent["classes"]["vehicle"]["onboard"] == row["onboard"]
    assert sent["classes"]["vehicle"]["ground"]["total"] >= 0
    assert sent["classes"]["vehicle"]["ground"]["relative_cmae"] is not None
    assert main(["eval-sources", "--model", "objects", "--models-dir", str(models),
                 "--sources", "kit_cars", "--downlink-quality", "0"]) != 0
    assert "downlink-quality" in capsys.readouterr().err


def test_count_scale_fit_on_validation_scales_every_density_map(pair, tmp_path):
    import shutil

    _, real_dev, splits, shipped = pair
    models = tmp_path / "models"
    shutil.copytree(shipped, models)
    val = tmp_path / "val.json"
    common = ["--real-dev", str(real_dev), "--splits-dir", str(splits)]
    assert main(["eval-sources", "--model", "objects", "--models-dir", str(models), "--part",
                 "val", "--sources", "ships_google_earth,kit_cars", "--json", str(val),
                 *common]) == 0
    images = [i for r in json.loads(val.read_text())["sources"] for i in r["per_image"]]
    assert images and all(set(i["truth"]) <= set(i["ground"]) for i in images)
    pixels = generate_scene(SceneConfig(width=128, height=128, gsd_m=0.5, layout="urban"),
                            seed=4).load_pixels()
    before = OnboardCounter.shipped("objects", models).count(pixels, 0.5).outputs
    assert main(["fit-count-scale", "--model", "objects", "--models-dir", str(models),
                 "--val", str(val), "--min-objects", "1", "--refit-confidence",
                 *common]) == 0
    onboard = OnboardCounter.shipped("objects", models)
    scale = onboard.card.extra["count_scale"]
    assert set(scale) == set(CLASSES)
    assert onboard.card.metrics["count_scale_val"]["classes"]["vehicle"]["groups"] == 1
    after = onboard.count(pixels, 0.5).outputs
    expected = before.class_counts * np.array([scale[c] for c in CLASSES])
    np.testing.assert_allclose(after.class_counts, expected, rtol=1e-4, atol=1e-5)
    assert "count_scale" in GroundCounter.shipped("objects", models).card.extra
    # Fitting again on top of a scale would compound it: refused.
    assert main(["fit-count-scale", "--model", "objects", "--models-dir", str(models),
                 "--val", str(val)]) == 2


def test_ground_options_are_scored_per_group(pair, tmp_path):
    _, real_dev, splits, models = pair
    out = tmp_path / "options.json"
    assert main(["eval-ground-options", "--model", "objects", "--models-dir", str(models),
                 "--sources", "kit_cars", "--real-dev", str(real_dev), "--splits-dir",
                 str(splits), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["part"] == "val"
    opts = result["options"]
    assert {"deep", "deep-tta", "shallow", "shallow-tta", "blend 0.5 deep-tta"} <= set(opts)
    assert opts["shallow"]["tile_mae_vs_shallow"] == pytest.approx(1.0)
    assert list(opts["deep"]["groups"]) == ["kit_cars/vehicle"]
    # A blend's error lies within what its two members' errors allow.
    blend, deep, shallow = (opts[k]["groups"]["kit_cars/vehicle"]["tile_mae"]
                            for k in ("blend 0.5 deep-tta", "deep-tta", "shallow-tta"))
    assert blend <= max(deep, shallow) + 1e-6


def test_services_carry_per_class_counts_and_filter_by_class(pair, tmp_path):
    _, _, _, models = pair
    g_app = ground_app(GroundSettings(auth=False, link_tls=False, grpc_host="127.0.0.1",
                                      grpc_port=0,
                                      model="objects", models_dir=models,
                                      db_path=tmp_path / "g.db", threads=1))
    ground = Service(g_app)
    g_port = ground.start()
    onboard = Service(onboard_app(OnboardSettings(
        auth=False, link_tls=False,
        data_dir=tmp_path / "onboard", ground_target=f"127.0.0.1:{g_app.state.grpc_port}",
        model="objects", models_dir=models, policy="dynamic-conf", budget_fraction=0.5,
        link_rate_bytes_s=5e6)))
    o_port = onboard.start()
    pixels = generate_scene(SceneConfig(width=320, height=256, gsd_m=0.5, layout="harbour"),
                            seed=4).load_pixels()
    url = f"http://127.0.0.1:{o_port}/v1/scenes"
    try:
        post_scene(url, encode(pixels, ".png"), {"scene_id": "two", "gsd_m": 0.5,
                                                 "classes": ["ship", "vehicle"]})
        post_scene(url, encode(pixels, ".png"), {"scene_id": "all", "gsd_m": 0.5})
        with pytest.raises(Exception, match="422"):
            post_scene(url, encode(pixels, ".png"), {"scene_id": "bad", "classes": ["tank"]})
        reports = {}
        deadline = time.time() + 120
        while len(reports) < 2 and time.time() < deadline:
            for sid in ("two", "all"):
                r = get_json(f"http://127.0.0.1:{g_port}/v1/scenes/{sid}")
                if r and r.get("complete"):
                    reports[sid] = r
            time.sleep(0.2)
        ob = get_json(f"{url}/two")
        ship_only = get_json(f"http://127.0.0.1:{g_port}/v1/scenes/two?classes=ship")
        listing = get_json(f"http://127.0.0.1:{g_port}/v1/scenes?classes=aircraft")
    finally:
        onboard.stop()
        ground.stop()
    assert set(reports) == {"two", "all"}
    two, every = reports["two"], reports["all"]
    assert two["classes"] == ["ship", "vehicle"] and every["classes"] == CLASSES
    assert ob["result"]["classes"] == ["ship", "vehicle"]
    assert sum(ob["result"]["onboard_by_class"].values()) == pytest.approx(
        ob["result"]["onboard_total"], abs=0.01)
    for r in (two, every):
        assert sum(v["total"] for v in r["by_class"].values()) == pytest.approx(
            r["total"], abs=0.01)
    assert ship_only["classes"] == ["ship"]
    assert ship_only["total"] == pytest.approx(two["by_class"]["ship"]["total"], abs=0.01)
    # Only the scene counted for every class was counted for aircraft.
    assert [s["scene_id"] for s in listing["scenes"]] == ["all"]


def test_error_model_of_a_multi_source_pair(pair):
    _, real_dev, _, models = pair
    assert main(["calibrate-sources", "--model", "objects", "--models-dir", str(models),
                 "--real-dev", str(real_dev), "--tiles-per-source", "4"]) == 0
    err = json.loads((models / "objects" / "error_model.json").read_text())
    assert err["fit_on"]["tiles"] == 8
    assert err["fit_on"]["sources"] == ["kit_cars", "ships_google_earth"]


def test_eval_sources_onboard_alone_and_on_excluded_imagery(pair, tmp_path):
    _, real_dev, splits, models = pair
    out = tmp_path / "onboard.json"
    assert main(["eval-sources", "--model", "objects", "--models-dir", str(models),
                 "--sources", "kit_cars", "--real-dev", str(real_dev), "--splits-dir",
                 str(splits), "--no-ground", "--json", str(out)]) == 0
    src = json.loads(out.read_text())["sources"][0]
    assert set(src["classes"]["vehicle"]) >= {"onboard"} and "ground" not in \
        src["classes"]["vehicle"]
    assert list(src["jaccard"]) == ["onboard"]
    assert "familiarity" in src["confidence"]


def test_the_simulator_counts_the_classes_asked_for(pair):
    from lab.simulator import SceneSimulator
    from shared.pipeline.config import PipelineConfig

    _, _, _, models = pair
    on = OnboardCounter.shipped("objects", models)
    gr = GroundCounter.shipped("objects", models)
    scene = generate_scene(SceneConfig(width=192, height=192, gsd_m=0.5, layout="harbour"),
                           seed=3)
    every = SceneSimulator(scene, on, gr)
    ships = SceneSimulator(scene, on, gr, classes=["ship"])
    cfg = PipelineConfig(policy="onboard-only", dedup=False, adaptive_tiling=False)
    assert ships.run(cfg, 0.0, 1.0).total == pytest.approx(
        on.count(scene.load_pixels(), 0.5, classes=["ship"]).outputs.total, rel=1e-5)
    assert every.ground_only == pytest.approx(gr.count(scene.load_pixels(), 0.5).total)
    assert ships.ground_only == pytest.approx(
        gr.count(scene.load_pixels(), 0.5, classes=["ship"]).total)


def test_gsd_estimate_picks_a_candidate_by_feature_distance(pair):
    from onboard.scale_estimate import FACTORS, estimate_gsd

    _, _, _, models = pair
    on = OnboardCounter.shipped("objects", models)
    pixels = generate_scene(SceneConfig(width=256, height=256, gsd_m=0.5, layout="urban"),
                            seed=5).load_pixels()
    gsd, distances = estimate_gsd(on, pixels)
    assert sorted(distances) == [0.5 * f for f in FACTORS]
    assert gsd == min(distances, key=distances.get)
    on.confidence.ood_mean = None  # no training statistics: no estimate
    assert estimate_gsd(on, pixels) == (None, {})


def test_a_shipped_gsd_regressor_makes_the_estimate_and_is_verified(pair, tmp_path, capsys):
    import shutil

    from onboard.scale_estimate import estimate_gsd
    from shared.limits import GSD_M
    from shared.model_card import ModelIntegrityError

    _, real_dev, splits, models = pair
    mine = tmp_path / "models"
    shutil.copytree(models, mine)
    common = ["fit-scale-estimate", "--model", "objects", "--models-dir", str(mine),
              "--real-dev", str(real_dev), "--splits-dir", str(splits), "--presentations", "1",
              "--coarser", "2"]
    assert main([*common, "--sources", "ships_google_earth"]) != 0
    assert "GSD is not known" in capsys.readouterr().err
    assert main([*common, "--sources", "kit_cars", "--json", str(tmp_path / "fit.json")]) == 0
    report = json.loads((tmp_path / "fit.json").read_text())["report"]
    assert {(e["source"], e["part"]) for e in report} >= {("kit_cars", "train")}
    on = OnboardCounter.shipped("objects", mine)
    assert on.bundle.scale_regressor is not None
    pixels = generate_scene(SceneConfig(width=256, height=256, gsd_m=0.5, layout="urban"),
                            seed=5).load_pixels()
    gsd, distances = estimate_gsd(on, pixels)
    assert GSD_M[0] <= gsd <= GSD_M[1] and distances == {}  # the regressor, not the choice
    (mine / "objects" / "scale_regressor.json").write_text("{}")  # swapped under the card
    with pytest.raises(ModelIntegrityError):
        estimate_gsd(OnboardCounter.shipped("objects", mine), pixels)


def test_a_class_network_is_added_only_when_validation_improves(pair, tmp_path):
    import shutil

    root, real_dev, splits, shipped = pair
    models = tmp_path / "models"
    shutil.copytree(shipped, models)
    card_file = models / "objects" / "deep.json"
    before = card_file.read_text()
    common = ["--run", str(root / "run-deep"), "--classes", "vehicle", "--models-dir",
              str(models), "--real-dev", str(real_dev), "--splits-dir", str(splits)]
    # The ground's own network as its member at its own scale: the same counts, no gain.
    same = tmp_path / "same.json"
    assert main(["add-class-network", *common, "--json", str(same)]) == 0
    result = json.loads(same.read_text())
    assert result["with_class_network"]["relative_cmae"] == pytest.approx(
        result["alone"]["relative_cmae"])
    assert not result["kept"] and card_file.read_text() == before
    # At twice the scale: the card follows the verdict.
    twice = tmp_path / "twice.json"
    assert main(["add-class-network", *common, "--input-scale", "2", "--json",
                 str(twice)]) == 0
    result = json.loads(twice.read_text())
    assert result["spec"]["input_scale"] == 2.0 and result["spec"]["classes"] == ["vehicle"]
    card = json.loads(card_file.read_text())
    assert ("class_network" in card["extra"]) == result["kept"]
    if result["kept"]:
        ground = GroundCounter.shipped("objects", models)
        assert ground.net.member is not None
        assert card["flops_per_tile"] > json.loads(before)["flops_per_tile"]


def test_a_soup_keeps_the_blend_validation_prefers_and_ships_it(pair, tmp_path):
    import torch

    from lab.training.loop import averaged_weights

    root, real_dev, splits, _ = pair
    run = root / "run-deep"
    out, models = tmp_path / "soup", tmp_path / "models"
    assert main(["soup", "--start", str(run / "best.pt"), "--to", str(run / "last.pt"),
                 "--alphas", "0,0.5,1", "--real-dev", str(real_dev), "--splits-dir",
                 str(splits), "--threads", "1", "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    scores = {s["alpha"]: s["relative_cmae"] for s in record["soup"]["scores"]}
    assert sorted(scores) == [0.0, 0.5, 1.0]
    assert record["soup"]["alpha"] == min(scores, key=scores.get)
    # The chosen blend is what ships, and it is the blend of the two ends.
    assert main(["ship", "--run", str(out), "--models-dir", str(models)]) == 0
    alpha = record["soup"]["alpha"]
    card = json.loads((models / "objects" / "deep.json").read_text())
    assert card["data"]["soup"]["alpha"] == alpha
    # The start is named by content: shipping a blend of a shipped start overwrites its path.
    from shared.model_card import sha256_of
    assert card["data"]["soup"]["start_sha256"] == sha256_of(run / "best.pt")
    start, end = averaged_weights(run / "best.pt"), averaged_weights(run / "last.pt")
    shipped = torch.load(models / "objects" / "deep.pt", weights_only=False)
    for k, v in shipped.items():
        if v.is_floating_point():
            want = (1 - alpha) * start[k] + alpha * end[k]
            assert torch.allclose(v.float(), want, atol=2e-3 * (1 + want.abs().max()))
