"""How ``animebot serve`` finds its front ends without the core importing them.

Each front end (the web page and API, Telegram, Discord) is a package in ``adapters/`` that exports a
``FrontEnd`` and names it under the ``animebot.front_ends`` entry point group in ``pyproject.toml``. The core only
knows this contract: a front end, given the settings and the service, is either not configured (``None``) or an
async context manager that serves people while it is entered and, on exit, stops taking new work and finishes
what it accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    from bot.service import Service

ENTRY_POINT_GROUP = "animebot.front_ends"

Serving = Callable[[Settings, "Service"], AbstractAsyncContextManager[None] | None]


@dataclass(frozen=True)
class FrontEnd:
    """One front end: its name, where it starts (lower first; it stops in reverse), and how it runs.

    ``serving(settings, service)`` returns ``None`` when the front end is not configured (no token), else a
    context manager that serves while entered. An ``essential`` front end (the web server, which also carries
    ``/healthz``) is started before the others and a failure to start it ends ``animebot serve``; the chat front
    ends run beside it, and an error of theirs is logged.
    """

    name: str
    start_order: int
    serving: Serving
    essential: bool = False


def installed_front_ends() -> list[FrontEnd]:
    """Every front end registered under ``animebot.front_ends``, in start order.

    Raises ``RuntimeError`` when an entry point names something that is not a ``FrontEnd`` (a packaging mistake).
    """
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        front_end = point.load()
        if not isinstance(front_end, FrontEnd):
            raise RuntimeError(f"entry point {point.name} = {point.value} is not a bot.front_ends.FrontEnd")
        found.append(front_end)
    return sorted(found, key=lambda front_end: (front_end.start_order, front_end.name))
