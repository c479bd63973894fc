"""Worker processes, of ``animebot serve``'s pool and of every ``animebot worker`` host (the same pool), start
without the service's secrets: their ``/proc/<pid>/environ`` holds no token, API key or Redis URL, while the parent
keeps them and the worker keeps what it needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.jobs import JobFailed
from bot.pool import InferencePool, PoolConfig
from bot.worker_environment import secret_names
from tests.support_pool import SCRIPTED_ENGINE, report_of, scripted

SECRETS = {
    "ANIMEBOT_TELEGRAM_TOKEN": "123456:telegram-token",
    "ANIMEBOT_DISCORD_TOKEN": "discord-token",
    "ANIMEBOT_API_KEY": "api-key",
    "ANIMEBOT_REDIS_URL": "redis://:redis-password@redis:6379/0",
    "ANIMEBOT_TELEGRAM_WEBHOOK_SECRET": "webhook-secret",
    "animebot_api_key": "read case-insensitively too",
    "ANIMEBOT_REDIS_PASSWORD": "compose's password",
}
KEPT = {"ANIMEBOT_PRECISION": "fp32", "ANIMEBOT_WEIGHTS_DIR": "/weights", "OMP_PROC_BIND": "true"}


def started_environment(pid: int) -> dict[str, str]:
    """The environment process ``pid`` was started with (what it can always read back, whatever it deletes)."""
    entries = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


def test_every_secret_setting_is_known_as_one() -> None:
    assert sorted(secret_names([*SECRETS, *KEPT])) == sorted(SECRETS)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
async def test_worker_processes_start_without_the_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SECRETS, **KEPT}.items():
        monkeypatch.setenv(name, value)
    pool = InferencePool(PoolConfig(workers=1, engine_factory=SCRIPTED_ENGINE))
    await pool.start()
    try:
        (first,) = pool.worker_pids()
        environments = {first: started_environment(first)}
        with pytest.raises(JobFailed):  # crashes its worker, and the respawned one: respawns start clean too
            await (await pool.submit(scripted("alice", crash=True))).result()
        result = await (await pool.submit(scripted("bob"))).result()
        respawned = report_of(result.image)["pid"]
        environments[respawned] = started_environment(respawned)
    finally:
        await pool.stop()
    assert respawned != first
    for pid, environment in environments.items():
        assert not set(SECRETS) & set(environment), f"worker {pid} was started with secrets"
        assert KEPT.items() <= environment.items()
    assert {name: os.environ[name] for name in SECRETS} == SECRETS  # the parent still has them
