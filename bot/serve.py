"""``animebot serve`` and ``animebot worker``: the processes people run.

``serve``: the web UI + API, plus Telegram and Discord when their tokens are set, on one shared queue (the
in-process pool, or Redis with ``ANIMEBOT_REDIS_URL``, then also a worker host unless ``ANIMEBOT_WORKERS=0``).
``worker``: a worker host alone. SIGTERM and SIGINT stop taking work first, then drain, so every accepted photo
is answered.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.config import Settings
from bot.redaction import redact_token_in_logs
from bot.service import Service

log = logging.getLogger("animebot")


def _secrets(settings: Settings) -> list[str]:
    return [
        secret.get_secret_value()
        for secret in (settings.telegram_token, settings.discord_token, settings.api_key, settings.redis_url)
        if secret is not None
    ] + _redis_password(settings)


def _redis_password(settings: Settings) -> list[str]:
    """The password inside ``redis_url``, which libraries may log without the rest of the URL."""
    if settings.redis_url is None:
        return []
    password = urlsplit(settings.redis_url.get_secret_value()).password
    return [password] if password else []


def _front_ends(settings: Settings, service: Service, stop: asyncio.Event) -> dict[str, Coroutine[Any, Any, None]]:
    """The chat front ends whose tokens are set, as coroutines that run until ``stop`` is set."""
    front_ends: dict[str, Coroutine[Any, Any, None]] = {}
    if settings.telegram_token is not None:
        from adapters.telegram import run_telegram

        front_ends["telegram"] = run_telegram(settings, service, stop)
    if settings.discord_token is not None:
        from adapters.discord import build_client
        from adapters.discord import serve as serve_discord

        client = build_client(settings, service)

        async def run_discord() -> None:
            task = asyncio.create_task(serve_discord(client))
            await stop.wait()
            await client.close()
            await task

        front_ends["discord"] = run_discord()
    return front_ends


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Start everything configured, wait for ``stop``, then shut down in order (front ends, web, pool)."""
    from adapters.web import create_app

    async with Service(settings) as service, worker_host(settings, embedded=True):
        runner = web.AppRunner(create_app(settings, service), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info("web UI and API on http://%s:%d", settings.host, settings.port)
        tasks = {name: asyncio.create_task(front_end) for name, front_end in _front_ends(settings, service, stop).items()}
        for name in tasks:
            log.info("%s bot started", name)
        await stop.wait()
        log.info("stopping: finishing the photos already accepted")
        for name, task in tasks.items():
            try:
                await task
            except Exception:
                log.exception("%s bot stopped with an error", name)
        await runner.cleanup()


@asynccontextmanager
async def worker_host(settings: Settings, embedded: bool = False) -> AsyncIterator[None]:
    """A worker host running for the block (with ``embedded``: only in distributed mode with workers > 0)."""
    if embedded and (settings.redis_url is None or settings.workers < 1):
        yield
        return
    from bot.cluster.host import WorkerHost

    host = WorkerHost(settings)
    await host.start()
    try:
        yield
    finally:
        log.info("draining the worker host")
        await host.stop()


async def work(settings: Settings, stop: asyncio.Event) -> None:
    """``animebot worker``: a worker host until ``stop``, then drain."""
    if settings.redis_url is None:
        raise SystemExit("animebot worker needs ANIMEBOT_REDIS_URL (the Redis server the front ends use)")
    async with worker_host(settings):
        await stop.wait()


def serve(settings: Settings, main: Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]] = run) -> int:
    """Run ``main`` (the front ends, or with ``work`` a worker host) until SIGINT/SIGTERM; the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for secret in _secrets(settings):
        redact_token_in_logs(secret)

    async def until_signal() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await main(settings, stop)

    asyncio.run(until_signal())
    return 0
