"""A footprint captured again and again: every capture is processed (issue 26, finding 1)."""

import json
import time

import pytest
from fastapi.testclient import TestClient

from lab.synth import SceneConfig, generate_scene
from onboard.app import create_app
from onboard.settings import OnboardSettings
from shared.imageio import encode


@pytest.mark.slow
def test_a_third_capture_of_the_same_footprint_is_processed(tmp_path):
    img = generate_scene(SceneConfig(width=768, height=512, gsd_m=0.5, layout="airport",
                                     classes=("aircraft",)), seed=4)
    png = encode(img.load_pixels(), ".png")
    settings = OnboardSettings(auth=False, data_dir=tmp_path / "onboard",
                               ground_target="127.0.0.1:9", budget_fraction=0.3)
    meta = {"gsd_m": 0.5, "geotransform": [500000.0, 0.5, 0.0, 4000000.0, 0.0, -0.5],
            "crs": "EPSG:32631"}
    with TestClient(create_app(settings)) as client:
        for k in range(3):
            r = client.post("/v1/scenes", files={"file": ("s.png", png, "image/png")},
                            data={"metadata": json.dumps({**meta, "scene_id": f"again-{k}"})})
            assert r.status_code == 202, r.text
        for k in range(3):
            deadline = time.time() + 120
            while (rec := client.get(f"/v1/scenes/again-{k}").json())["state"] in \
                    ("queued", "processing") and time.time() < deadline:
                time.sleep(0.2)
            assert rec["state"] == "downlinking", rec
