"""A fuzz campaign on the three doors a stranger's bytes come through: image decoding, clip reading (the plan, the
chunks' frames and the join with the sound), and the web API's multipart form.

Every input must give a result or the engine's typed error (``animegan.errors``), or for the API a JSON error
``{"error", "message"}``: never another exception, never a 5xx but the stub service's deliberate "busy". Inputs are
hypothesis-driven mutations (bytes set, bits flipped, cut, inserted, deleted, repeated, header integers made huge
or zero) of real seeds: the photos of ``examples/`` in every format we read, small clips made from them
(tests/support_clips.py), and forms as the page and ``curl -F`` send them.

The campaign is bounded in time: about ``FUZZ_SECONDS`` in all, a share per door. Each door runs hypothesis in
batches of ``BATCH`` inputs (fresh random ones each batch) until its share is spent, so a failure is still shrunk
and printed as hypothesis does. ``ANIMEBOT_FUZZ_SECONDS`` runs a longer campaign; ``ANIMEBOT_FUZZ_REPORT`` names a
JSON file the counts are written to. The figures are in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from adapters.web.api import create_api_app
from adapters.web.models import Error
from animegan.clip import ClipLimits, read_frames
from animegan.errors import AnimeganError
from animegan.images import decode_image
from animegan.mp4 import encode_segment, join_segments
from animegan.video import plan_clip
from bot.config import Settings
from bot.jobs import QueueFull
from tests.support_clips import make_gif, make_mp4, make_webm, pan_frames, remux, zoom_frames

FUZZ_SECONDS = float(os.environ.get("ANIMEBOT_FUZZ_SECONDS", "60"))
# Each door's share of the time; clips cost the most per input (decode, encode, join).
SHARES = {"images": 0.25, "clips": 0.5, "web": 0.25}
BATCH = settings(
    max_examples=25,  # a door's time is checked between batches: it overruns its share by one batch at most
    deadline=None,
    database=None,  # fresh inputs every run; a failure prints its own reproduction
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
QUIET = pytest.mark.filterwarnings(
    "ignore::UserWarning",  # Pillow warns about the junk it skips over; only exceptions matter here
    "ignore::aiohttp.multipart.BadContentDispositionHeader",  # and so does aiohttp, about mangled part headers
    "ignore::aiohttp.multipart.BadContentDispositionParam",
    "ignore::PIL.Image.DecompressionBombWarning",
    "ignore::hypothesis.errors.HypothesisWarning",  # a failing input is printed whole, however long
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED_SIDE = 96  # photos re-encoded this wide: decoding one is ~1 ms, so the time goes into many inputs
MAX_PIXELS = 4_000_000  # a mutated header claiming more is refused before decoding: the run stays fast
CLIP_LIMITS = ClipLimits(max_seconds=2.0, max_source_pixels=640 * 480)  # the same checks, on a smaller scale
HEAD_BYTES = 512  # half the mutations land in a file's first bytes, where the headers are
INTERESTING_INTEGERS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)
API_ERROR_STATUSES = {400, 401, 404, 405, 410, 413, 415, 422, 429, 503}
UPLOAD_LIMIT = 64 * 1024  # the form's byte limit here, so the 413 path is fuzzed too
FORM_NAMES = ("image", "source", "style", "strength", "faces", "format")


@dataclass
class Door:
    """One target's share of the time and what its inputs gave."""

    seconds: float
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def tried(self) -> int:
        return sum(self.outcomes.values())

    def campaign(self, inputs: st.SearchStrategy[Any], check: Callable[[Any], str]) -> None:
        """Run ``check`` on inputs drawn from ``inputs`` in batches until this door's time is spent; ``check``
        returns the outcome to count (or fails the test)."""

        @BATCH
        @given(inputs)
        def batch(value: Any) -> None:
            self.outcomes[check(value)] += 1

        ends = time.monotonic() + self.seconds
        while time.monotonic() < ends:
            batch()
        assert self.tried > 0


DOORS = {name: Door(FUZZ_SECONDS * share) for name, share in SHARES.items()}


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """After the campaign: the counts, printed (``pytest -s``) and written to ``ANIMEBOT_FUZZ_REPORT`` if set."""
    yield
    figures = {name: {"tried": door.tried, **door.outcomes} for name, door in DOORS.items()}
    print("\nfuzz campaign:", json.dumps(figures))
    if path := os.environ.get("ANIMEBOT_FUZZ_REPORT"):
        Path(path).write_text(json.dumps(figures, indent=2))


# --- mutations -----------------------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes]) -> bytes:
    """A seed with one to eight mutations; positions favour the head of the file, where the headers are."""
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        limit = len(data) - 1 if draw(st.booleans()) else min(len(data) - 1, HEAD_BYTES)
        at = draw(st.integers(0, limit))
        kind = draw(st.sampled_from(["set", "flip", "cut", "insert", "delete", "repeat", "integer"]))
        if kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 256))]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 1024))]
        else:
            value = draw(st.sampled_from(INTERESTING_INTEGERS))
            order = draw(st.sampled_from(["big", "little"]))
            data[at : at + 4] = value.to_bytes(4, order)
    return bytes(data)


# --- seeds ---------------------------------------------------------------------------------------------------


def photo(name: str) -> np.ndarray:
    with Image.open(EXAMPLES / name) as image:
        return np.asarray(image.convert("RGB"))


def image_seeds() -> dict[str, bytes]:
    """Every example photo, as it is and re-encoded small in each format people send (and a few odd modes)."""
    seeds: dict[str, bytes] = {}
    formats: dict[str, dict[str, Any]] = {
        "JPEG": {"quality": 90},
        "PNG": {},
        "WEBP": {"quality": 80},
        "GIF": {},
        "TIFF": {},
        "BMP": {},
        "HEIF": {"quality": 60},
    }
    for path in sorted(EXAMPLES.glob("*.jpg")):
        seeds[path.name] = path.read_bytes()
        small = Image.open(path).convert("RGB")
        small = small.resize((SEED_SIDE, round(small.height * SEED_SIDE / small.width)))
        for fmt, params in formats.items():
            buffer = io.BytesIO()
            small.save(buffer, fmt, **params)
            seeds[f"{path.stem}.{fmt.lower()}"] = buffer.getvalue()
    sixteen = io.BytesIO()
    Image.fromarray(np.asarray(small.convert("L")).astype(np.uint16) * 257).save(sixteen, "PNG")
    seeds["grey16.png"] = sixteen.getvalue()
    transparent = io.BytesIO()
    small.convert("RGBA").save(transparent, "PNG")
    seeds["rgba.png"] = transparent.getvalue()
    animated = io.BytesIO()
    small.save(animated, "GIF", save_all=True, append_images=[small.rotate(90)], duration=100)
    seeds["animated.gif"] = animated.getvalue()
    return seeds


def clip_seeds() -> dict[str, bytes]:
    """Small clips of the example photos in each container and codec we read, with sound where it can be."""
    picture = photo("chelsea.jpg")
    mp4 = make_mp4(pan_frames(picture, (64, 48), 6), 6, 12, audio_seconds=0.5, audio_delay=0.1)
    return {
        "h264-aac.mp4": mp4,
        "h264-aac.mkv": remux(mp4, "matroska"),
        "faststart.mp4": make_mp4(zoom_frames(photo("astronaut.jpg"), (64, 64), 5), 5, 10, faststart=True),
        "vp8-opus.webm": make_webm(pan_frames(picture, (64, 48), 6), 6, 12, audio_seconds=0.5),
        "animation.gif": make_gif(zoom_frames(photo("coffee.jpg"), (64, 48), 4), 4, 8),
    }


IMAGE_SEEDS = image_seeds()
CLIP_SEEDS = clip_seeds()


# --- images --------------------------------------------------------------------------------------------------


def test_the_seeds_are_read() -> None:
    """The campaign starts from inputs that work: each seed gives a picture."""
    for name, data in IMAGE_SEEDS.items():
        assert decode_image(data, max_pixels=MAX_PIXELS).rgb.ndim == 3, name
    for name, data in CLIP_SEEDS.items():
        assert plan_clip(data, CLIP_LIMITS).frames >= 4, name


def decoded_or_our_error(data: bytes) -> str:
    """``decode_image`` on ``data``: a picture or one of our errors, with its sentence."""
    try:
        decoded = decode_image(data, max_pixels=MAX_PIXELS)
    except AnimeganError as error:
        assert error.message.endswith("."), error.message
        return type(error).__name__
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.ndim == 3 and decoded.rgb.shape[2] == 3
    assert decoded.alpha is None or decoded.alpha.shape == decoded.rgb.shape[:2]
    return "decoded"


@QUIET
def test_mutated_images_decode_or_give_our_error() -> None:
    DOORS["images"].campaign(mutated(IMAGE_SEEDS), decoded_or_our_error)


# --- clips ---------------------------------------------------------------------------------------------------


def joined_or_our_error(data: bytes) -> str:
    """The steps the workers run, in order: plan, a chunk's frames, its segment, the join with the sound."""
    try:
        plan = plan_clip(data, CLIP_LIMITS)
        frames = list(read_frames(data, plan))
        assert all(frame.shape == (plan.height, plan.width, 3) for frame in frames)
        assert len(frames) <= plan.frames
        if not frames:
            return "planned"
        join_segments(data, plan, [(0, encode_segment(frames, plan, 0))])
    except AnimeganError as error:
        assert error.message.endswith("."), error.message
        return type(error).__name__
    return "joined"


@QUIET
def test_mutated_clips_plan_read_and_join_or_give_our_error() -> None:
    DOORS["clips"].campaign(mutated(CLIP_SEEDS), joined_or_our_error)


# --- the web API's form --------------------------------------------------------------------------------------


class BusyService:
    """The service as far as the API's form sees it: every order that passes the form is answered "busy"."""

    def __init__(self) -> None:
        self.orders = 0

    async def submit(self, order: object) -> None:
        self.orders += 1
        raise QueueFull("The bot is busy right now. Please try again in a minute.")

    def styles(self) -> list[object]:
        return []


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[asyncio.AbstractEventLoop, TestClient]]:
    """The real ``/api/v1`` app (form, checks, JSON errors) on a busy stub service, on its own event loop."""
    form_settings = Settings(_env_file=None, max_upload_bytes=UPLOAD_LIMIT, max_pixels=MAX_PIXELS)  # type: ignore[call-arg]

    async def start() -> TestClient:
        started = TestClient(TestServer(create_api_app(form_settings, BusyService())))  # type: ignore[arg-type]
        await started.start_server()
        return started

    loop = asyncio.new_event_loop()
    client = loop.run_until_complete(start())
    try:
        yield loop, client
    finally:
        loop.run_until_complete(client.close())
        loop.close()


def multipart(parts: list[tuple[str, bytes, str | None]], boundary: str) -> bytes:
    """A multipart/form-data body of (name, value, filename or None) as browsers write it."""
    body = bytearray()
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body)


BOUNDARY = "animebotfuzzboundary"
SMALL_PHOTOS = {name: data for name, data in IMAGE_SEEDS.items() if len(data) < UPLOAD_LIMIT // 2}
FORM_SEEDS = {
    "photo": multipart([("image", SMALL_PHOTOS["chelsea.jpeg"], "chelsea.jpg")], BOUNDARY),
    "photo-and-choices": multipart(
        [
            ("image", SMALL_PHOTOS["coffee.png"], "coffee.png"),
            ("style", b"shinkai", None),
            ("strength", b"0.8", None),
            ("faces", b"false", None),
            ("format", b"webp", None),
        ],
        BOUNDARY,
    ),
    "source": multipart([("source", b"0123456789abcdef0123456789abcdef", None), ("style", b"hayao", None)], BOUNDARY),
    "clip": multipart([("image", CLIP_SEEDS["h264-aac.mp4"], "clip.mp4")], BOUNDARY),
}

field_value = st.one_of(
    st.sampled_from([b"", b"0", b"1", b"-1", b"nan", b"inf", b"1e309", b"true", b"no", b"png", b"jpg", b"shinkai"]),
    st.binary(max_size=64),
    st.text(max_size=64).map(str.encode),
    st.integers(0, 3 * 1024).map(lambda size: b"x" * size),  # past the text fields' 1 KB limit
)
form_part = st.tuples(
    st.one_of(st.sampled_from(FORM_NAMES), st.text(max_size=16).filter(lambda name: '"' not in name)),
    st.one_of(field_value, mutated(SMALL_PHOTOS), st.sampled_from(sorted(CLIP_SEEDS.values()))),
    st.one_of(st.none(), st.just("upload.bin")),
)
content_types = st.sampled_from(
    [
        f"multipart/form-data; boundary={BOUNDARY}",
        "multipart/form-data; boundary=another",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/json",
    ]
)
bodies = st.one_of(
    st.tuples(st.just(f"multipart/form-data; boundary={BOUNDARY}"), mutated(FORM_SEEDS)),
    st.tuples(
        st.just(f"multipart/form-data; boundary={BOUNDARY}"),
        st.lists(form_part, max_size=6).map(lambda parts: multipart(parts, BOUNDARY)),
    ),
    st.tuples(content_types, st.one_of(mutated(FORM_SEEDS), st.binary(max_size=512))),
)


def post(api: tuple[asyncio.AbstractEventLoop, TestClient], path: str, content_type: str, body: bytes) -> Error:
    """POST ``body`` to the API; the answer, checked to be a JSON error with a sentence (``Error``)."""
    loop, client = api

    async def send() -> tuple[int, str, bytes]:
        async with client.post(path, data=body, headers={"Content-Type": content_type}) as response:
            return response.status, response.content_type, await response.read()

    status, answer_type, answer = loop.run_until_complete(send())
    assert status in API_ERROR_STATUSES, (status, answer[:200])
    assert answer_type == "application/json", (status, answer[:200])
    error = Error.model_validate_json(answer)  # strict JSON: a lone surrogate in a message fails here
    assert error.error and error.message
    return error


@QUIET
def test_mutated_forms_get_a_json_answer(api: tuple[asyncio.AbstractEventLoop, TestClient]) -> None:
    requests = st.tuples(st.sampled_from(["/jobs", "/stylize"]), bodies)
    DOORS["web"].campaign(requests, lambda request: post(api, request[0], *request[1]).error)


def test_a_long_field_whose_name_is_not_utf8_gets_json(api: tuple[asyncio.AbstractEventLoop, TestClient]) -> None:
    """Found by this campaign: the name of a field over the length limit was echoed back in the message; bytes
    that are not UTF-8 arrived there as a lone surrogate, and that is not JSON."""
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="\xff"\r\n\r\n'.encode("latin-1")
        + b"x" * 2048
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    error = post(api, "/jobs", f"multipart/form-data; boundary={BOUNDARY}", body)
    assert error.error == "field_too_long"
