"""A job's progress on Discord: following a job to its result while a message shows how far it got."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.eta import wait_phrase
from bot.i18n import ENGLISH, Translator
from bot.jobs import STAGE_LABELS, JobHandle, JobProgress, JobResult, JobStage
from bot.jobs import progress_label as stage_label

_log = logging.getLogger(__name__)

PROGRESS_EDIT_INTERVAL = 1.0  # seconds: edits of one message share a rate limit, so intermediate stages are skipped


def progress_label(event: JobProgress, _: Translator = ENGLISH) -> str | None:
    """The text shown while a job runs (while queued: its position and, when known, the estimated wait), or None
    for the final events (the result or error replaces it)."""
    if event.stage in (JobStage.DONE, JobStage.FAILED):
        return None
    if event.stage is JobStage.QUEUED and event.position:
        stage = _(STAGE_LABELS[event.stage])
        if event.wait_seconds is None:
            return _("{stage} (position {position})…", stage=stage, position=event.position)
        wait = _.say(wait_phrase(event.wait_seconds))
        return _(
            "{stage} (position {position}, about {wait} to wait)…", stage=stage, position=event.position, wait=wait
        )
    return f"{_.say(stage_label(event))}…"


async def follow(
    handle: JobHandle, label: Callable[[JobProgress], str | None], show: Callable[[str], Awaitable[Any]]
) -> JobResult:
    """Wait for the job's result while a side task shows its progress, at most once per ``PROGRESS_EDIT_INTERVAL``."""

    async def watch() -> None:
        loop = asyncio.get_running_loop()
        shown, shown_at = None, -math.inf
        async for event in handle.progress():
            text = label(event)
            if text is None or text == shown or loop.time() - shown_at < PROGRESS_EDIT_INTERVAL:
                continue
            try:
                await show(text)
            except discord.HTTPException:
                _log.debug("A Discord progress edit failed", exc_info=True)
            shown, shown_at = text, loop.time()

    watcher = asyncio.create_task(watch())
    try:
        return await handle.result()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
