"""The Telegram front end: photos in, anime pictures out, restyled in place from an inline keyboard.

Built on python-telegram-bot. ``build_application`` wires the handlers; ``running`` (or ``run_telegram``) starts
and stops them inside an asyncio loop someone else owns; ``FRONT_END`` is what ``animebot serve`` finds through the
``animebot.front_ends`` entry point. Each request becomes one ``Service.submit`` call (``uploads``, ``buttons``,
``albums``); nothing here decodes images.

One import order, bottom to top: ``texts``, ``status``, ``collector`` -> ``context`` -> ``chats`` -> ``looks`` ->
``uploads`` -> the handlers (``commands``, ``settings``, ``photos``, ``clips``, ``albums``, ``buttons``,
``stickers``, ``gate``) -> ``app`` (the handler table) -> ``lifecycle``.
"""

from __future__ import annotations

from adapters.telegram.app import build_application
from adapters.telegram.lifecycle import FRONT_END, run_telegram, running

__all__ = ["FRONT_END", "build_application", "run_telegram", "running"]
