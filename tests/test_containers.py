"""The Dockerfile and compose.yaml for real, with podman: build the image, bring up Redis, the weights job, a web
front end and two worker hosts, send a photo through the API, SIGKILL the worker container drawing it, and still
get the picture, answered once by the other worker. ``make container-test`` runs this file alone.

Every service runs on the host's network bound to 127.0.0.1 (tests/compose.host-network.yaml), so no test
traffic leaves loopback. The first run on a machine builds the stand-in base image and the image itself (about
10 minutes: the image has torch); later runs reuse podman's cached layers.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import redis

from bot.cluster.keys import GROUP, Keys
from tests.conftest import skip_or_fail
from tests.support_containers import compose_command, ensure_base_images, missing_tools, podman_environment, run
from tests.support_redis import free_port
from tests.support_web import jpeg_bytes

REPO = Path(__file__).resolve().parents[1]
IMAGE = "localhost/animebot:latest"
BUILD_TIMEOUT = 1800.0
READY_TIMEOUT = 300.0
JOB_TIMEOUT = 300.0
PYPI_INDEX = "https://pypi.org/simple"  # the Dockerfile's CPU-only torch index is not reachable from here
CONSUMER_LINE = re.compile(r"worker host (\S+) serving")
KEYS = Keys()

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """podman's environment for these tests, with the base images and the project's image built."""
    missing = missing_tools()
    if missing:
        skip_or_fail(f"container tools missing: {', '.join(missing)} (apt-get install podman runc debootstrap)")
    work = tmp_path_factory.mktemp("podman")
    env = podman_environment(work)
    log = work / "build.log"
    ensure_base_images(env, work, log)
    run(
        [
            "podman",
            "build",
            "--format",
            "docker",
            "--isolation",
            "chroot",
            "--network",
            "host",  # docker: HEALTHCHECK
            "--build-arg",
            f"TORCH_INDEX_URL={PYPI_INDEX}",
            "-t",
            IMAGE,
            str(REPO),
        ],
        env,
        log,
        timeout=BUILD_TIMEOUT,
    )
    return env


@pytest.fixture
def stack(podman: dict[str, str], weights_mirror: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """compose.yaml up on loopback ports of its own; yields the environment (ports included); always down."""
    project = f"animebot-test-{secrets.token_hex(3)}"
    env = {
        **podman,
        "COMPOSE_PROJECT_NAME": project,
        "ANIMEBOT_IMAGE": IMAGE,
        "ANIMEBOT_REDIS_PORT": str(free_port()),
        "ANIMEBOT_HOST": "127.0.0.1",
        "ANIMEBOT_PORT": str(free_port()),
        "ANIMEBOT_WORKING_SIZE": "512",
        "ANIMEBOT_LEASE_SECONDS": "3",
        "ANIMEBOT_TEST_WEIGHTS_MIRROR": str(weights_mirror),
    }
    env["ANIMEBOT_REDIS_PASSWORD"] = secrets.token_hex(16)
    env["ANIMEBOT_REDIS_HOST"] = "127.0.0.1"
    compose = [
        *(compose_command() or []),
        "-p",
        project,
        "-f",
        str(REPO / "compose.yaml"),
        "-f",
        str(REPO / "tests" / "compose.host-network.yaml"),
    ]
    log = tmp_path / "compose.log"
    try:
        run([*compose, "up", "-d", "--scale", "worker=2"], env, log, timeout=600, cwd=REPO)
        yield env
    finally:
        for name in containers(env, project):
            with log.open("ab") as output:  # kept in the test's folder for a failure's post-mortem
                subprocess.run(["podman", "logs", name], env=env, stdout=output, stderr=subprocess.STDOUT)
        with log.open("ab") as output:
            subprocess.run(
                [*compose, "down", "-v", "-t", "5"], env=env, cwd=REPO, timeout=300, stdout=output, stderr=output
            )
            # podman-compose's down can leave a container behind (one restarted by its policy after the test
            # killed it): remove whatever still carries the project's label, and its volumes.
            left = containers(env, project)
            if left:
                subprocess.run(
                    ["podman", "rm", "-f", "-t", "5", "--depend", *left], env=env, stdout=output, stderr=output
                )
            volumes = subprocess.run(
                ["podman", "volume", "ls", "-q", "--filter", f"label=io.podman.compose.project={project}"],
                env=env,
                capture_output=True,
                text=True,
            ).stdout.split()
            if volumes:
                subprocess.run(["podman", "volume", "rm", "-f", *volumes], env=env, stdout=output, stderr=output)
        assert not containers(env, project), "containers of the test's project were left behind"


def containers(env: dict[str, str], project: str, service: str | None = None) -> list[str]:
    """Names of the project's containers (of one service when given)."""
    filters = ["--filter", f"label=io.podman.compose.project={project}"]
    if service:
        filters += ["--filter", f"label=com.docker.compose.service={service}"]
    listing = subprocess.run(
        ["podman", "ps", "-a", *filters, "--format", "{{.Names}}"], env=env, capture_output=True, text=True, check=True
    )
    return listing.stdout.split()


def consumers_by_container(env: dict[str, str]) -> dict[str, str]:
    """Each worker container's consumer name in the Redis group, read from its start-up log line."""
    found = {}
    for name in containers(env, env["COMPOSE_PROJECT_NAME"], "worker"):
        logs = subprocess.run(["podman", "logs", name], env=env, capture_output=True, text=True).stdout
        logs += subprocess.run(["podman", "logs", name], env=env, capture_output=True, text=True).stderr
        match = CONSUMER_LINE.search(logs)
        if match:
            found[name] = match.group(1)
    return found


def memory_limits(env: dict[str, str]) -> dict[str, int]:
    """Each of the project's containers' memory limit in bytes (0: none)."""
    limits = {}
    for name in containers(env, env["COMPOSE_PROJECT_NAME"]):
        inspected = subprocess.run(
            ["podman", "inspect", "--format", "{{.HostConfig.Memory}}", name],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        limits[name] = int(inspected.stdout.strip())
    return limits


def weights_job_state(env: dict[str, str]) -> str:
    """The one-shot weights container's state: ``running``, ``done``, or ``failed (exit code N)``."""
    (name,) = containers(env, env["COMPOSE_PROJECT_NAME"], "weights")
    inspected = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if inspected[0] != "exited":
        return "running"
    return "done" if inspected[1] == "0" else f"failed (exit code {inspected[1]})"


async def wait_ready(env: dict[str, str], base: str, workers: int) -> dict[str, object]:
    """Wait until the weights are prepared and /readyz is green with ``workers`` worker processes alive.

    podman 4.3 ignores compose's health conditions, so the services start at once and wait for Redis and the
    weights themselves; the photo is sent only once the weights job is done (its models are then converted).
    """
    deadline = time.monotonic() + READY_TIMEOUT
    body: dict[str, object] = {}
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            state = weights_job_state(env)
            assert not state.startswith("failed"), f"the weights job {state}"
            if state != "done":
                await asyncio.sleep(1)
                continue
            try:
                async with http.get(f"{base}/readyz") as response:
                    body = await response.json()
                    if response.status == 200 and int(str(body["workers_alive"])) >= workers:
                        return body
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(1)
    raise AssertionError(f"the stack did not get ready: {body}")


def leased_to(client: redis.Redis) -> str | None:
    """The consumer the one running job is leased to."""
    pending = client.xpending_range(KEYS.stream, GROUP, "-", "+", 10)
    return pending[0]["consumer"].decode() if pending else None


async def test_compose_stack_answers_a_photo_even_when_its_worker_container_is_killed(
    stack: dict[str, str], astronaut: np.ndarray
) -> None:
    base = f"http://127.0.0.1:{stack['ANIMEBOT_PORT']}"
    await wait_ready(stack, base, workers=2)
    # One worker container's processes can fill workers=2 on their own: wait for the other's start-up line too.
    deadline = time.monotonic() + READY_TIMEOUT
    while len(consumers := consumers_by_container(stack)) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(1)
    assert len(consumers) == 2, consumers
    port = int(stack["ANIMEBOT_REDIS_PORT"])
    with pytest.raises(redis.AuthenticationError):  # compose's Redis asks for the password
        redis.Redis(host="127.0.0.1", port=port).ping()
    client = redis.Redis(host="127.0.0.1", port=port, password=stack["ANIMEBOT_REDIS_PASSWORD"])
    assert client.config_get("maxmemory")["maxmemory"] == str(1024**3)
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    (redis_container,) = containers(stack, stack["COMPOSE_PROJECT_NAME"], "redis")
    healthcheck = ["podman", "healthcheck", "run", redis_container]  # it passes the password
    checked = await asyncio.to_thread(subprocess.run, healthcheck, env=stack, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    limits = memory_limits(stack)
    assert len(limits) == 5 and all(limits.values()), limits  # every service has a memory limit
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("image", jpeg_bytes(astronaut, 1024), filename="astronaut.jpg", content_type="image/jpeg")
        async with http.post(f"{base}/api/v1/jobs", data=form) as response:
            job = await response.json()
            assert response.status == 202, job
        deadline = time.monotonic() + JOB_TIMEOUT
        while (holder := leased_to(client)) is None:
            assert time.monotonic() < deadline, "no worker took the job"
            await asyncio.sleep(0.05)
        victim = next(name for name, consumer in consumers.items() if consumer == holder)
        killing = ["podman", "kill", "--signal", "KILL", victim]
        await asyncio.to_thread(subprocess.run, killing, env=stack, check=True, capture_output=True)
        while True:
            async with http.get(f"{base}{job['result_url']}") as response:
                if response.status == 200:
                    picture = await response.read()
                    break
                assert response.status == 409, await response.text()
            assert time.monotonic() < deadline, "the picture never came"
            await asyncio.sleep(0.5)
    assert picture[:2] == b"\xff\xd8"  # a JPEG
    (fence,) = list(client.scan_iter(f"{KEYS.prefix}:fence:*"))
    answered_by = client.get(fence).decode()
    assert answered_by != holder and answered_by in consumers.values()  # the other worker answered, once
    counters = {name.decode(): int(value) for name, value in client.hgetall(KEYS.counters).items()}
    assert counters["done"] == 1 and counters.get("failed", 0) == 0 and counters.get("waiting", 0) == 0
    assert client.xpending(KEYS.stream, GROUP)["pending"] == 0
