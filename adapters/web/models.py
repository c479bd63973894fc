"""The HTTP API's shapes, declared once: each model is a JSON answer (or the job form), its check and its schema.

``api.py`` answers with ``Model(...).model_dump(mode="json")``, ``jobform.py`` checks the form with ``JobForm``, and
``openapi.py`` builds the document's ``components.schemas`` from these same classes. The names a client must know
(the path prefix, the key header, the formats) live here too, for the same reason: the docs read them, never the
other way round. Field docstrings become the schema's descriptions.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from bot.jobs import JobStage

API_PREFIX = "/api/v1"
API_KEY_HEADER = "X-API-Key"
SOURCE_KEY_MAX_LENGTH = 64  # the caches' keys are 12-16 characters: anything longer names no kept photo

OutputFormat = Literal["jpeg", "png", "webp"]
ImageType = Literal["image/jpeg", "image/png", "image/webp"]
VideoType = Literal["video/mp4"]  # a clip (MP4, MOV, WebM or animated GIF in) comes back as H.264 MP4
JobState = Literal["queued", "running", "done", "failed"]

OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
IMAGE_TYPES: tuple[str, ...] = get_args(ImageType)
VIDEO_TYPES: tuple[str, ...] = get_args(VideoType)
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
FORMAT_ALIASES = {"jpg": "jpeg"}


class ApiModel(BaseModel):
    """A shape of the API: immutable, described by its docstrings."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)


class Error(ApiModel):
    """The body of every error answer, and the outcome of a failed job."""

    error: str
    """A stable machine-readable code, e.g. busy, rate_limited, too_many_waiting."""
    message: str
    """A plain sentence to show the person."""


class Style(ApiModel):
    """One installed style."""

    name: str
    title: str
    description: str
    licence: str
    """Terms of the style's weights."""
    default: bool
    thumbnail: str
    """Path of a small sample picture in this style."""


class StyleList(ApiModel):
    """The installed styles, the default first."""

    default: str
    styles: list[Style]


class Progress(ApiModel):
    """Where a job is: a ``progress`` event, and the progress part of a job."""

    stage: JobStage
    label: str
    """The stage in plain words."""
    position: int | None = Field(ge=0)
    """1-based place in the queue while queued, else null."""
    wait_seconds: float | None = Field(default=None, ge=0)
    """While queued: the estimated seconds until a worker takes the job, from recent service times (see README,
    "Queue wait estimate"); null when unknown (no job finished lately) or not queued."""
    fraction: float = Field(ge=0, le=1)
    """Done fraction of the stage."""
    frame: int | None = Field(default=None, ge=0)
    """A clip: frames drawn so far (else null)."""
    frames: int | None = Field(default=None, ge=0)
    """A clip: frames it has after the length and frame-rate caps (else null)."""


class Result(ApiModel):
    """A finished job's picture (or clip)."""

    url: str
    mime: ImageType | VideoType
    width: int
    height: int
    style: str
    strength: float
    seconds: float
    """Time the job took in the pool."""
    notes: list[str]
    """Plain remarks (e.g. resized)."""


class JobIdentity(ApiModel):
    """The first fields of a job (a base of ``Job``, so that they come first in its JSON)."""

    id: str
    state: JobState


class Job(Progress, JobIdentity):
    """A job: its id and state, its latest progress, what it was asked for, where to follow it, its outcome."""

    source: str
    """Key of the uploaded photo: send it as `source` to re-style without uploading again."""
    style: str
    strength: float
    faces: bool
    status_url: str
    events_url: str
    result_url: str
    result: Result | None
    error: Error | None


class Health(ApiModel):
    """The process is alive."""

    status: Literal["alive"] = "alive"


class Readiness(ApiModel):
    """Whether the server can take photos now, and why not."""

    ready: bool
    workers_alive: int
    workers: int
    styles: int
    """Installed styles."""
    reason: str | SkipJsonSchema[None] = None
    """Why the server is not ready (only when it is not)."""
    worker_details: dict[str, dict[str, str]] = {}
    """Each local worker process by id: what it said of itself once warm (its ``cores``, and per loaded model its
    precision path and why, as ``precision <model>``); empty when jobs run on worker hosts elsewhere."""


# --- the job form ----------------------------------------------------------------------------------------------


def _word_to_bool(value: object) -> object:
    """``faces`` as the form sends it: only the words of ``TRUE_WORDS`` and ``FALSE_WORDS``, in any case."""
    if not isinstance(value, str):
        return value
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("not a true or false word")


def _format_name(value: object) -> object:
    """``format`` in any case, ``jpg`` meaning ``jpeg``."""
    if not isinstance(value, str):
        return value
    name = value.strip().lower()
    return FORMAT_ALIASES.get(name, name)


class JobForm(ApiModel):
    """Either `image` (a new photo) or `source` (the key of a photo sent before), not both.

    Sent as multipart/form-data (or urlencoded); a blank field counts as a missing one.
    """

    image: bytes | SkipJsonSchema[None] = None
    """A photo (JPEG, PNG, WebP or HEIC) or a clip (MP4, MOV, WebM or animated GIF; cut to the server's longest
    clip, 20 s by default, and drawn at up to 15 fps). A clip comes back as H.264 MP4 with its sound."""
    source: Annotated[str, Field(max_length=SOURCE_KEY_MAX_LENGTH)] | SkipJsonSchema[None] = None
    """`source` of an earlier job."""
    style: Annotated[str, StringConstraints(strip_whitespace=True)] | SkipJsonSchema[None] = None
    """A style name from GET /api/v1/styles (default: the server's)."""
    strength: float = Field(default=1.0, ge=0, le=1)
    """0 keeps the photo."""
    faces: Annotated[bool, BeforeValidator(_word_to_bool)] = True
    """Repaint faces with the face model."""
    output_format: Annotated[OutputFormat, BeforeValidator(_format_name)] | SkipJsonSchema[None] = Field(
        default=None, alias="format"
    )
    """Output format (default: as input)."""


FORM_FIELDS = frozenset(field.alias or name for name, field in JobForm.model_fields.items())
