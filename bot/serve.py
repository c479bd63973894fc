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
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from bot.config import Settings
from bot.front_ends import installed_front_ends
from bot.redaction import redact_token_in_logs
from bot.service import Service

log = logging.getLogger("animebot")


def _secrets(settings: Settings) -> list[str]:
    return [
        secret.get_secret_value()
        for secret in (
            settings.telegram_token,
            settings.telegram_webhook_secret,
            settings.discord_token,
            settings.api_key,
            settings.redis_url,
        )
        if secret is not None
    ] + _redis_password(settings)


def _redis_password(settings: Settings) -> list[str]:
    """The password inside ``redis_url``, which libraries may log without the rest of the URL."""
    if settings.redis_url is None:
        return []
    password = urlsplit(settings.redis_url.get_secret_value()).password
    return [password] if password else []


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Start every configured front end on one service, wait for ``stop``, then shut down in order: the chat front
    ends (each finishes the photos it accepted), then the web server, then the pool."""
    async with Service(settings) as service, worker_host(settings, embedded=True), AsyncExitStack() as essentials:
        chats: dict[str, asyncio.Task[None]] = {}
        for front_end in installed_front_ends():
            serving = front_end.serving(settings, service)
            if serving is None:
                continue
            if front_end.essential:
                await essentials.enter_async_context(serving)
            else:
                chats[front_end.name] = asyncio.create_task(_serve_until(serving, stop))
            log.info("%s front end started", front_end.name)
        await stop.wait()
        log.info("stopping: finishing the photos already accepted")
        for name, task in chats.items():
            try:
                await task
            except Exception:
                log.exception("%s bot stopped with an error", name)


async def _serve_until(serving: AbstractAsyncContextManager[None], stop: asyncio.Event) -> None:
    async with serving:
        await stop.wait()


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
