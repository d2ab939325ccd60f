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
    from lab.live import dev_postgres, fresh_database

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

    from lab.live import dev_nats

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


def pytest_collection_modifyitems(config, items):
    for item in items:
        if LIVE_SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
