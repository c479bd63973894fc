"""The API's edge: reading and checking a job form, and the error answer given when something is refused.

Everything a person can get wrong is caught here, before anything is queued: a missing or unreadable photo, an
upload over the byte or pixel limit, a bad strength, faces or format value. The form's fields and their checks are
the ``JobForm`` model's; the photo's bytes are checked here. ``ApiError`` carries the HTTP status, a stable code and
the plain sentence shown to the person.
"""

from __future__ import annotations

import asyncio
import io
import math
import sys
import warnings
from functools import cache

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from PIL import Image
from pydantic import ValidationError

from adapters.web.models import FORM_FIELDS, Error, JobForm
from bot.bans import Banned
from bot.budgets import BudgetExhausted
from bot.clips import looks_like_clip
from bot.config import Settings
from bot.i18n import DEFAULT_LANGUAGE, Translator
from bot.jobs import JobError, JobFailed, JobRejected, JobTimedOut, PersonQueueFull, QueueFull, RateLimited
from bot.service import too_large_message

BUSY_RETRY_SECONDS = 30
PERSON_BUSY_RETRY_SECONDS = 10  # this client's own photos are already running or next: a slot frees up soon
MAX_TEXT_FIELD_BYTES = 1024
MAX_FORM_PARTS = 64  # a form with more parts than this is refused unread
PIXELS_PER_MEGAPIXEL = 1_000_000
CHOICES = ("style", "strength", "faces", "format")  # the form's fields besides the photo, in the order checked

# Error classes of the service -> (HTTP status, code). Looked up along the MRO, most specific first.
JOB_ERROR_STATUS: dict[type[JobError], tuple[int, str]] = {
    Banned: (403, "banned"),
    BudgetExhausted: (429, "daily_budget_used"),  # Retry-After: the seconds until the budget resets
    PersonQueueFull: (429, "too_many_waiting"),  # the client's own limit: a server full for everyone is 503
    QueueFull: (503, "busy"),
    RateLimited: (429, "rate_limited"),
    JobRejected: (422, "rejected"),
    JobTimedOut: (504, "timed_out"),
    JobFailed: (500, "failed"),
    JobError: (500, "failed"),
}

MESSAGE_BAD_FORM = "The request could not be read. Send the fields as multipart/form-data."
MESSAGE_NOT_IMAGE = "That file is not a photo this bot can read. Please send a JPEG, PNG, WebP or HEIC image."
MESSAGE_NO_PHOTO = "Send a photo as the form field `image` (or the `source` key of a photo sent before)."
MESSAGE_BOTH = "Send either a new photo (`image`) or the key of an earlier one (`source`), not both."
MESSAGE_STRENGTH = "Style strength must be a number from 0 to 1, for example 0.8."
MESSAGE_FACES = "`faces` must be true or false."
MESSAGE_FORMAT = "`format` must be jpeg, png or webp."
MESSAGE_SOURCE_EXPIRED = "That photo is no longer kept on the server. Please upload it again."

# A field the ``JobForm`` model refuses -> the answer (a key longer than any names no kept photo, as an expired one).
FIELD_ERRORS: dict[str, tuple[int, str, str]] = {
    "source": (410, "source_expired", MESSAGE_SOURCE_EXPIRED),
    "strength": (400, "bad_strength", MESSAGE_STRENGTH),
    "faces": (400, "bad_faces", MESSAGE_FACES),
    "format": (400, "bad_format", MESSAGE_FORMAT),
}


class ApiError(Exception):
    """An error answer: HTTP status, a stable code, and the plain sentence."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    @classmethod
    def from_job_error(cls, error: JobError) -> ApiError:
        """The answer for a service error (busy, rate limited, rejected...)."""
        status, code = next(JOB_ERROR_STATUS[kind] for kind in type(error).__mro__ if kind in JOB_ERROR_STATUS)
        headers = {}
        if isinstance(error, RateLimited | BudgetExhausted):
            headers["Retry-After"] = str(math.ceil(error.retry_after or BUSY_RETRY_SECONDS))
        elif isinstance(error, PersonQueueFull):
            headers["Retry-After"] = str(PERSON_BUSY_RETRY_SECONDS)
        elif isinstance(error, QueueFull):
            headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
        return cls(status, code, error.message, headers)

    @classmethod
    def from_form_error(cls, error: ValidationError) -> ApiError:
        """The answer for the first field the ``JobForm`` model refused."""
        field = str(error.errors()[0]["loc"][0])
        status, code, message = FIELD_ERRORS.get(field, (400, "bad_form", MESSAGE_BAD_FORM))
        return cls(status, code, message)

    def body(self, language: str = DEFAULT_LANGUAGE) -> Error:
        """The JSON body, its sentence in ``language`` when the catalogue has it."""
        return Error(error=self.code, message=Translator(language).say(self.message))

    def response(self, language: str = DEFAULT_LANGUAGE) -> web.Response:
        """The JSON response (``language``: the client's, from ``Accept-Language``)."""
        return web.json_response(self.body(language).model_dump(mode="json"), status=self.status, headers=self.headers)


# --- reading and checking a job form -------------------------------------------------------------------------


@cache
def _register_heif() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()


def image_pixels(data: bytes) -> int | None:
    """Width times height, read from the header of an image Pillow can open (HEIC too); ``None`` if unreadable.

    Pillow refuses to open images far past its own decompression-bomb bound; those count as ``sys.maxsize``.
    """
    _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                return width * height
    except Image.DecompressionBombError:
        return sys.maxsize
    except Exception:  # Pillow and its plugins raise many kinds on junk: all mean "unreadable"
        return None


def check_image(data: bytes, settings: Settings) -> None:
    """Refuse, before queueing, uploads that are too large or not images; ``ApiError`` 413 / 422."""
    if len(data) > settings.max_upload_bytes:
        raise ApiError(413, "too_large", too_large_message(len(data), settings.max_upload_bytes))
    # Not the job's kind (the core infers that): only which check applies here. Pillow cannot read a video, and
    # a clip, broken or not, is the worker's to judge, so it must not be answered `not_an_image` here.
    if looks_like_clip(data):
        return
    pixels = image_pixels(data)
    if pixels is None:
        raise ApiError(422, "not_an_image", MESSAGE_NOT_IMAGE)
    if pixels > settings.max_pixels:
        megapixels = settings.max_pixels / PIXELS_PER_MEGAPIXEL
        raise ApiError(
            413,
            "too_many_pixels",
            f"That photo has more than {megapixels:g} megapixels, the most this server accepts. "
            "Please send a smaller photo.",
        )


async def _read_part(part: BodyPartReader, limit: int) -> bytes | None:
    """The part's bytes, or ``None`` as soon as it passes ``limit`` (the rest is never read)."""
    data = bytearray()
    while chunk := await part.read_chunk():
        data.extend(chunk)
        if len(data) > limit:
            return None
    return bytes(data)


async def _read_multipart(request: web.Request, settings: Settings) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    reader = await request.multipart()
    parts = 0
    while (part := await reader.next()) is not None:
        parts += 1
        if not isinstance(part, BodyPartReader) or parts > MAX_FORM_PARTS:
            raise ApiError(400, "bad_form", MESSAGE_BAD_FORM)
        name = part.name or ""
        limit = settings.max_upload_bytes if name == "image" else MAX_TEXT_FIELD_BYTES
        data = await _read_part(part, limit)
        if data is None and name == "image":
            size = max(request.content_length or 0, limit + 1)
            raise ApiError(413, "too_large", too_large_message(size, limit))
        if data is None:
            # The name is the client's: bytes that are not UTF-8 arrive as lone surrogates, which no JSON can carry.
            shown = name[:40].encode("utf-8", "replace").decode()
            raise ApiError(400, "field_too_long", f"The field `{shown}` is too long.")
        if name in FORM_FIELDS:
            fields.setdefault(name, data)
    return fields


async def read_fields(request: web.Request, settings: Settings) -> dict[str, bytes]:
    """The form's known fields (first value of each); multipart is streamed so an oversized upload stops early."""
    try:
        if request.content_type == "multipart/form-data":
            return await _read_multipart(request, settings)
        form = await request.post()  # urlencoded (bounded by client_max_size), or nothing for other types
    except web.HTTPRequestEntityTooLarge:
        size = request.content_length or settings.max_upload_bytes + 1
        raise ApiError(413, "too_large", too_large_message(size, settings.max_upload_bytes)) from None
    except (ValueError, AssertionError, RuntimeError, HttpProcessingError):  # malformed bodies
        raise ApiError(400, "bad_form", MESSAGE_BAD_FORM) from None
    return {name: value.encode() for name, value in form.items() if name in FORM_FIELDS and isinstance(value, str)}


def _text(fields: dict[str, bytes], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise ApiError(400, f"bad_{name}", f"The field `{name}` must be text.") from None


async def read_job_form(request: web.Request, settings: Settings) -> JobForm:
    """The job form of ``request`` (multipart or urlencoded), checked; ``ApiError`` 400 / 410 / 413 / 422."""
    fields = await read_fields(request, settings)
    image = fields.get("image")
    source = _text(fields, "source") or None
    if image is not None and source:
        raise ApiError(400, "image_and_source", MESSAGE_BOTH)
    if image is None and not source:
        raise ApiError(400, "no_photo", MESSAGE_NO_PHOTO)
    if image is not None:  # Pillow reads the header (a HEIC's container too): off the event loop
        await asyncio.to_thread(check_image, image, settings)
    choices = {name: text for name in CHOICES if (text := _text(fields, name)) is not None and text.strip()}
    try:
        return JobForm.model_validate({"image": image, "source": source, **choices})
    except ValidationError as error:
        raise ApiError.from_form_error(error) from None
