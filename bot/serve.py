"""``animebot serve`` and ``animebot worker``: the processes people run.

``serve``: the web UI + API, plus Telegram and Discord when their tokens are set, on one shared queue (the
in-process pool, or Redis with ``ANIMEBOT_REDIS_URL``, then also a worker host unless ``ANIMEBOT_WORKERS=0``).
``worker``: a worker host alone. SIGTERM and SIGINT stop taking work first, then drain, so every accepted photo
is answered. Every long-lived task is supervised (``bot/supervision.py``): a chat front end that fails, at boot or
later, is restarted with backoff; one that cannot recover stops the process in order with exit code 1.
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
from bot.front_ends import FrontEnd, installed_front_ends
from bot.redaction import redact_token_in_logs
from bot.service import Service
from bot.supervision import Attempt, GaveUp, Supervisor, until_stopped_or_given_up

log = logging.getLogger("animebot")
GAVE_UP_EXIT_CODE = 1


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
    ends (each finishes the photos it accepted), then the web server, then the pool.

    The chat front ends run supervised (restarted with backoff when they fail); raises ``GaveUp`` after the orderly
    shutdown when one of them, or another supervised task, could not recover."""
    service = Service(settings)
    supervisor = service.supervisor
    async with service, worker_host(settings, embedded=True, supervisor=supervisor), AsyncExitStack() as essentials:
        chats: list[asyncio.Task[None]] = []
        for front_end in installed_front_ends():
            if front_end.essential:
                serving = front_end.serving(settings, service)
                if serving is not None:
                    await essentials.enter_async_context(serving)
                    log.info("%s front end started", front_end.name)
                continue
            first = front_end.serving(settings, service)
            if first is not None:
                attempt = _serving_until(front_end, service, stop, first)
                chats.append(supervisor.start(front_end.name, attempt, up_at_start=False, stop=stop))
        await until_stopped_or_given_up(stop, supervisor)
        log.info("stopping: finishing the photos already accepted")
        await asyncio.gather(*chats)
    supervisor.check()


def _serving_until(
    front_end: FrontEnd, service: Service, stop: asyncio.Event, first: AbstractAsyncContextManager[None]
) -> Attempt:
    """Attempts of a chat front end: each serves from a new context (``first`` the first time) until ``stop``."""
    unused = [first]

    async def attempt() -> None:
        serving = unused.pop() if unused else front_end.serving(service.settings, service)
        if serving is None or stop.is_set():
            return
        async with serving:
            service.supervisor.ready(front_end.name)
            log.info("%s front end started", front_end.name)
            await stop.wait()

    return attempt


@asynccontextmanager
async def worker_host(
    settings: Settings, embedded: bool = False, supervisor: Supervisor | None = None
) -> AsyncIterator[Supervisor]:
    """A worker host running for the block (with ``embedded``: only in distributed mode with workers > 0); yields
    the supervisor of its loops (``supervisor``, else one of its own)."""
    supervisor = supervisor or Supervisor.from_settings(settings)
    if embedded and (settings.redis_url is None or settings.workers < 1):
        yield supervisor
        return
    from bot.cluster.host import WorkerHost

    host = WorkerHost(settings, supervisor=supervisor)
    await host.start()
    try:
        yield supervisor
    finally:
        log.info("draining the worker host")
        await host.stop()


async def work(settings: Settings, stop: asyncio.Event) -> None:
    """``animebot worker``: a worker host until ``stop``, then drain; raises ``GaveUp`` after draining when one of
    its loops could not recover."""
    if settings.redis_url is None:
        raise SystemExit("animebot worker needs ANIMEBOT_REDIS_URL (the Redis server the front ends use)")
    async with worker_host(settings) as supervisor:
        await until_stopped_or_given_up(stop, supervisor)
    supervisor.check()


def serve(settings: Settings, main: Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]] = run) -> int:
    """Run ``main`` (the front ends, or with ``work`` a worker host) until SIGINT/SIGTERM; the exit code: 0, or
    ``GAVE_UP_EXIT_CODE`` when a supervised task could not recover (so the container is restarted)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for secret in _secrets(settings):
        redact_token_in_logs(secret)

    async def until_signal() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await main(settings, stop)

    try:
        asyncio.run(until_signal())
    except GaveUp as error:
        log.critical("%s", error)
        return GAVE_UP_EXIT_CODE
    return 0
