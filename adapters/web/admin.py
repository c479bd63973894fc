"""``/admin``: the operators' page, behind ``ANIMEBOT_API_KEY``.

No key configured: every ``/admin`` address answers 403. Otherwise ``/admin`` shows a form for the key; the right
key sets a cookie (``Secure``, ``HttpOnly``, ``SameSite=Strict``) holding an HMAC derived from the key, never the
key itself, and a wrong one is refused with 403. The page then polls ``/admin/overview.json`` (the same cookie,
or the key in ``X-API-Key`` for scripts): the queue and its estimated wait, the workers or worker hosts,
throughput over the last hour, the top users of the day, the bans and the audit log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import html
import logging
import time
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.web.api import SERVICE, SETTINGS
from adapters.web.models import API_KEY_HEADER
from bot.overview import queue_overview

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
COOKIE = "animebot_admin"
COOKIE_PATH = "/admin"
COOKIE_MAX_AGE = 8 * 3600  # a working day; the cookie stays valid until the key changes, so it should not outlive one
SESSION_LABEL = b"animebot admin session v1"
TOP_USERS = 10
AUDIT_ENTRIES = 50
MAX_KEY_CHARS = 1024

MESSAGE_OFF = "The admin page is off: set ANIMEBOT_API_KEY to turn it on."
MESSAGE_WRONG_KEY = "That key was not accepted."
MESSAGE_SIGN_IN = "Enter the server's API key to see the admin page."


def session_token(key: str) -> str:
    """The cookie's value for ``key``: an HMAC of a fixed label, so the key itself never leaves the server."""
    return hmac.new(key.encode(), SESSION_LABEL, hashlib.sha256).hexdigest()


def _key(request: web.Request) -> str | None:
    secret = request.app[SETTINGS].api_key
    return None if secret is None else secret.get_secret_value()


def signed_in(request: web.Request) -> bool:
    """True with the right session cookie, or the key itself in ``X-API-Key``."""
    key = _key(request)
    if key is None:
        return False
    cookie = request.cookies.get(COOKIE, "")
    header = request.headers.get(API_KEY_HEADER, "")
    return hmac.compare_digest(cookie.encode(), session_token(key).encode()) or (
        bool(header) and hmac.compare_digest(header.encode(), key.encode())
    )


def _page(name: str, message: str = "", status: int = 200) -> web.Response:
    text = (STATIC_DIR / name).read_text(encoding="utf-8").replace("{% message %}", html.escape(message))
    return web.Response(text=text, status=status, content_type="text/html", headers={"Cache-Control": "no-store"})


def _refuse_when_off(request: web.Request) -> None:
    if _key(request) is None:
        raise web.HTTPForbidden(text=MESSAGE_OFF)


async def admin_page(request: web.Request) -> web.Response:
    """GET /admin: the page when signed in, else the form for the key (403)."""
    _refuse_when_off(request)
    if signed_in(request):
        return _page("admin.html")
    return _page("admin-login.html", MESSAGE_SIGN_IN, status=403)


async def sign_in(request: web.Request) -> web.Response:
    """POST /admin/login (form field ``key``): the right key sets the session cookie and goes to /admin."""
    _refuse_when_off(request)
    form = await request.post()
    given = form.get("key")
    key = _key(request)
    if not isinstance(given, str) or len(given) > MAX_KEY_CHARS or key is None:
        return _page("admin-login.html", MESSAGE_WRONG_KEY, status=403)
    if not hmac.compare_digest(given.encode(), key.encode()):
        logger.warning("admin sign-in refused from %s", request.remote)
        return _page("admin-login.html", MESSAGE_WRONG_KEY, status=403)
    response = _see_other(COOKIE_PATH)
    response.set_cookie(
        COOKIE,
        session_token(key),
        path=COOKIE_PATH,
        max_age=COOKIE_MAX_AGE,
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    return response


async def sign_out(request: web.Request) -> web.Response:
    """POST /admin/logout: forget the session cookie."""
    response = _see_other(COOKIE_PATH)
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _plain(value: Any) -> Any:
    """A dataclass (or a list of them) from the stores as JSON-ready values; datetimes as ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(item) for name, item in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(name): _plain(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def _section(name: str, read: Awaitable[Any]) -> Any:
    """What ``read`` gives, JSON-ready; ``{"error": ...}`` when its store can't be read now."""
    try:
        return _plain(await read)
    except Exception:  # one store down (Redis away) must not blank the whole page
        logger.exception("admin page: could not read the %s", name)
        return {"error": f"Could not read the {name} just now."}


async def overview(request: web.Request) -> web.Response:
    """GET /admin/overview.json: everything the page shows (403 unless signed in)."""
    _refuse_when_off(request)
    if not signed_in(request):
        return web.json_response({"error": "forbidden", "message": MESSAGE_SIGN_IN}, status=403)
    service = request.app[SERVICE]
    body = {
        "generated_at": time.time(),
        "queue": _plain(queue_overview(service.queue, service.stats(), clustered=service.shared is not None)),
        "top_users": await _section("budgets", service.budgets.top_users(TOP_USERS)),
        "bans": await _section("bans", service.bans.list()),
        "audit": await _section("audit log", service.audit.recent(AUDIT_ENTRIES)),
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def add_admin_routes(router: web.UrlDispatcher) -> None:
    """Register ``/admin``, ``/admin/login``, ``/admin/logout`` and ``/admin/overview.json``."""
    router.add_get("/admin", admin_page, name="admin")
    router.add_post("/admin/login", sign_in, name="admin_login")
    router.add_post("/admin/logout", sign_out, name="admin_logout")
    router.add_get("/admin/overview.json", overview, name="admin_overview")
