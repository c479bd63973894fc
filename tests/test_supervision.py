"""Supervised tasks (bot/supervision.py) in real ``animebot serve`` processes: a chat front end that cannot reach
its platform turns ``/readyz`` red naming it and counts restarts; it recovers once the platform is back; one that
never recovers makes the process exit non-zero, so the container is restarted. Small ``ANIMEBOT_TASK_FAILURES``
and ``ANIMEBOT_TASK_BACKOFF`` keep it quick."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp

from bot.supervision import Supervisor
from tests.fake_telegram import FakeTelegram
from tests.test_serve import free_port, serve_env, start_serve

READY_TIMEOUT = 180.0


async def readiness(session: aiohttp.ClientSession, port: int) -> tuple[int, dict[str, object]]:
    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
        return response.status, await response.json()


async def restarts(session: aiohttp.ClientSession, port: int, task: str) -> int:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    found = re.search(rf'^animebot_task_restarts_total{{task="{task}"}} (\S+)$', text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


async def wait_for(check: object, timeout: float = READY_TIMEOUT) -> None:
    """Poll the async ``check()`` until it returns true."""
    assert callable(check)
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.25)


async def test_telegram_unreachable_at_boot_is_retried_shown_in_readyz_and_recovers(weights_dir: Path) -> None:
    port = free_port()
    telegram = FakeTelegram(port=free_port())  # not listening yet: Telegram is unreachable
    env = serve_env(weights_dir, port, telegram, ANIMEBOT_TASK_FAILURES="1000", ANIMEBOT_TASK_BACKOFF="0.2")
    process = await start_serve(env)
    try:
        async with aiohttp.ClientSession() as session:

            async def red_naming_telegram() -> bool:
                assert process.returncode is None
                try:
                    status, body = await readiness(session, port)
                except aiohttp.ClientError:
                    return False
                reason = str(body.get("reason"))
                return status == 503 and "telegram" in reason and "worker" not in reason

            await wait_for(red_naming_telegram)
            await wait_for(lambda: _at_least(restarts(session, port, "telegram"), 2))

            await telegram.start()  # Telegram comes back on the same port
            try:

                async def green() -> bool:
                    status, _ = await readiness(session, port)
                    return status == 200

                await wait_for(green, 60)
                assert await restarts(session, port, "telegram") >= 2
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert 'animebot_task_up{task="telegram"} 1.0' in await response.text()
            finally:
                process.send_signal(signal.SIGTERM)
                output = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
                await telegram.stop()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, output
    assert "telegram failed unexpectedly; restarting it" in output
    assert "telegram front end started" in output


async def _at_least(count: object, least: int) -> bool:
    assert asyncio.iscoroutine(count)
    return int(await count) >= least


async def test_a_front_end_that_never_recovers_makes_serve_exit_non_zero(weights_dir: Path) -> None:
    port = free_port()
    telegram = FakeTelegram(port=free_port())  # never listens
    env = serve_env(weights_dir, port, telegram, ANIMEBOT_TASK_FAILURES="3", ANIMEBOT_TASK_BACKOFF="0.1")
    process = await start_serve(env)
    try:
        output = (await asyncio.wait_for(process.communicate(), READY_TIMEOUT))[0].decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 1, output
    assert output.count("telegram failed unexpectedly; restarting it") == 3
    assert "telegram failed 3 times in a row; giving up" in output


async def test_a_loop_failing_is_restarted_and_counted_and_a_success_resets_nothing_early() -> None:
    supervisor = Supervisor(max_failures=3, first_backoff=0.01)
    attempts = 0

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("boom")

    await supervisor.start("flaky", flaky)
    assert attempts == 3 and supervisor.tasks["flaky"].restarts == 2 and not supervisor.down()
    assert not supervisor.gave_up.is_set()

    async def broken() -> None:
        raise RuntimeError("always")

    await supervisor.start("broken", broken)
    assert supervisor.gave_up.is_set() and supervisor.given_up == "broken" and supervisor.down() == ["broken"]
