"""Discord clips against the fake gateway and REST: a video attached to /anime, or picked with the "Animefy" menu,
comes back as a video with frame progress in between, and its style buttons re-style the clip from the kept source.
The service's worker builds ``LoggingNegativeEngine`` (the real clip code, a negative for the network).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from adapters.discord import build_client, serve
from bot.config import Settings
from bot.service import Service
from tests.fake_discord import FakeDiscord
from tests.support_clip_engine import (
    FACE_MARKING_ENGINE,
    FRAME_DELAY_ENV,
    LOGGING_NEGATIVE_ENGINE,
    green_fraction,
    portrait_frames,
)
from tests.support_clips import describe, example, frames_of, make_gif, make_mp4, pan_frames
from tests.test_discord import (
    ADA,
    BOT_TOKEN,
    RESULT_TIMEOUT,
    buttons_of,
    finished,
    image_of,
    point_discord_py_at,  # noqa: F401 - the autouse fixture aiming discord.py at the fake
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(weights_dir: Path) -> AsyncIterator[Service]:
    import os

    os.environ[FRAME_DELAY_ENV] = "0.05"  # a few seconds per clip, so progress edits can be seen
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        discord_token=BOT_TOKEN,
        weights_dir=weights_dir,
        workers=1,
        engine_factory=LOGGING_NEGATIVE_ENGINE,
        rate_limit_per_minute=0,
        clip_chunk_frames=4,
    )
    try:
        async with Service(settings) as running:
            yield running
    finally:
        os.environ.pop(FRAME_DELAY_ENV, None)


@pytest_asyncio.fixture(loop_scope="module")
async def fake(point_discord_py_at) -> AsyncIterator[FakeDiscord]:  # noqa: F811
    async with FakeDiscord(token=BOT_TOKEN) as server:
        point_discord_py_at(server)
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def bot(fake: FakeDiscord, service: Service) -> AsyncIterator[None]:
    client = build_client(service.settings, service)
    task = asyncio.create_task(serve(client))
    await asyncio.wait_for(fake.ready.wait(), 30)
    yield
    await client.close()
    await asyncio.wait_for(task, 10)


def progress_texts(fake: FakeDiscord, token: str) -> list[str]:
    return [
        call.body["content"]
        for call in fake.answers(token)
        if call.method == "PATCH" and isinstance(call.body, dict) and "frame" in (call.body.get("content") or "")
    ]


async def test_a_video_through_anime_comes_back_as_a_video_and_restyles(fake: FakeDiscord, bot: None) -> None:
    clip = make_mp4(pan_frames(example(), (160, 120), 24), 24, 12, audio_seconds=2.0)
    attachment = fake.upload(clip, "cat.mp4", "video/mp4")
    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=attachment))
    message = await finished(fake, token, "anime-shinkai.mp4")
    out = describe(fake.file(image_of(message)))
    assert (out["codec"], out["frames"], out["has_audio"]) == ("h264", 24, True)
    assert any(text.startswith("Stylizing frame") for text in progress_texts(fake, token)), fake.answers(token)

    press = await fake.send(
        fake.press_button(ADA, message, buttons_of(message)["orig"]["custom_id"], guild_id=fake.guild_id)
    )
    await fake.wait_until(
        lambda: (
            "Original" in (fake.original(token) or {}).get("content", "")
            and "⏳" not in (fake.original(token) or {}).get("content", "")
        ),
        RESULT_TIMEOUT,
    )
    again = describe(fake.file(image_of(fake.original(token))))
    assert again["frames"] == 24 and again["codec"] == "h264", press
    assert not fake.refused()


async def test_a_video_with_a_face_has_its_face_drawn_by_the_face_pass(fake: FakeDiscord, service: Service) -> None:
    """The person's face pass is on by default: the clip's face is found, tracked and painted."""
    settings = service.settings.model_copy(update={"engine_factory": FACE_MARKING_ENGINE})
    async with Service(settings) as faces_on:
        client = build_client(settings, faces_on)
        task = asyncio.create_task(serve(client))
        try:
            await asyncio.wait_for(fake.ready.wait(), 30)
            attachment = fake.upload(make_mp4(portrait_frames(), 12, 12), "portrait.mp4", "video/mp4")
            token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=attachment))
            message = await finished(fake, token, "anime-shinkai.mp4")
        finally:
            await client.close()
            await asyncio.wait_for(task, 10)
    frames = list(frames_of(fake.file(image_of(message))))
    assert len(frames) == 12
    assert all(0.03 < green_fraction(frame) < 0.2 for frame in frames)  # the face, not the whole picture


async def test_a_gif_through_the_menu_comes_back_as_a_video(fake: FakeDiscord, bot: None) -> None:
    gif = make_gif(pan_frames(example("coffee.jpg"), (128, 96), 8), 8, 8)
    post = fake.user_message(ADA, [fake.upload(gif, "loop.gif", "image/gif")], guild_id=fake.guild_id)
    token = await fake.send(fake.message_command(ADA, "Animefy", post, guild_id=fake.guild_id))
    message = await finished(fake, token, "anime-shinkai.mp4")
    out = describe(fake.file(image_of(message)))
    assert out["frames"] == 8 and not out["has_audio"]
