"""The web front end: the page at ``/`` and the HTTP API under ``/api/v1``, one aiohttp app."""

from adapters.web.page import create_app

__all__ = ["create_app"]
