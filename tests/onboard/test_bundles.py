"""Update bundles onboard: verified on arrival, applied between scenes (the version in force
in every scene header), the previous one kept; a forged, corrupted or failing bundle is
refused and logged, and the satellite goes on with the one it has."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onboard.bundles import BundleKeeper
from onboard.counter import OnboardCounter
from onboard.link.outbox import Outbox
from onboard.processing import SceneProcessor
from onboard.scenes_db import ScenesDB
from onboard.settings import OnboardSettings
from shared.imageio import write_rgb
from shared.model_bundle import ModelBundle, PairFiles
from shared.uplink.bundle import build
from shared.uplink.parity import canary_batch, canary_counts, onnx_runner
from shared.wire import link_pb2

KEY = Ed25519PrivateKey.generate()
PAIR = PairFiles.of("objects")
CARD = ModelBundle.shipped("objects", "onboard").card


def bundle(version: int, files: dict, key=KEY, model="objects", model_sha=None, **kw) -> bytes:
    return build(files, version=version, model=model,
                 model_sha256=model_sha or CARD.sha256, private_key=key, **kw)


def thresholds(**band) -> dict:
    return {"thresholds": json.dumps(band).encode()}


def calibration() -> dict:
    return {"confidence": (PAIR.folder / "confidence.json").read_bytes(),
            "error_model": PAIR.error_model.read_bytes()}


@pytest.fixture
def onboard(tmp_path):
    """A processor of the shipped pair and the keeper hooked into it, as the service wires
    them (onboard.bundles.Uplink)."""
    settings = OnboardSettings(auth=False, data_dir=tmp_path / "ob", model="objects",
                               precision="fp32", budget_fraction=0.5)
    settings.data_dir.mkdir(parents=True)
    box = Outbox(settings.data_dir / "onboard.db")
    counter = OnboardCounter.shipped("objects", threads=1, variant="fp32")
    proc = SceneProcessor(settings, ScenesDB(box), counter)
    keeper = BundleKeeper(settings.data_dir / "bundles", KEY.public_key(), proc)
    keeper.restore()
    proc.updates = keeper
    yield proc, keeper, box
    box.close()


def scene_header(proc, box, tmp_path, scene_id: str) -> link_pb2.SceneHeader:
    path = write_rgb(tmp_path / f"{scene_id}.png",
                     np.random.default_rng(1).integers(0, 256, (256, 256, 3), np.uint8))
    proc.process(scene_id, str(path), {"gsd_m": 0.5})
    headers = [p.message.header for p in box.pending(10_000)
               if p.message.WhichOneof("payload") == "header"]
    return next(h for h in headers if h.scene_id == scene_id)


def test_a_bundle_is_applied_between_scenes_and_its_version_is_in_every_header(
        onboard, tmp_path):
    proc, keeper, box = onboard
    assert scene_header(proc, box, tmp_path, "before").bundle_version == 0
    assert keeper.receive(bundle(1, {**calibration(), **thresholds(conf_p=0.05, conf_q=0.6)}),
                          1)
    # Staged, not applied: nothing changes until the next scene starts.
    assert keeper.version == 0 and proc.cfg.conf_q == 0.9 and proc.bundle_version == 0
    header = scene_header(proc, box, tmp_path, "after")
    assert header.bundle_version == 1
    assert (proc.cfg.conf_p, proc.cfg.conf_q) == (0.05, 0.6)
    assert keeper.info()["in_force"] == 1 and keeper.info()["previous"] == 0
    assert scene_header(proc, box, tmp_path, "again").bundle_version == 1


def test_a_forged_bundle_is_refused_logged_and_the_bundle_in_force_stays(onboard, caplog):
    proc, keeper, _ = onboard
    keeper.receive(bundle(1, thresholds(conf_q=0.7)), 1)
    keeper.between_scenes()
    forger = Ed25519PrivateKey.generate()
    with caplog.at_level(logging.ERROR, "targetfuse.onboard.bundles"):
        assert not keeper.receive(bundle(2, thresholds(conf_q=0.1), key=forger), 2)
    assert "signature does not verify" in caplog.text and "bundle 1 stays" in caplog.text
    keeper.between_scenes()
    assert keeper.version == 1 and proc.cfg.conf_q == 0.7 and proc.bundle_version == 1
    assert keeper.report() == (1, 2, keeper.info()["refused"]["2"])
    assert not keeper.wants(2) and keeper.wants(3)  # never fetched again


def test_a_corrupted_bundle_is_refused(onboard):
    proc, keeper, _ = onboard
    msg = link_pb2.UpdateBundle.FromString(bundle(1, calibration()))
    data = bytearray(msg.files[0].data)
    data[100] ^= 0xFF
    msg.files[0].data = bytes(data)
    assert not keeper.receive(msg.SerializeToString(), 1)
    assert "sha256 does not match" in keeper.info()["refused"]["1"]
    keeper.between_scenes()
    assert keeper.version == 0 and proc.bundle_version == 0


@pytest.mark.parametrize("blob,offered,reason", [
    (lambda: bundle(1, calibration(), model="aircraft"), 1, "for model pair 'aircraft'"),
    (lambda: bundle(1, calibration(), model_sha="cd" * 32), 1, "fit for the counter"),
    (lambda: bundle(1, calibration()), 2, "the ground offered 2"),
])
def test_a_bundle_for_another_pair_counter_or_version_is_refused(onboard, blob, offered,
                                                                  reason):
    _, keeper, _ = onboard
    assert not keeper.receive(blob(), offered)
    assert reason in keeper.info()["refused"][str(offered)]


def test_an_older_bundle_replayed_is_refused(onboard):
    _, keeper, _ = onboard
    keeper.receive(bundle(5, thresholds(conf_q=0.8)), 5)
    keeper.between_scenes()
    assert not keeper.receive(bundle(4, thresholds(conf_q=0.2)), 4)
    assert "not newer" in keeper.info()["refused"]["4"] and keeper.version == 5


def test_a_check_that_fails_at_apply_refuses_the_bundle_and_keeps_the_previous(onboard):
    proc, keeper, _ = onboard
    keeper.receive(bundle(1, thresholds(conf_q=0.7)), 1)
    keeper.between_scenes()
    # conf_p alone is fine on arrival; against the band in force (conf_q 0.9 shipped) too;
    # 0.95 is above it: the configuration refuses it when the bundle is applied.
    assert keeper.receive(bundle(2, thresholds(conf_p=0.95)), 2)
    keeper.between_scenes()
    assert keeper.version == 1 and proc.cfg.conf_q == 0.7
    assert "conf_p" in keeper.info()["refused"]["2"]
    assert not (keeper.folder / "v2").exists()


def _new_counter(counts_scale: float = 1.0) -> tuple[bytes, dict]:
    """The pair's fp32 model as a "new" counter, with the canary counts the ground would
    record (scaled: a model that does not give them)."""
    onnx = (PAIR.folder / "shallow.onnx").read_bytes()  # the card names the int8 one
    tiles = ModelBundle.shipped("objects", "onboard").canary
    counts = canary_counts(onnx_runner(onnx), canary_batch(tiles, "normalised-float32-nchw"))
    return onnx, {"file_sha256": CARD.extra["canary_tiles_sha256"],
                  "counts": [c * counts_scale for c in counts]}


def test_a_new_counter_that_passes_its_parity_check_counts_from_the_next_scene(onboard):
    proc, keeper, _ = onboard
    onnx, canary = _new_counter()
    assert keeper.receive(bundle(1, {"onnx": onnx, **calibration()}, canary=canary), 1)
    keeper.between_scenes()
    assert keeper.version == 1 and proc.counter.variant == "uplinked"
    assert proc.counter.card.sha256 != CARD.sha256  # the header names the new counter
    # A later calibration is for the counter in force, and keeps it.
    assert keeper.receive(bundle(2, thresholds(conf_q=0.8),
                                 model_sha=proc.counter.card.sha256), 2)
    keeper.between_scenes()
    assert keeper.version == 2 and proc.counter.variant == "uplinked"
    assert (keeper.folder / "v2" / "model.onnx").exists()  # each folder whole


def test_a_new_counter_that_fails_its_parity_check_is_refused(onboard):
    proc, keeper, _ = onboard
    onnx, canary = _new_counter(counts_scale=1.5)
    assert keeper.receive(bundle(1, {"onnx": onnx}, canary=canary), 1)
    keeper.between_scenes()
    assert "parity check" in keeper.info()["refused"]["1"]
    assert keeper.version == 0 and proc.counter.variant == "fp32"


def test_at_start_a_damaged_bundle_in_force_rolls_back_to_the_previous(onboard, tmp_path):
    proc, keeper, box = onboard
    keeper.receive(bundle(1, thresholds(conf_q=0.7)), 1)
    keeper.between_scenes()
    keeper.receive(bundle(2, thresholds(conf_q=0.6)), 2)
    keeper.between_scenes()
    assert keeper.info()["previous"] == 1
    (keeper.folder / "v2" / "thresholds.json").write_text('{"conf_q": 0.1}')  # damaged
    fresh = SceneProcessor(proc.settings, proc.db, OnboardCounter.shipped(
        "objects", threads=1, variant="fp32"))
    again = BundleKeeper(keeper.folder, KEY.public_key(), fresh)
    again.restore()
    assert again.version == 1 and fresh.bundle_version == 1 and fresh.cfg.conf_q == 0.7
    assert "damaged" in again.info()["refused"]["2"]


def test_rollback_puts_the_previous_bundle_back(onboard):
    proc, keeper, _ = onboard
    keeper.receive(bundle(1, thresholds(conf_q=0.7)), 1)
    keeper.between_scenes()
    keeper.receive(bundle(2, thresholds(conf_q=0.6)), 2)
    keeper.between_scenes()
    assert keeper.rollback() == 1
    assert proc.cfg.conf_q == 0.7 and proc.bundle_version == 1 and not keeper.wants(2)
    assert keeper.rollback() == 0  # then the shipped files
    assert proc.cfg.conf_q == 0.9 and proc.bundle_version == 0


def test_a_refusal_is_reported_as_one_printable_line(onboard):
    _, keeper, _ = onboard
    keeper._refuse(9, "onnxruntime says:\n  bad node\x00 here")
    assert keeper.report() == (0, 9, "onnxruntime says: bad node here")
    from shared import limits

    limits.check_offer_request(link_pb2.OfferRequest(
        in_force=0, refused=9, refused_reason=keeper.report()[2]))  # the ground's rule
