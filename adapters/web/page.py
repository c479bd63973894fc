"""The web server: the page, its gallery and style thumbnails, health and metrics, and the ``/api/v1`` sub-app.

``create_app(settings, service)`` builds everything; the caller owns the service (starts and stops it) and runs
the app (``web.AppRunner`` / ``web.TCPSite`` on ``settings.host``:``settings.port``).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from PIL import Image, ImageOps
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.web.admin import add_admin_routes
from adapters.web.api import JOBS, SERVICE, SETTINGS, create_api_app, model_response
from adapters.web.models import API_PREFIX, Health, Readiness
from adapters.web.page_text import page_language, render_page
from bot.config import Settings
from bot.jobs import JobError, QueueFull, RateLimited
from bot.metrics import Metrics
from bot.orders import Order
from bot.service import Service

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
EXAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CREDITS_FILE = "SOURCES.md"
PREVIEW_LONG_SIDE = 480
THUMBNAIL_SIDE = 256
PREVIEW_QUALITY = 85
THUMBNAIL_USER = "web:thumbnails"
THUMBNAIL_RETRY_SECONDS = 10.0
THUMBNAIL_MAX_ATTEMPTS = 30
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the small text fields around the image
COLLECT_SECONDS = 10.0  # a stopping server waits this long for clients following a finished job to come for it

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


# --- pictures for the page (pure functions of bytes) ---------------------------------------------------------


def _upright_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def _jpeg(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=PREVIEW_QUALITY)
    return out.getvalue()


def shrink_to_jpeg(path: Path, long_side: int) -> bytes:
    """A JPEG of the image file scaled so its long side is at most ``long_side`` px (EXIF rotation applied)."""
    picture = _upright_rgb(path)
    picture.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return _jpeg(picture)


def square_jpeg(path: Path, side: int) -> bytes:
    """A ``side`` x ``side`` JPEG cut from the middle of the image file (for style thumbnails)."""
    return _jpeg(ImageOps.fit(_upright_rgb(path), (side, side), Image.Resampling.LANCZOS))


# --- the examples gallery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One bundled photo."""

    name: str
    title: str
    path: Path


class ExampleGallery:
    """The photos in the examples folder (listed once, at startup), with small previews made on first request."""

    def __init__(self, folder: Path) -> None:
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        self.examples = {
            path.name: Example(path.name, path.stem.replace("_", " ").replace("-", " ").capitalize(), path)
            for path in files
            if path.is_file() and path.suffix.lower() in EXAMPLE_SUFFIXES
        }
        credits = folder / CREDITS_FILE
        self.credits = credits if credits.is_file() else None
        self._previews: dict[str, bytes] = {}

    def listing(self) -> list[dict[str, str]]:
        """The examples as the page lists them."""
        return [
            {
                "name": example.name,
                "title": example.title,
                "url": f"/ui/examples/{example.name}",
                "preview": f"/ui/examples/{example.name}/preview",
            }
            for example in self.examples.values()
        ]

    async def preview(self, name: str) -> bytes:
        """A small JPEG of the example (``KeyError`` if there is no such example)."""
        if name not in self._previews:
            self._previews[name] = await asyncio.to_thread(shrink_to_jpeg, self.examples[name].path, PREVIEW_LONG_SIDE)
        return self._previews[name]

    def sample(self) -> Path | None:
        """The photo the style thumbnails are made from (the first example)."""
        return next(iter(self.examples.values())).path if self.examples else None


# --- style thumbnails ----------------------------------------------------------------------------------------


class StyleThumbnails:
    """A sample picture per style, made by the service itself from one example photo, kept in memory.

    Nothing runs until the first thumbnail is asked for; then one background task makes them one style at a
    time (one queue slot at most), waiting and retrying while the queue is busy.
    """

    def __init__(self, service: Service, sample: Path | None) -> None:
        self._service = service
        service.budgets.exempt(THUMBNAIL_USER)  # the gallery's own pictures spend no one's daily budget
        self._sample = sample
        self._pictures: dict[str, bytes] = {}
        self._failed: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def get(self, style: str) -> tuple[str, bytes | None]:
        """(``ready`` | ``pending`` | ``unavailable``, the JPEG when ready); starts the work on first call."""
        if style in self._pictures:
            return "ready", self._pictures[style]
        if self._sample is None or style in self._failed or style not in self._style_names():
            return "unavailable", None
        if self._task is None:
            self._task = asyncio.create_task(self._make_all(), name="style-thumbnails")
        return ("unavailable" if self._task.done() else "pending"), None

    async def close(self) -> None:
        """Stop making thumbnails."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _style_names(self) -> list[str]:
        return [style.name for style in self._service.styles()]

    async def _make_all(self) -> None:
        assert self._sample is not None
        try:
            photo = await asyncio.to_thread(square_jpeg, self._sample, THUMBNAIL_SIDE)
        except (OSError, ValueError):
            logger.exception("cannot read the thumbnail sample %s", self._sample)
            return
        for style in self._style_names():
            try:
                self._pictures[style] = await self._make(photo, style)
            except JobError as error:
                logger.warning("no thumbnail for style %s: %s", style, error.message)
                self._failed.add(style)

    async def _make(self, photo: bytes, style: str) -> bytes:
        order = Order(user=THUMBNAIL_USER, image=photo, style=style, output_format="jpeg", keep=False)
        attempts = 1
        while True:
            try:
                accepted = await self._service.submit(order)
                return (await accepted.handle.result()).image
            except (QueueFull, RateLimited):  # people come first: wait for a quiet moment
                if attempts == THUMBNAIL_MAX_ATTEMPTS:
                    raise
                attempts += 1
                await asyncio.sleep(THUMBNAIL_RETRY_SECONDS)


METRICS = web.AppKey("metrics", Metrics)
GALLERY = web.AppKey("gallery", ExampleGallery)
API = web.AppKey("api", web.Application)  # the /api/v1 sub-application (its job store, for readiness and drain)
THUMBNAILS = web.AppKey("thumbnails", StyleThumbnails)


# --- handlers ------------------------------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    """GET /: the page, in ``?lang=`` or the browser's language (``Accept-Language``)."""
    language = page_language(request.query.get("lang"), request.headers.get("Accept-Language"))
    return web.Response(
        text=render_page(STATIC_DIR / "index.html", language),
        content_type="text/html",
        headers={"Cache-Control": "no-cache", "Content-Language": language, "Vary": "Accept-Language"},
    )


async def page_config(request: web.Request) -> web.Response:
    """GET /ui/config: what the page needs to know (never the key itself, only whether one is needed)."""
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "api_key_required": settings.api_key is not None,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "job_timeout": settings.job_timeout,
            "default_style": settings.default_style,
            "clip_max_seconds": settings.clip_max_seconds,
        }
    )


async def examples(request: web.Request) -> web.Response:
    """GET /ui/examples: the gallery."""
    gallery = request.app[GALLERY]
    return web.json_response(
        {"examples": gallery.listing(), "credits": "/ui/examples/credits" if gallery.credits else None}
    )


def _example(request: web.Request) -> Example:
    example = request.app[GALLERY].examples.get(request.match_info["name"])
    if example is None:
        raise web.HTTPNotFound(text="There is no example photo of that name.")
    return example


async def example_photo(request: web.Request) -> web.FileResponse:
    """GET /ui/examples/{name}: the photo itself."""
    return web.FileResponse(_example(request).path)


async def example_preview(request: web.Request) -> web.Response:
    """GET /ui/examples/{name}/preview: a small JPEG of the photo."""
    example = _example(request)
    data = await request.app[GALLERY].preview(example.name)
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "public, max-age=3600"})


async def example_credits(request: web.Request) -> web.FileResponse:
    """GET /ui/examples/credits: where the example photos come from, and their licences."""
    credits = request.app[GALLERY].credits
    if credits is None:
        raise web.HTTPNotFound(text="No credits file is bundled.")
    return web.FileResponse(credits, headers={"Content-Type": "text/plain; charset=utf-8"})


async def thumbnail(request: web.Request) -> web.StreamResponse:
    """GET /ui/thumbnails/{style}: the style's sample picture, or a placeholder (header ``X-Thumbnail``)."""
    state, picture = request.app[THUMBNAILS].get(request.match_info["style"])
    headers = {"X-Thumbnail": state, "Cache-Control": "no-store"}
    if picture is None:
        return web.FileResponse(STATIC_DIR / "placeholder.svg", headers=headers)
    return web.Response(body=picture, content_type="image/jpeg", headers=headers)


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process is alive and serving."""
    return model_response(Health())


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 when a worker is up (its engine built; in distributed mode on any worker host, with Redis
    reachable), at least one style is installed, and no supervised task (a chat front end, a Redis loop) is down."""
    service = request.app[SERVICE]
    stats = service.stats()
    styles = len(service.styles())
    alive = int(stats.get("workers_alive", 0))
    reasons = []
    if stats.get("redis_connected") == 0:
        reasons.append("Redis is unreachable: no job can be queued.")
    if alive == 0:
        reasons.append("No worker process is ready yet.")
    if styles == 0:
        reasons.append("No style is installed: run `animebot weights pull`.")
    if request.app[API][JOBS].closing:
        reasons.append("Stopping: answering the jobs already accepted, taking no new ones.")
    down = service.supervisor.down()
    if down:
        reasons.append(f"Restarting after a failure: {', '.join(down)}.")
    readiness = Readiness(
        ready=not reasons,
        workers_alive=alive,
        workers=int(stats.get("workers", 0)),
        styles=styles,
        reason=" ".join(reasons) if reasons else None,
        worker_details=service.worker_details(),
    )
    return web.json_response(readiness.model_dump(mode="json", exclude_none=True), status=503 if reasons else 200)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Same-origin everything: the page loads nothing from elsewhere and may not be framed."""
    response = await handler(request)
    if not response.prepared:
        response.headers.update(PAGE_HEADERS)
    return response


# --- the application -----------------------------------------------------------------------------------------


def create_app(settings: Settings, service: Service) -> web.Application:
    """The whole web server: the page at ``/``, the API at ``/api/v1``, ``/healthz``, ``/readyz``, ``/metrics``.

    The service must be started by the caller (it is shared with the chat adapters).
    """
    app = web.Application(
        client_max_size=settings.max_upload_bytes + FORM_OVERHEAD_BYTES, middlewares=[security_headers]
    )
    app[SETTINGS] = settings
    app[SERVICE] = service
    app[METRICS] = Metrics.create(service)

    async def gallery_and_thumbnails(app: web.Application) -> AsyncIterator[None]:
        gallery = ExampleGallery(settings.examples_dir)
        logger.info("web gallery: %d example photos in %s", len(gallery.examples), settings.examples_dir)
        app[GALLERY] = gallery
        app[THUMBNAILS] = StyleThumbnails(service, gallery.sample())
        yield
        await app[THUMBNAILS].close()

    app.cleanup_ctx.append(gallery_and_thumbnails)
    router = app.router
    router.add_get("/", index, name="index")
    router.add_static("/static", STATIC_DIR, name="static")
    router.add_get("/ui/config", page_config, name="page_config")
    router.add_get("/ui/examples", examples, name="examples")
    router.add_get("/ui/examples/credits", example_credits, name="example_credits")
    router.add_get("/ui/examples/{name}", example_photo, name="example")
    router.add_get("/ui/examples/{name}/preview", example_preview, name="example_preview")
    router.add_get("/ui/thumbnails/{style}", thumbnail, name="thumbnail")
    router.add_get("/healthz", healthz, name="healthz")
    router.add_get("/readyz", readyz, name="readyz")
    router.add_get("/metrics", metrics, name="metrics")
    add_admin_routes(router)  # /admin, behind ANIMEBOT_API_KEY
    app[API] = create_api_app(settings, service, on_stage_time=app[METRICS].time_stage)
    app.add_subapp(API_PREFIX, app[API])
    return app


async def drain(app: web.Application) -> None:
    """Before the server stops: take no new job (``/readyz`` turns red), finish the accepted ones and give their
    outcomes to the clients who come for them (bounded by the job timeout plus one lease, then ``COLLECT_SECONDS``)."""
    settings = app[SETTINGS]
    await app[API][JOBS].drain(settings.job_timeout + settings.lease_seconds, COLLECT_SECONDS)
