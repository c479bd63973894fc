"""A real ``redis-server`` for the distributed tests: its own free loopback port, its own temporary folder.

No fakes: Debian's redis-server (7.0) is started as a child process, with AOF on so a restart keeps every
accepted job, and stopped (or killed, or restarted) by the test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

START_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_server_binary() -> str | None:
    """The redis-server executable on PATH (or /usr/bin), if installed."""
    return shutil.which("redis-server") or (
        str(Path("/usr/bin/redis-server")) if Path("/usr/bin/redis-server").exists() else None
    )


class RedisServer:
    """One redis-server process on 127.0.0.1, AOF with fsync on every write, data in ``folder``; optionally with a
    password and ``maxmemory`` (always ``noeviction``), as compose runs it."""

    def __init__(
        self,
        binary: str,
        folder: Path,
        port: int | None = None,
        password: str | None = None,
        maxmemory: str | None = None,
    ) -> None:
        self.binary = binary
        self.folder = folder
        self.port = port or free_port()
        self.password = password
        self.maxmemory = maxmemory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of this server (with its password, if it has one)."""
        login = f":{self.password}@" if self.password else ""
        return f"redis://{login}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        with (self.folder / "redis.log").open("ab") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.folder),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                    "--maxmemory-policy",
                    "noeviction",
                    "--protected-mode",
                    "yes",
                    *(["--requirepass", self.password] if self.password else []),
                    *(["--maxmemory", self.maxmemory] if self.maxmemory else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError) as error:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        log = (self.folder / "redis.log").read_text()
                        raise RuntimeError(f"redis-server did not start: {log}") from error
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server: nothing gets flushed beyond what AOF already fsynced."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Stop the server (SIGTERM), waiting for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> redis.Redis:
        """A synchronous client, for test assertions."""
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)
