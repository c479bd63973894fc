"""The web front end: the page at ``/`` and the HTTP API under ``/api/v1``, one aiohttp app."""

from adapters.web.front_end import FRONT_END
from adapters.web.page import create_app

__all__ = ["FRONT_END", "create_app"]
