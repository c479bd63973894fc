"""Helpers for the distributed tests: settings for a test cluster, worker host processes, and the final check
that Redis holds nothing pending (every test ends with the queue empty and the counters back to zero)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bot.cluster.keys import GROUP, Keys
from bot.config import Settings
from tests.support_pool import SCRIPTED_ENGINE

REPO = Path(__file__).resolve().parents[1]
TEST_LEASE_SECONDS = 2.0
HOST_START_TIMEOUT = 60.0
DEFAULT_KEYS = Keys()


def cluster_settings(redis_url: str, **overrides: Any) -> Settings:
    """Settings of a small test cluster: scripted engine, short lease, one worker process per host."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "engine_factory": SCRIPTED_ENGINE,
        "workers": 1,
        "queue_size": 8,
        "per_user_queued": 3,
        "job_timeout": 30.0,
        "lease_seconds": TEST_LEASE_SECONDS,
        "rate_limit_per_minute": 0,
    }
    values.update(overrides)
    return Settings(**values)


def assert_nothing_pending(client: redis.Redis, keys: Keys = DEFAULT_KEYS) -> None:
    """No job waiting, leased or stored; the waiting counter back to zero."""
    assert int(client.hget(keys.counters, "waiting") or 0) == 0
    assert client.llen(keys.turn) == 0
    if client.exists(keys.stream):
        assert client.xpending(keys.stream, GROUP)["pending"] == 0
        assert client.xlen(keys.stream) == 0
    assert list(client.scan_iter(f"{keys.prefix}:job:*")) == []
    assert list(client.scan_iter(f"{keys.prefix}:waiting:*")) == []


def counters(client: redis.Redis, keys: Keys = DEFAULT_KEYS) -> dict[str, int]:
    """The cluster's counters (waiting, accepted, refused, done, rejected, failed, timed_out, dead)."""
    return {name.decode(): int(value) for name, value in client.hgetall(keys.counters).items()}


class HostProcess:
    """``animebot worker`` as a real process in its own session (so a signal reaches its workers too)."""

    def __init__(self, redis_url: str, log: Path, **env: str) -> None:
        self.log = log
        environment = {
            **os.environ,
            "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "ANIMEBOT_REDIS_URL": redis_url,
            "ANIMEBOT_ENGINE_FACTORY": SCRIPTED_ENGINE,
            "ANIMEBOT_WORKERS": "1",
            "ANIMEBOT_LEASE_SECONDS": str(TEST_LEASE_SECONDS),
            "ANIMEBOT_JOB_TIMEOUT": "30",
            **env,
        }
        with log.open("ab") as output:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "worker"],
                cwd=REPO,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The host's process id (also the consumer name's second part)."""
        return self.process.pid

    def wait_serving(self, client: redis.Redis, keys: Keys = DEFAULT_KEYS) -> str:
        """Wait until the host joined (its heartbeat is in Redis); returns its consumer name."""
        deadline = time.monotonic() + HOST_START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker host exited: {self.output()}"
            for member in client.zrange(keys.hosts, 0, -1):
                if member.decode().split(":")[1] == str(self.pid):
                    return str(member.decode())
            time.sleep(0.05)
        raise AssertionError(f"worker host did not start: {self.output()}")

    def signal_all(self, signum: int) -> None:
        """Send ``signum`` to the host and its worker processes (a machine dying or pausing)."""
        os.killpg(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM the host alone, as `podman stop` / Kubernetes do; the host drains its workers."""
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the host to exit; its exit code."""
        return self.process.wait(timeout)

    def output(self) -> str:
        """Everything the host logged so far."""
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        """Kill whatever is left of the host and its workers."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # the workers too, even after the host itself exited
        self.process.wait()
