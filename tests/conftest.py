"""Shared fixtures: real weights installed from the mirror folder, real photos, CI strictness."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from animegan.manifest import load_manifest
from animegan.weights import pull
from tests.ci_strict import pytest_runtest_makereport
from tests.support_redis import RedisServer, redis_server_binary

__all__ = ["pytest_runtest_makereport"]  # the hook of tests/ci_strict.py: in CI a skip fails

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_MIRROR = Path(os.environ.get("ANIMEBOT_TEST_WEIGHTS_MIRROR", REPO.parent / "shared" / "weights"))


def skip_or_fail(reason: str) -> None:
    """A missing prerequisite: locally the test skips with the reason; in CI the skip fails (tests/ci_strict.py)."""
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private data dir for the session (source photos on disk), exported as ANIMEBOT_DATA_DIR.

    Every ``Settings`` built by a test, and every ``animebot serve`` it spawns, keeps its state there rather than
    in the user's data dir.
    """
    folder = tmp_path_factory.mktemp("data")
    os.environ["ANIMEBOT_DATA_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def weights_mirror() -> Path:
    """The folder holding the real weight files (../shared/weights)."""
    if not (WEIGHTS_MIRROR / "SHA256SUMS").is_file():
        skip_or_fail(f"weights mirror {WEIGHTS_MIRROR} is missing")
    return WEIGHTS_MIRROR


@pytest.fixture(scope="session")
def weights_dir(weights_mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder with every pinned file pulled from the mirror, exported as ANIMEBOT_WEIGHTS_DIR.

    The variable is set for the whole session so that spawned worker processes see the same folder.
    """
    folder = tmp_path_factory.mktemp("weights")
    pinned = [name for name, model in load_manifest().models.items() if model.sha256]
    pull(pinned, folder, mirror=weights_mirror, progress=False)
    os.environ["ANIMEBOT_WEIGHTS_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """NASA portrait of Eileen Collins (public domain), 512x512 RGB uint8, from scikit-image."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    """A cup of coffee (CC0, Rachel Michetti), 400x600 RGB uint8, from scikit-image: no face."""
    from skimage import data

    return data.coffee()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free 127.0.0.1 port with its own folder, stopped after the test."""
    binary = redis_server_binary()
    if binary is None:
        skip_or_fail("redis-server is not installed (apt-get install redis-server)")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(binary, folder)
    server.start()
    yield server
    server.kill()
