"""Helpers for the web tests: settings for a small real service, photos as bytes, an SSE reader, a live server."""

from __future__ import annotations

import io
import json
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import ClientResponse, web
from PIL import Image

from adapters.web import create_app
from bot.config import Settings
from bot.service import Service

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SMALL_SIDE = 128  # the engine upscales anything smaller than 256 px to 256 px, so this is cheap and realistic
JOB_WAIT_SECONDS = 300.0  # a loaded 2-core CI box can take tens of seconds per photo with faces on


def small_settings(weights_dir: Path, **overrides: Any) -> Settings:
    """Settings for a one-worker service on small images; never reads a ``.env`` file, and keeps its state (settings,
    budgets, bans, kept photos) in a fresh folder unless ``data_dir`` is given, never in the user's data dir, where
    one test's counts would show up in another's and in the next run's."""
    values: dict[str, Any] = {
        "weights_dir": weights_dir,
        "data_dir": Path(tempfile.mkdtemp(prefix="animebot-data-")),
        "workers": 1,
        "working_size": 256,
        "rate_limit_per_minute": 10_000,
        "job_timeout": JOB_WAIT_SECONDS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def jpeg_bytes(pixels: np.ndarray, width: int = SMALL_SIDE, height: int | None = None) -> bytes:
    """A JPEG of ``pixels`` ((H, W, 3) uint8) resized to ``width`` x ``height`` (aspect kept when omitted)."""
    image = Image.fromarray(pixels)
    if height is None:
        height = round(image.height * width / image.width)
    out = io.BytesIO()
    image.resize((width, height), Image.Resampling.LANCZOS).save(out, "JPEG", quality=90)
    return out.getvalue()


def heic_bytes(pixels: np.ndarray, width: int = SMALL_SIDE) -> bytes:
    """A HEIC (what iPhones send) of ``pixels`` ((H, W, 3) uint8), ``width`` px wide."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    image = Image.fromarray(pixels)
    out = io.BytesIO()
    image.resize((width, round(image.height * width / image.width))).save(out, format="HEIF")
    return out.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of encoded image bytes (decoding them fully, so broken data fails)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event."""

    event: str
    data: Any
    id: str | None


async def read_events(response: ClientResponse) -> list[ServerEvent]:
    """Every event of an SSE response until the server closes it (pings are skipped)."""
    events: list[ServerEvent] = []
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if "data" in fields:
                events.append(ServerEvent(fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return events


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class SeenRequest:
    """A request as the server received it (the body itself is left for the app to read)."""

    method: str
    path: str
    content_length: int | None


@asynccontextmanager
async def live_server(
    settings: Settings, service: Service, seen: list[SeenRequest] | None = None
) -> AsyncIterator[str]:
    """The real app on a real port of 127.0.0.1 (for a browser or a fuzzer); yields its base URL.

    With ``seen``, every request's method, path and Content-Length is appended to it.
    """
    app = create_app(settings, service)
    if seen is not None:

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            seen.append(SeenRequest(request.method, request.path, request.content_length))
            return await handler(request)

        app.middlewares.insert(0, record)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
