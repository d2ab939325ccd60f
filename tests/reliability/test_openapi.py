"""Both services' OpenAPI documents, fuzzed with schemathesis against the live services on
loopback (authentication on, as by default): no request answers 5xx, and every answer's
status, content type and body are the ones its route documents."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ground.app import create_app as ground_app
from ground.settings import GroundSettings
from lab.services.live import Service
from onboard.app import create_app as onboard_app
from onboard.settings import OnboardSettings
from shared.api_keys import Credentials

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openapi")
    keys = Credentials.make(folder / "keys")
    g_app = ground_app(GroundSettings(grpc_host="127.0.0.1", grpc_port=0, threads=1,
                                      model="aircraft", db_path=folder / "g.db",
                                      **keys.ground()))
    ground = Service(g_app)
    g_port = ground.start()
    onboard = Service(onboard_app(OnboardSettings(
        data_dir=folder / "onboard", ground_target=f"127.0.0.1:{g_app.state.grpc_port}",
        model="aircraft", queue_size=4, **keys.onboard())))
    o_port = onboard.start()
    yield {"ground": f"http://127.0.0.1:{g_port}", "onboard": f"http://127.0.0.1:{o_port}",
           "key": keys.rest_key}
    onboard.stop()
    ground.stop()


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                database=None)


def fuzz(base: str, key: str) -> list[str]:
    """Every operation of the service's OpenAPI document, fuzzed; the operations run."""
    auth = {"Authorization": f"Bearer {key}"}
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", headers=auth)
    ran = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @FUZZ
        def call(case):
            # An image's content is beyond what OpenAPI can describe: "schema-valid" bytes
            # are rarely an image, and their 4xx is the right answer, not a failure.
            case.call_and_validate(headers=auth, excluded_checks=[positive_data_acceptance])

        call()
        ran.append(f"{operation.method.upper()} {operation.path}")
    return ran


def test_the_ground_api_answers_as_documented(services):
    ran = fuzz(services["ground"], services["key"])
    assert {"GET /v1/scenes", "GET /v1/scenes/{scene_id}", "GET /v1/link"} <= set(ran)


def test_the_onboard_api_answers_as_documented(services):
    ran = fuzz(services["onboard"], services["key"])
    assert {"POST /v1/scenes", "GET /v1/scenes/{scene_id}", "GET /v1/link"} <= set(ran)


@pytest.mark.parametrize("side", ["ground", "onboard"])
def test_every_route_but_the_probes_refuses_a_request_without_a_key(services, side):
    import httpx

    base = services[side]
    doc = httpx.get(f"{base}/openapi.json", headers={"X-API-Key": services["key"]}).json()
    public = {"/healthz", "/readyz", "/"}
    checked = 0
    for path, methods in doc["paths"].items():
        for method in methods:
            url = base + path.replace("{scene_id}", "some-scene")
            r = httpx.request(method.upper(), url, timeout=30)
            if path in public:
                assert r.status_code in (200, 503), (method, path)
            else:
                assert r.status_code == 401, (method, path, r.status_code)
                checked += 1
    assert httpx.get(base + "/openapi.json").status_code == 401
    assert httpx.get(base + "/docs").status_code == 200  # a page that asks for the key
    assert checked >= 4
