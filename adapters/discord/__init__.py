"""The Discord front end: ``/anime``, the "Animefy" message menu, ``/settings`` and ``/forget``, and the result's
re-style and sticker buttons.

One import order, bottom to top: ``i18n`` and ``texts``; ``checks`` (allow-list, owner, a person's key);
``client`` (``AnimeClient`` and its command tree, which know no handler); ``progress`` and ``orders`` (the one
``Service.submit`` call); ``stickers``, ``result`` and ``settings``; ``commands``; ``app`` (``build_client``, the
only module importing the handlers); ``front_end`` (``serve`` and ``FRONT_END`` for ``animebot serve``).
"""

from adapters.discord.app import build_client
from adapters.discord.client import AnimeClient
from adapters.discord.front_end import FRONT_END, serve
from adapters.discord.texts import NO_IMAGE, NOT_ALLOWED, NOT_YOURS, SOURCE_EXPIRED

__all__ = [
    "FRONT_END",
    "NOT_ALLOWED",
    "NOT_YOURS",
    "NO_IMAGE",
    "SOURCE_EXPIRED",
    "AnimeClient",
    "build_client",
    "serve",
]
