"""Shared fixtures: tiny generated images, and the real-dev folder (skip when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.data.realdev import real_dev_root
from shared.imageio import write_rgb


@pytest.fixture
def make_image():
    """Write a small random RGB image and return its path."""

    def make(path: Path, width: int = 64, height: int = 48, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        return write_rgb(path, pixels)

    return make


@pytest.fixture
def jpeg_tile():
    """A real JPEG tile of exactly a given size (``shared.pipeline.codec.sized_jpeg``), as
    the ground accepts only tiles that decode."""
    from shared.pipeline.codec import sized_jpeg

    return sized_jpeg


@pytest.fixture(scope="session")
def real_dev() -> Path:
    root = real_dev_root()
    if not root.is_dir():
        pytest.skip(f"real-dev data not found at {root} (set TARGETFUSE_REAL_DEV)")
    return root


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database of its own (dropped afterwards), on the server at
    ``TARGETFUSE_TEST_POSTGRES`` (default the development machines' 127.0.0.1:5432, trust
    auth); the test skips, saying so, when no server answers."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (the ground's dependencies)")
    from lab.services.live import dev_postgres, fresh_database

    admin = dev_postgres()
    try:
        url, drop = fresh_database(admin, "tf_test")
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {admin} ({str(exc).strip()[:80]}); start one, or set "
                    "TARGETFUSE_TEST_POSTGRES")
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def nats_url():
    """The NATS server with JetStream at ``TARGETFUSE_TEST_NATS`` (default the development
    machines' 127.0.0.1:4222); the test skips, saying so, when none answers. Tests name their
    own streams and delete them."""
    import socket
    from urllib.parse import urlsplit

    from lab.services.live import dev_nats

    url = dev_nats()
    u = urlsplit(url)
    try:
        socket.create_connection((u.hostname, u.port or 4222), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"no NATS at {url} ({exc}); start nats-server -js, or set "
                    "TARGETFUSE_TEST_NATS")
    return url


# Fixtures that need a live service: a test using one is an integration test (not in
# `make test-fast`), whether or not its module says so.
LIVE_SERVICE_FIXTURES = {"postgres_url", "nats_url"}


# The tiers of tests whose own module does not say (`make test-fast` leaves out `slow` and
# `integration`; `make test` runs everything). Node id prefixes, each with why: measured
# with --durations on the fast tier, the tests over a few seconds of CPU, and those that
# wait on the wall clock (contact windows in real time, a live gRPC link).
TIERS = {
    "integration": {
        # contact windows that open and close in real time
        "tests/onboard/test_contact_plan.py::test_a_scene_is_throttled_to_the_planned_window":
            "waits for a real-time contact window",
        "tests/onboard/test_contact_plan.py::test_a_horizon_plans_the_scene_against":
            "waits for real-time contact windows",
        "tests/onboard/test_contact_plan.py::test_each_window_sends_to_its_own_station":
            "two stations' windows in real time",
        # the onboard service with a live gRPC ground on loopback
        "tests/onboard/test_app.py::test_a_scene_goes_from_upload_to_the_ground":
            "a scene over a live link to a ground on loopback",
        "tests/onboard/test_link.py::test_a_ground_that_lost_its_store":
            "a live link, a ground restarted",
    },
    "slow": {
        "tests/onboard/test_streaming.py::test_the_streamed_plan_equals_the_whole_scene_plan":
            "plans a large scene twice",
        "tests/reliability/test_input_properties.py": "hypothesis: hundreds of examples",
        "tests/onboard/test_cog.py::test_a_cog_is_read_one_native_tile_window_at_a_time":
            "counts a COG tile by tile",
        "tests/test_onboard_never_imports_torch.py::test_the_check_catches":
            "imports every ground module in a subprocess",
        "tests/test_onboard_never_imports_torch.py::test_importing_every_module":
            "imports every onboard module in a subprocess",
        "tests/lab/training/test_training.py::test_sources_training_can_add_synthetic":
            "trains",
        "tests/lab/training/test_training.py::test_training_is_deterministic_and_resumable":
            "trains three times",
        "tests/lab/training/test_training.py::test_multi_class_training_validates":
            "trains",
        "tests/lab/test_adapt.py::test_the_command_adapts": "counts and fine-tunes a counter",
        "tests/lab/test_adapt.py::test_the_tiles_are_split": "generates and counts a scene",
        "tests/lab/test_adapt.py::test_a_candidate_no_better": "fine-tunes a counter",
        "tests/lab/constellation/orbits/test_imaging.py": "propagates orbits for days",
        "tests/lab/constellation/orbits/test_cli.py::test_the_real_sentinel2_day_over_svalbard":
            "a day of real passes",
        "tests/lab/constellation/orbits/test_cli.py::test_plans_for_a_generated_constellation":
            "twelve satellites' passes",
        "tests/lab/constellation/orbits/test_contacts.py::test_real_sentinel2_and_a_12_satellite":
            "twelve satellites' passes",
        "tests/shared/pipeline/test_accuracy_properties.py": "hypothesis over whole plans",
        "tests/lab/shipping/test_shipped_models.py::test_onnx_and_pytorch_agree_on_scene_tiles":
            "runs both counters on scenes",
        "tests/test_import_contracts.py::test_a_planted_violation_breaks_a_contract":
            "runs lint-imports once per planted violation",
        "tests/lab/constellation/test_day.py": "simulates days of a constellation",
        "tests/targetfuse/test_cli.py::test_help_imports_no_heavy_module":
            "a fresh interpreter per command",
        "tests/test_docs_commands.py::test_every_command_of_the_page_exists":
            "imports every command and builds both apps",
    },
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if LIVE_SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) or \
                {"postgres", "nats"} & {v for v in params.values() if isinstance(v, str)}:
            # a backend parameter that takes the fixture only when it runs counts too
            item.add_marker(pytest.mark.integration)
        for marker, prefixes in TIERS.items():
            if any(item.nodeid.startswith(p) for p in prefixes):
                item.add_marker(getattr(pytest.mark, marker))
