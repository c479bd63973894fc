"""The typed context every Telegram handler gets: the service, the running re-styles and the albums being gathered.

As in python-telegram-bot's ``contexttypesbot.py`` example: ``BotContext`` is handed to ``ContextTypes`` when the
application is built, and its properties read the application's ``bot_data``, which ``keep_in_bot_data`` fills
once. The service is never a module global; per-chat state lives in the service's settings store, not here.
"""

from __future__ import annotations

from typing import Any, cast

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from adapters.telegram.collector import AlbumCollector
from bot.restyle import LatestPress
from bot.service import Service

SERVICE_KEY = "service"
RESTYLES_KEY = "restyles"
ALBUMS_KEY = "albums"

BotData = dict[Any, Any]
ChatPress = tuple[int, int]  # (chat id, message id): the message a button press re-styles


class BotContext(CallbackContext[ExtBot[int], dict[Any, Any], dict[Any, Any], BotData]):
    """A ``CallbackContext`` with typed access to what every handler shares."""

    @property
    def service(self) -> Service:
        """The service every front end talks to."""
        return cast(Service, self.bot_data[SERVICE_KEY])

    @property
    def restyles(self) -> LatestPress[ChatPress]:
        """The button presses running, one per message: a newer press supersedes an older one."""
        return cast(LatestPress[ChatPress], self.bot_data[RESTYLES_KEY])

    @property
    def albums(self) -> AlbumCollector[BotContext]:
        """The albums being gathered."""
        return albums_in(self.bot_data)


# ExtBot[int]: the bot's calls go through an ``AIORateLimiter`` (its per-call argument is an int). No job queue is
# used (``JobQueue`` needs APScheduler, which is not installed), so its type says nothing.
TelegramApplication = Application[ExtBot[int], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]
CONTEXT_TYPES = ContextTypes(context=BotContext)


def keep_in_bot_data(bot_data: BotData, service: Service, albums: AlbumCollector[BotContext]) -> None:
    """Fill a new application's ``bot_data`` with what ``BotContext`` reads."""
    bot_data[SERVICE_KEY] = service
    bot_data[RESTYLES_KEY] = LatestPress()
    bot_data[ALBUMS_KEY] = albums


def albums_in(bot_data: BotData) -> AlbumCollector[BotContext]:
    """The albums being gathered by the application whose ``bot_data`` this is (also for stopping it)."""
    return cast(AlbumCollector[BotContext], bot_data[ALBUMS_KEY])
