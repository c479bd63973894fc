"""The web front end as ``animebot serve`` runs it: the aiohttp app of ``create_app`` on ``host:port``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from adapters.web.page import create_app
from bot.config import Settings
from bot.front_ends import FrontEnd
from bot.service import Service

logger = logging.getLogger(__name__)


@asynccontextmanager
async def serving(settings: Settings, service: Service) -> AsyncIterator[None]:
    """The page and the API on ``settings.host:settings.port`` while entered; on exit, the open requests finish."""
    runner = web.AppRunner(create_app(settings, service), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        logger.info("web UI and API on http://%s:%d", settings.host, settings.port)
        yield
    finally:
        await runner.cleanup()


FRONT_END = FrontEnd("web", start_order=0, serving=serving, essential=True)
