"""Telegram clips against the fake Bot API: an animation comes back through sendAnimation, a video through
sendVideo with its sound, a video note through sendVideoNote, a video file as a file, each after status edits that
count frames. The service's worker builds ``NegativeEngine`` (the real clip code, a negative for the network).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fake_telegram import FakeTelegram, FakeUser
from pydantic import SecretStr

from adapters.telegram import build_application, running
from adapters.telegram.clips import CLIP_UPLOAD_LIMIT, looks_like_video
from bot.config import Settings
from bot.service import Service
from tests.support_clip_engine import (
    FACE_MARKING_ENGINE,
    FRAME_DELAY_ENV,
    LOGGING_NEGATIVE_ENGINE,
    green_fraction,
    portrait_frames,
)
from tests.support_clips import describe, example, frames_of, make_gif, make_mp4, pan_frames, zoom_frames

REPLY_TIMEOUT = 120.0
module_loop = pytest.mark.asyncio(loop_scope="module")
_ids = iter(range(5001, 6000))


def test_video_documents_are_judged_by_type_or_name() -> None:
    assert looks_like_video("video/quicktime", "IMG_0001.MOV")
    assert looks_like_video(None, "party.webm")
    assert not looks_like_video("image/jpeg", "me.jpg")
    assert CLIP_UPLOAD_LIMIT == 50 * 1024 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(weights_dir: Path) -> AsyncIterator[Service]:
    import os

    os.environ[FRAME_DELAY_ENV] = "0.1"  # a few seconds per clip, so several status edits can be seen
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        weights_dir=weights_dir,
        workers=1,
        engine_factory=LOGGING_NEGATIVE_ENGINE,
        clip_chunk_frames=4,
        job_timeout=REPLY_TIMEOUT,
    )
    try:
        async with Service(settings) as running_service:
            yield running_service
    finally:
        os.environ.pop(FRAME_DELAY_ENV, None)


@pytest_asyncio.fixture(loop_scope="module")
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@asynccontextmanager
async def bot(telegram: FakeTelegram, service: Service) -> AsyncIterator[None]:
    settings = service.settings.model_copy(
        update={
            "telegram_token": SecretStr(telegram.token),
            "telegram_base_url": telegram.base_url,
            "telegram_base_file_url": telegram.base_file_url,
        }
    )
    async with running(build_application(settings, service), settings):
        yield


def new_user() -> FakeUser:
    number = next(_ids)
    return FakeUser(id=number, first_name="Kai", username=f"kai{number}")


async def reply_with(telegram: FakeTelegram, message: dict[str, Any], kind: str) -> dict[str, Any]:
    def found() -> list[dict[str, Any]]:
        return [m for m in telegram.replies_to(message) if kind in m]

    await telegram.wait_until(lambda: bool(found()), REPLY_TIMEOUT)
    return found()[0]


def frame_edits(telegram: FakeTelegram, chat_id: int) -> list[str]:
    return [
        str(call.params["text"])
        for call in telegram.calls_to("editMessageText", chat_id)
        if "frame" in str(call.params["text"])
    ]


@module_loop
@pytest.mark.parametrize(
    ("kind", "method", "size", "audio"),
    [
        ("animation", "sendAnimation", (160, 120), False),
        ("video", "sendVideo", (192, 144), True),
        ("video_note", "sendVideoNote", (160, 160), True),
    ],
)
async def test_each_kind_of_clip_comes_back_as_itself(
    telegram: FakeTelegram, service: Service, kind: str, method: str, size: tuple[int, int], audio: bool
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    frames = pan_frames(example("chelsea.jpg"), size, 24)
    clip = make_mp4(frames, 24, 12, audio_seconds=2.0 if audio else None)
    async with bot(telegram, service):
        sent = telegram.send_video(user, chat, clip, kind=kind, size=size)
        answer = await reply_with(telegram, sent, kind)
    assert len(telegram.calls_to(method, chat.id)) == 1
    out = describe(telegram.file_data(answer[kind]["file_id"]))
    assert (out["codec"], out["width"], out["height"], out["frames"]) == ("h264", size[0], size[1], 24)
    assert out["has_audio"] is audio
    edits = frame_edits(telegram, chat.id)
    assert len(edits) >= 2 and edits[-1].startswith("Stylizing frame"), edits
    assert not telegram.refused()


@module_loop
async def test_a_video_with_a_face_has_its_face_drawn_by_the_face_pass(
    telegram: FakeTelegram, service: Service
) -> None:
    """The chat's face pass is on by default: the clip's face is found, tracked and painted."""
    user = new_user()
    chat = telegram.private_chat(user)
    clip = make_mp4(portrait_frames(), 12, 12)
    settings = service.settings.model_copy(update={"engine_factory": FACE_MARKING_ENGINE})
    async with Service(settings) as faces_on, bot(telegram, faces_on):
        sent = telegram.send_video(user, chat, clip, kind="video", size=(320, 240))
        answer = await reply_with(telegram, sent, "video")
    frames = list(frames_of(telegram.file_data(answer["video"]["file_id"])))
    assert len(frames) == 12
    assert all(0.03 < green_fraction(frame) < 0.2 for frame in frames)  # the face, not the whole picture


@module_loop
async def test_a_russian_speaker_follows_a_clip_in_russian(telegram: FakeTelegram, service: Service) -> None:
    user = FakeUser(id=next(_ids), first_name="Ольга", username=None, language_code="ru")
    chat = telegram.private_chat(user)
    clip = make_mp4(pan_frames(example("chelsea.jpg"), (160, 120), 24), 24, 12, audio_seconds=2.0)
    async with bot(telegram, service):
        sent = telegram.send_video(user, chat, clip, kind="video", size=(160, 120))
        answer = await reply_with(telegram, sent, "video")
    edits = [str(call.params["text"]) for call in telegram.calls_to("editMessageText", chat.id)]
    assert any(edit.startswith("Рисую кадр") for edit in edits), edits
    assert not any("frame" in edit or "Stylizing" in edit for edit in edits), edits
    assert "strength" not in answer.get("caption", "").lower(), answer.get("caption")


@module_loop
async def test_a_video_file_comes_back_as_a_file_and_a_gif_file_as_a_clip(
    telegram: FakeTelegram, service: Service
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    movie = make_mp4(zoom_frames(example("rocket.jpg"), (128, 96), 12), 12, 12, audio_seconds=1.0)
    gif = make_gif(pan_frames(example("coffee.jpg"), (128, 96), 6), 6, 6)
    async with bot(telegram, service):
        as_file = telegram.send_document(user, chat, movie, "launch.mov", "video/quicktime")
        gif_file = telegram.send_document(user, chat, gif, "loop.gif", "image/gif")
        document = await reply_with(telegram, as_file, "document")
        gif_answer = await reply_with(telegram, gif_file, "document")
    assert document["document"]["file_name"] == "launch_shinkai.mp4"
    assert describe(telegram.file_data(document["document"]["file_id"]))["has_audio"]
    assert describe(telegram.file_data(gif_answer["document"]["file_id"]))["frames"] == 6


@module_loop
async def test_a_clip_over_the_download_limit_is_refused_before_downloading(
    telegram: FakeTelegram, service: Service
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, service):
        sent = telegram.send_video(user, chat, b"\x00" * 64, kind="video", file_size=21 * 1024 * 1024)
        answer = await reply_with(telegram, sent, "text")
    assert "MB" in answer["text"]
    assert not telegram.calls_to("getFile")


@module_loop
async def test_a_broken_video_gets_a_plain_reply(telegram: FakeTelegram, service: Service) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, service):
        telegram.send_video(user, chat)  # a few bytes that only start like an MP4

        def answered() -> bool:
            return any(
                "damaged" in str(c.params.get("text", "")) for c in telegram.calls_to("editMessageText", chat.id)
            )

        await telegram.wait_until(answered, REPLY_TIMEOUT)
    assert not telegram.calls_to("sendVideo")


@module_loop
async def test_the_buttons_under_a_video_restyle_the_clip_in_place(telegram: FakeTelegram, service: Service) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    clip = make_mp4(pan_frames(example("astronaut.jpg"), (128, 96), 12), 12, 12, audio_seconds=1.0)
    async with bot(telegram, service):
        sent = telegram.send_video(user, chat, clip, kind="video", size=(128, 96))
        answer = await reply_with(telegram, sent, "video")
        first = telegram.file_data(answer["video"]["file_id"])
        original = answer["reply_markup"]["inline_keyboard"][-1][0]
        assert original["text"].endswith("Original")
        telegram.press_button(user, answer, original["callback_data"])
        await telegram.wait_until(
            lambda: (
                bool(telegram.calls_to("editMessageMedia", chat.id))
                and "video" in telegram.message(chat.id, answer["message_id"])
            ),
            REPLY_TIMEOUT,
        )
        await telegram.wait_until(
            lambda: telegram.message(chat.id, answer["message_id"]).get("caption", "").startswith("Original"),
            REPLY_TIMEOUT,
        )
    edited = telegram.message(chat.id, answer["message_id"])
    again = telegram.file_data(edited["video"]["file_id"])
    assert again != first and describe(again)["frames"] == 12
    assert not telegram.refused()
