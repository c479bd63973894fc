"""Discord as ``animebot serve`` runs it: logged in and connected while entered, closed on exit.

Run it inside an already running loop::

    client = build_client(settings, service)
    task = asyncio.create_task(serve(client))
    ...
    await client.close()
    await task
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from adapters.discord.app import build_client
from adapters.discord.client import AnimeClient
from bot.config import Settings
from bot.front_ends import FrontEnd
from bot.redaction import redact_token_in_logs
from bot.service import Service


async def serve(client: AnimeClient) -> None:
    """Log in and stay connected until ``client.close()``; run it as a task beside the other front ends."""
    token = client.settings.discord_token
    if token is None:
        raise ValueError("ANIMEBOT_DISCORD_TOKEN is not set")
    redact_token_in_logs(token.get_secret_value())
    await client.start(token.get_secret_value())


def serving(settings: Settings, service: Service) -> AbstractAsyncContextManager[None] | None:
    """Discord while entered, when ``settings.discord_token`` is set (for ``animebot serve``)."""
    if settings.discord_token is None:
        return None
    return connected(build_client(settings, service))


@asynccontextmanager
async def connected(client: AnimeClient) -> AsyncIterator[None]:
    """``client`` logged in and connected while entered; closed, and its connection ended, on exit.

    It logs in before it is entered, so a login failing at boot (Discord unreachable, DNS down) raises here and
    ``animebot serve``'s supervisor retries it, instead of ending a background task nobody watches.
    """
    token = client.settings.discord_token
    if token is None:
        raise ValueError("ANIMEBOT_DISCORD_TOKEN is not set")
    redact_token_in_logs(token.get_secret_value())
    try:
        await client.login(token.get_secret_value())
    except BaseException:
        await client.close()
        raise
    task = asyncio.create_task(client.connect())
    try:
        yield
    finally:
        await client.close()
        await task


FRONT_END = FrontEnd("discord", start_order=2, serving=serving)
