"""API keys on both services' REST routes: refused without one, health stays public."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ground.app import create_app as ground_app
from ground.settings import GroundSettings
from onboard.app import create_app as onboard_app
from onboard.settings import OnboardSettings
from shared.api_keys import load_keys

KEY = "k" * 24


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text(f"# operators\n{KEY}\n{'z' * 20}\n")
    return path


def test_ground_routes_need_a_key_health_and_the_page_do_not(tmp_path, keys_file, caplog):
    settings = GroundSettings(grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db",
                              model="aircraft", api_keys_file=keys_file)
    with caplog.at_level("INFO", logger="targetfuse.ground"), \
            TestClient(ground_app(settings)) as client:
        # The start-up line says the ports, the model pair and where the key files are.
        up = next(r.getMessage() for r in caplog.records if "ground service up" in r.getMessage())
        assert ":8081" in up and "model pair 'aircraft'" in up and str(keys_file) in up
        assert str(tmp_path / "link-keys") in up
        for path in ("/v1/scenes", "/v1/link", "/metrics", "/openapi.json"):
            r = client.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
        r = client.get("/v1/scenes", headers={"Authorization": "Bearer wrong-key-wrong"})
        assert r.status_code == 403 and r.json()["detail"].startswith("wrong API key")
        r = client.get("/v1/scenes", headers={"X-API-Key": "wrong-key-wrong"})
        assert r.status_code == 403 and "www-authenticate" not in r.headers
        r = client.get("/v1/scenes")  # none at all: a different status and message
        assert r.status_code == 401 and r.json()["detail"].startswith("missing API key")
        assert client.get("/v1/scenes", headers={"Authorization": f"Bearer {KEY}"}
                          ).status_code == 200
        assert client.get("/v1/scenes", headers={"X-API-Key": "z" * 20}).status_code == 200
        # A class the counter does not count is a 422, as onboard answers it.
        r = client.get("/v1/scenes?classes=cat", headers={"X-API-Key": KEY})
        assert r.status_code == 422 and "['cat'] are not counted here" in r.json()["detail"]
        assert client.get("/v1/scenes?classes=aircraft,aircraft",
                          headers={"X-API-Key": KEY}).status_code == 422
        assert client.get("/v1/scenes?classes=aircraft",
                          headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200  # the page holds no data
        # The API reference opens in a browser: the page asks for the key, then reads the
        # OpenAPI document with it (which alone needs the key).
        page = client.get("/docs")
        assert page.status_code == 200 and 'fetch("/openapi.json"' in page.text
        assert "sessionStorage" in page.text and "cdn" not in page.text.lower()


def test_onboard_submissions_need_a_key(tmp_path, keys_file, caplog):
    settings = OnboardSettings(data_dir=tmp_path / "o", ground_target="127.0.0.1:1",
                               model="aircraft", api_keys_file=keys_file)
    with caplog.at_level("INFO", logger="targetfuse.onboard"), \
            TestClient(onboard_app(settings, start=False)) as client:
        up = next(r.getMessage() for r in caplog.records
                  if "onboard service up" in r.getMessage())
        assert ":8080" in up and "model pair 'aircraft'" in up and str(keys_file) in up
        r = client.post("/v1/scenes", files={"file": ("s.png", b"x", "image/png")})
        assert r.status_code == 401
        r = client.post("/v1/scenes", files={"file": ("s.png", b"x", "image/png")},
                        headers={"X-API-Key": "not-a-key-of-ours"})
        assert r.status_code == 403
        assert not list((tmp_path / "o").rglob("*.png"))
        assert client.get("/v1/link", headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_a_keys_file_must_hold_real_keys(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no key"):
        load_keys(empty)
    short = tmp_path / "short.txt"
    short.write_text("abc\n")
    with pytest.raises(ValueError, match="at least 16"):
        load_keys(short)
    with pytest.raises(ValueError, match="cannot read"):
        load_keys(tmp_path / "missing.txt")
