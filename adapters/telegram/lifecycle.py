"""Running the Telegram application inside an asyncio loop someone else owns: long polling by default, a webhook
served by aiohttp when ``settings.telegram_webhook_url`` is set; and the ``FrontEnd`` ``animebot serve`` starts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update

from adapters.telegram.app import build_application
from adapters.telegram.context import TelegramApplication, albums_in
from bot.config import Settings
from bot.front_ends import FrontEnd
from bot.redaction import redact_token_in_logs
from bot.service import Service

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
POLL_TIMEOUT_SECONDS = 30
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_SECRET_CONTEXT = b"animebot telegram webhook secret"


@asynccontextmanager
async def running(application: TelegramApplication, settings: Settings) -> AsyncIterator[TelegramApplication]:
    """Run ``application`` inside the current loop: polling, or the webhook when ``telegram_webhook_url`` is set.

    On exit it stops taking updates, lets the handlers in flight finish (their jobs too) and shuts down.
    """
    await application.initialize()
    webhook: web.AppRunner | None = None
    try:
        await application.start()
        if settings.telegram_webhook_url:
            webhook = await start_webhook(application, settings, settings.telegram_webhook_url)
        elif application.updater is not None:
            await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES, timeout=POLL_TIMEOUT_SECONDS)
        logger.info("Telegram bot @%s is %s", application.bot.username, "on a webhook" if webhook else "polling")
        yield application
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        await albums_in(application.bot_data).wait_idle()  # albums still being collected or drawn
        if webhook is not None:
            await webhook.cleanup()
        if application.running:
            await application.stop()
        await application.shutdown()


async def run_telegram(settings: Settings, service: Service, stop_event: asyncio.Event) -> None:
    """Serve Telegram until ``stop_event`` is set (for ``animebot serve``, which owns the loop and the service)."""
    async with running(build_application(settings, service), settings):
        await stop_event.wait()


def webhook_secret(settings: Settings) -> str:
    """The secret Telegram sends with every webhook update: ``telegram_webhook_secret``, else an HMAC of the token.

    Telegram keeps one secret per bot, so every front end behind the load balancer must use the same one, and keep
    it across restarts: a random secret per process made each registration lock the other front ends out.
    """
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    if settings.telegram_token is None:
        raise ValueError("settings.telegram_token is not set")
    token = settings.telegram_token.get_secret_value().encode()
    return hmac.new(token, WEBHOOK_SECRET_CONTEXT, hashlib.sha256).hexdigest()  # [0-9a-f]{64}: what Telegram takes


async def start_webhook(application: TelegramApplication, settings: Settings, url: str) -> web.AppRunner:
    """Serve ``url``'s path on ``telegram_webhook_port`` and register ``url`` with Telegram with the shared secret.

    Registering is idempotent: every front end registers the same URL with the same secret.
    """
    secret = webhook_secret(settings)
    redact_token_in_logs(secret)
    path = urlsplit(url).path or "/"

    async def receive(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get(WEBHOOK_SECRET_HEADER, ""), secret):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), application.bot)
        except ValueError:
            return web.Response(status=400)
        await application.update_queue.put(update)
        return web.Response()

    app = web.Application()
    app.router.add_post(path, receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.telegram_webhook_port).start()
    await application.bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
    return runner


def serving(settings: Settings, service: Service) -> AbstractAsyncContextManager[None] | None:
    """Telegram while entered, when ``settings.telegram_token`` is set (for ``animebot serve``)."""
    if settings.telegram_token is None:
        return None
    return running_quietly(build_application(settings, service), settings)


@asynccontextmanager
async def running_quietly(application: TelegramApplication, settings: Settings) -> AsyncIterator[None]:
    """``running``, yielding nothing (the shape a ``FrontEnd`` serves in)."""
    async with running(application, settings):
        yield


FRONT_END = FrontEnd("telegram", start_order=1, serving=serving)
