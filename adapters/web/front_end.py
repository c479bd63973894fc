"""The web front end as ``animebot serve`` runs it: the aiohttp app of ``create_app`` on ``host:port``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from adapters.web.page import create_app, drain
from bot.config import Settings
from bot.front_ends import FrontEnd
from bot.service import Service

logger = logging.getLogger(__name__)


@asynccontextmanager
async def serving(settings: Settings, service: Service) -> AsyncIterator[None]:
    """The page and the API on ``settings.host:settings.port`` while entered; on exit, the accepted jobs are finished
    and answered (``page.drain``), then the open requests finish."""
    app = create_app(settings, service)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        logger.info("web UI and API on http://%s:%d", settings.host, settings.port)
        yield
        logger.info("web: answering the jobs already accepted, taking no new ones")
        await drain(app)
        logger.info("web: every accepted job answered; stopping")
    finally:
        await runner.cleanup()


FRONT_END = FrontEnd("web", start_order=0, serving=serving, essential=True)
