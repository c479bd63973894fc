"""The Telegram front end: python-telegram-bot's real ``Application`` against a fake Bot API server on 127.0.0.1,
driving the real ``Service`` whose pool runs the real engine on real weights.

Pure helpers (callback data, keyboard, status lines, token redaction) are tested first, without any server.

Over 400 lines on purpose: the front end's core scenarios share one module-scoped service and fake server
(the chat features are in ``test_telegram_chat_features``, clips in ``test_telegram_clips``).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import ClientSession
from fake_telegram import FakeChat, FakeTelegram, FakeUser
from PIL import Image
from pydantic import SecretStr

from adapters.telegram import build_application, running
from adapters.telegram.looks import NOOP_DATA, Look, keyboard
from adapters.telegram.photos import looks_like_image
from adapters.telegram.status import STATUS_EDIT_INTERVAL, status_text
from adapters.telegram.texts import NOT_A_PHOTO, NOT_AN_IMAGE, NOT_YOURS, SOMETHING_WENT_WRONG
from adapters.telegram.uploads import result_file_name, style_named_in
from animegan.manifest import list_styles
from bot.config import Settings
from bot.jobs import STAGE_LABELS, JobProgress, JobStage
from bot.orders import SOURCE_EXPIRED
from bot.redaction import TokenRedactor, redact_token_in_logs
from bot.service import Service

JsonDict = dict[str, Any]
REPO = Path(__file__).resolve().parents[1]
PHOTO_SIZE = (360, 240)  # (W, H); multiples of 8, between the engine's minimum and working size: kept as is
REPLY_TIMEOUT = 180.0  # seconds; a 2-core box shared with other test runs can be slow
MIN_STYLE_CHANGE = 8.0  # mean absolute difference (0..255) between a photo and its stylized version, at least
LONGEST_KEY = "A" * 16  # the service promises keys of at most 16 ASCII characters

_user_ids = itertools.count(1001)


def new_user(name: str = "Ann") -> FakeUser:
    """A person no other test has used (the service's rate limit is shared by the module's tests)."""
    number = next(_user_ids)
    return FakeUser(id=number, first_name=name, username=f"{name.lower()}{number}")


def jpeg(pixels: np.ndarray, size: tuple[int, int] = PHOTO_SIZE) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize(size).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def png(pixels: np.ndarray, size: tuple[int, int] = PHOTO_SIZE) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize(size).save(buffer, "PNG")
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def mean_difference(a: bytes, b: bytes) -> float:
    first = np.asarray(decoded(a).convert("RGB"), dtype=np.float32)
    second = np.asarray(decoded(b).convert("RGB").resize(first.shape[1::-1]), dtype=np.float32)
    return float(np.abs(first - second).mean())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---- pure helpers -------------------------------------------------------------------------------------------------


def test_callback_data_round_trips_and_fits_telegram_limit() -> None:
    longest_style = max((style.name for style in list_styles()), key=len)
    look = Look(LONGEST_KEY, longest_style, 75)
    data = look.to_callback_data()
    assert len(data.encode()) <= 64
    assert Look.from_callback_data(data) == look
    assert Look.from_callback_data(NOOP_DATA) is None
    assert Look.from_callback_data("k|shinkai|strong") is None


def test_callback_data_over_the_limit_is_refused_in_code() -> None:
    with pytest.raises(AssertionError):
        Look("k" * 40, "s" * 30, 100).to_callback_data()


def test_keyboard_has_a_button_per_style_and_no_op_for_the_current_look() -> None:
    styles = list_styles()
    markup = keyboard(Look("key", styles[0].name, 100), styles)
    rows = markup.inline_keyboard
    style_buttons = [button for row in rows[:-2] for button in row]
    assert [b.text.removeprefix("✓ ") for b in style_buttons] == [s.title for s in styles]
    assert style_buttons[0].callback_data == NOOP_DATA  # the look shown now
    assert Look.from_callback_data(style_buttons[1].callback_data) == Look("key", styles[1].name, 100)
    weaker, stronger = rows[-2]
    assert Look.from_callback_data(weaker.callback_data) == Look("key", styles[0].name, 75)
    assert stronger.callback_data == NOOP_DATA  # already at full strength
    assert Look.from_callback_data(rows[-1][0].callback_data) == Look("key", styles[0].name, 0)


def test_status_text_shows_position_then_stage_and_coarse_percent() -> None:
    assert status_text(JobProgress(JobStage.QUEUED, position=3)) == "In the queue, position 3…"
    assert status_text(JobProgress(JobStage.QUEUED, position=0)) == "Starting…"
    stylizing = STAGE_LABELS[JobStage.STYLIZING]
    assert status_text(JobProgress(JobStage.STYLIZING, fraction=0.0)) == f"{stylizing}…"
    # 71% and 79% read the same, so no edit is sent between them.
    assert status_text(JobProgress(JobStage.STYLIZING, fraction=0.71)) == f"{stylizing}… 70%"
    assert status_text(JobProgress(JobStage.STYLIZING, fraction=0.79)) == f"{stylizing}… 70%"


def test_style_named_in_caption() -> None:
    styles = {style.name: style for style in list_styles()}
    assert style_named_in("Hayao please!", styles) == "hayao"
    assert style_named_in("@animegan_test_bot hayao-v2", styles) == "hayao_v2"
    assert style_named_in("a nice day", styles) is None
    assert style_named_in(None, styles) is None


def test_documents_are_judged_by_type_or_name_only() -> None:
    assert looks_like_image("image/heic", "IMG_0001.HEIC")
    assert looks_like_image("application/octet-stream", "holiday.webp")
    assert not looks_like_image("text/plain", "notes.txt")
    assert not looks_like_image(None, None)
    assert result_file_name("holiday.heic", "hayao", "image/png") == "holiday_hayao.png"


def test_token_redactor_cleans_message_arguments_and_traceback() -> None:
    token = "123456:AAE-secret_part_of_the_token"
    redactor = TokenRedactor([token])
    url = f"https://api.telegram.org/bot{token}/getUpdates"
    try:
        raise ConnectionError(f"could not reach {url}")
    except ConnectionError as error:
        record = logging.LogRecord("httpx", logging.ERROR, __file__, 1, "HTTP Request: POST %s", (url,), None)
        record.exc_info = (type(error), error, error.__traceback__)
    assert redactor.filter(record)
    text = logging.Formatter().format(record)
    assert "secret_part_of_the_token" not in text
    assert "bot123456:<redacted>/getUpdates" in text
    assert "could not reach" in text


def test_installed_redaction_covers_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    token = "987654:another-secret-token-value"
    redact_token_in_logs(token)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("some.library").warning("calling %s", f"https://example.org/bot{token}/getMe")
    logging.getLogger("other").debug(f"url-encoded: /file/bot987654%3A{token.partition(':')[2]}/x")
    # PTB logs a result dict, then writes the file URL (with the token) into that same dict.
    result = {"file_path": "photos/file_1.jpg"}
    logging.getLogger("telegram.Bot").debug("getFile returned %s", result)
    result["file_path"] = f"https://api.telegram.org/file/bot{token}/photos/file_1.jpg"
    assert "another-secret-token-value" not in caplog.text
    assert caplog.text.count("<redacted>") == 2
    assert all("another-secret-token-value" not in record.getMessage() for record in caplog.records)


def test_adapter_imports_neither_torch_nor_pillow() -> None:
    code = "import sys, adapters.telegram; print(sorted({'torch', 'PIL'} & sys.modules.keys()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert done.stdout.strip() == "[]"


# ---- against the fake server, with the real service -------------------------------------------------------------

module_loop = pytest.mark.asyncio(loop_scope="module")


def service_settings(weights_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "weights_dir": weights_dir,
        "workers": 1,
        "working_size": 512,
        "job_timeout": REPLY_TIMEOUT,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(weights_dir: Path) -> AsyncIterator[Service]:
    """One real service (one worker process running the real engine) for the whole module."""
    async with Service(service_settings(weights_dir)) as running_service:
        yield running_service


def sharing_pool(service: Service, **overrides: Any) -> Service:
    """Another service (other settings: allow-list, rate limit...) feeding the same running pool."""
    return Service(service_settings(service.settings.weights_dir, **overrides), queue=service.queue)


@pytest_asyncio.fixture(loop_scope="module")
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def bot_settings(telegram: FakeTelegram, service: Service, **overrides: Any) -> Settings:
    return service.settings.model_copy(
        update={
            "telegram_token": SecretStr(telegram.token),
            "telegram_base_url": telegram.base_url,
            "telegram_base_file_url": telegram.base_file_url,
            **overrides,
        }
    )


@asynccontextmanager
async def bot(telegram: FakeTelegram, service: Service, **overrides: Any) -> AsyncIterator[None]:
    """The bot under test, polling the fake server."""
    settings = bot_settings(telegram, service, **overrides)
    async with running(build_application(settings, service), settings):
        yield


async def replies(telegram: FakeTelegram, message: JsonDict, count: int = 1, kind: str | None = None) -> list[JsonDict]:
    """Wait until the bot has ``count`` replies (with ``kind`` content: photo, document, text) to ``message``."""

    def found() -> list[JsonDict]:
        return [m for m in telegram.replies_to(message) if kind is None or kind in m]

    await telegram.wait_until(lambda: len(found()) >= count, REPLY_TIMEOUT)
    return found()


def status_texts(telegram: FakeTelegram, chat_id: int) -> list[str]:
    """Every text the (only) status message of ``chat_id`` showed: as sent, then each edit."""
    (first,) = telegram.calls_to("sendMessage", chat_id)
    return [str(first.params["text"])] + [str(c.params["text"]) for c in telegram.calls_to("editMessageText", chat_id)]


def is_status(text: str) -> bool:
    """Whether ``text`` is a status line (queue place or stage), not an answer."""
    return text.startswith(("Starting", "In the queue", *STAGE_LABELS.values()))


def marked_buttons(message: JsonDict) -> list[str]:
    """The texts of the buttons marked as the current look (✓) or as running (⏳)."""
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row if b["text"][0] in "✓⏳"]


def texts_replying_to(telegram: FakeTelegram, message: JsonDict) -> list[str]:
    return [m["text"] for m in telegram.replies_to(message) if "text" in m]


@module_loop
async def test_photo_gets_status_then_stylized_photo_with_keyboard(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, service):
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        (reply,) = await replies(telegram, sent, kind="photo")

    assert telegram.calls_to("sendChatAction", chat.id)[0].params["action"] == "upload_photo"
    texts = status_texts(telegram, chat.id)
    assert texts[0] in ("Starting…", "In the queue, position 1…")
    engine_stages = [
        STAGE_LABELS[s] for s in (JobStage.DECODING, JobStage.FINDING_FACES, JobStage.STYLIZING, JobStage.FINISHING)
    ]
    assert len(texts) >= 2 and all(text.startswith(tuple(engine_stages)) for text in texts[1:]), texts
    assert all(a != b for a, b in itertools.pairwise(texts)), texts  # edited only when the text changed
    assert len(telegram.calls_to("deleteMessage", chat.id)) == 1  # the status line is gone once the photo is there
    assert [m for m in telegram.bot_messages(chat.id)] == [reply]

    upload = telegram.calls_to("sendPhoto", chat.id)[0].files["photo"].data
    image = decoded(upload)
    assert image.format == "JPEG"
    assert image.size == PHOTO_SIZE
    assert mean_difference(upload, jpeg(coffee)) > MIN_STYLE_CHANGE
    assert reply["caption"].startswith(service.styles()[0].title)

    buttons = [b for row in reply["reply_markup"]["inline_keyboard"] for b in row]
    titles = [b["text"].removeprefix("✓ ") for b in buttons]
    assert all(style.title in titles for style in service.styles())
    assert {"− strength", "+ strength", "Original"} <= set(titles)
    assert not telegram.refused()


@module_loop
async def test_button_press_edits_the_reply_media_in_place(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    other = service.styles()[1]
    async with bot(telegram, service):
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        (reply,) = await replies(telegram, sent, kind="photo")
        first_upload = telegram.calls_to("sendPhoto", chat.id)[0].files["photo"].data
        first_caption = reply["caption"]
        button = next(b for row in reply["reply_markup"]["inline_keyboard"] for b in row if b["text"] == other.title)
        telegram.press_button(user, reply, button["callback_data"])
        await telegram.wait_until(lambda: bool(telegram.calls_to("editMessageMedia", chat.id)), REPLY_TIMEOUT)

    (answer,) = telegram.calls_to("answerCallbackQuery")
    assert other.title in str(answer.params["text"])
    # While it ran: one status line in the photo's own caption, about the new look, and the pressed button marked.
    statuses = [str(call.params["caption"]) for call in telegram.calls_to("editMessageCaption", chat.id)]
    assert statuses and all(text.startswith(f"{first_caption}\n⏳ Re-styling as {other.title}") for text in statuses)
    assert not any("Reading the photo" in text for text in statuses)
    pending = telegram.calls_to("editMessageCaption", chat.id)[0].params
    assert marked_buttons(pending) == [f"✓ {service.styles()[0].title}", f"⏳ {other.title}"]
    edit = telegram.calls_to("editMessageMedia", chat.id)[0]
    assert int(edit.params["message_id"]) == reply["message_id"]
    media = edit.params["media"]
    assert media["type"] == "photo"
    new_upload = edit.files[media["media"].removeprefix("attach://")].data
    assert decoded(new_upload).size == PHOTO_SIZE
    assert mean_difference(new_upload, first_upload) > 1.0  # another style, another picture
    edited = telegram.message(chat.id, reply["message_id"])
    assert edited["caption"].startswith(other.title) and "⏳" not in edited["caption"]
    assert marked_buttons(edited) == [f"✓ {other.title}"]
    assert len(telegram.bot_messages(chat.id)) == 1  # edited, not a new message
    assert not telegram.refused()


@module_loop
async def test_two_quick_presses_end_with_one_clean_status_and_the_last_style(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    first_choice, last_choice = service.styles()[1], service.styles()[2]
    async with bot(telegram, service):
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        (reply,) = await replies(telegram, sent, kind="photo")
        data = {b["text"]: b["callback_data"] for row in reply["reply_markup"]["inline_keyboard"] for b in row}
        telegram.press_button(user, reply, data[first_choice.title])
        await telegram.wait_until(lambda: bool(telegram.calls_to("editMessageCaption", chat.id)), REPLY_TIMEOUT)
        telegram.press_button(user, telegram.message(chat.id, reply["message_id"]), data[last_choice.title])
        await telegram.wait_until(lambda: bool(telegram.calls_to("editMessageMedia", chat.id)), REPLY_TIMEOUT)
        await asyncio.sleep(3.0)  # the first press's job ends meanwhile: it must not show its picture or status

    (media_edit,) = telegram.calls_to("editMessageMedia", chat.id)  # one new picture: the last press's
    assert media_edit.params["media"]["caption"].startswith(last_choice.title)
    final = telegram.message(chat.id, reply["message_id"])
    assert final["caption"].startswith(last_choice.title) and "⏳" not in final["caption"]
    assert marked_buttons(final) == [f"✓ {last_choice.title}"]
    statuses = [str(call.params["caption"]) for call in telegram.calls_to("editMessageCaption", chat.id)]
    switched = next(i for i, text in enumerate(statuses) if last_choice.title in text)
    assert all(first_choice.title in text for text in statuses[:switched])
    assert all(last_choice.title in text and first_choice.title not in text for text in statuses[switched:])
    assert all(text.count("⏳") == 1 for text in statuses)  # one status line at a time, never two
    assert len(telegram.calls_to("answerCallbackQuery")) == 2
    assert not telegram.refused()


@module_loop
async def test_buttons_work_after_a_full_restart_on_the_same_data_dir(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray, tmp_path: Path
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    before = Service(service_settings(service.settings.weights_dir, data_dir=tmp_path), queue=service.queue)
    async with bot(telegram, before):
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        (reply,) = await replies(telegram, sent, kind="photo")
    await before.sources.close()  # type: ignore[attr-defined]  # nothing of the first run is kept in memory

    after = Service(service_settings(service.settings.weights_dir, data_dir=tmp_path), queue=service.queue)
    other = service.styles()[1]
    async with bot(telegram, after):
        button = next(b for row in reply["reply_markup"]["inline_keyboard"] for b in row if b["text"] == other.title)
        telegram.press_button(user, reply, button["callback_data"])
        await telegram.wait_until(lambda: bool(telegram.calls_to("editMessageMedia", chat.id)), REPLY_TIMEOUT)

    assert telegram.message(chat.id, reply["message_id"])["caption"].startswith(other.title)
    assert all(call.params.get("text") != SOURCE_EXPIRED for call in telegram.calls_to("answerCallbackQuery"))
    assert not telegram.refused()


@module_loop
async def test_minus_weakens_and_original_shows_the_photo(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    photo = jpeg(coffee)
    async with bot(telegram, service):
        sent = telegram.send_photo(user, chat, photo)
        (reply,) = await replies(telegram, sent, kind="photo")
        styled = telegram.calls_to("sendPhoto", chat.id)[0].files["photo"].data
        data = {b["text"]: b["callback_data"] for row in reply["reply_markup"]["inline_keyboard"] for b in row}
        telegram.press_button(user, reply, data["− strength"])
        await telegram.wait_until(lambda: len(telegram.calls_to("editMessageMedia", chat.id)) == 1, REPLY_TIMEOUT)
        edited = telegram.message(chat.id, reply["message_id"])
        original_button = next(
            b for row in edited["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "Original"
        )
        telegram.press_button(user, edited, original_button["callback_data"])
        await telegram.wait_until(lambda: len(telegram.calls_to("editMessageMedia", chat.id)) == 2, REPLY_TIMEOUT)

    weaker_edit, original_edit = telegram.calls_to("editMessageMedia", chat.id)
    original = original_edit.files[original_edit.params["media"]["media"].removeprefix("attach://")].data
    weaker = weaker_edit.files[weaker_edit.params["media"]["media"].removeprefix("attach://")].data
    assert mean_difference(original, photo) < MIN_STYLE_CHANGE / 2
    # 75% lies between the photo and the full style.
    assert mean_difference(weaker, photo) < mean_difference(styled, photo)
    assert mean_difference(weaker, photo) > mean_difference(original, photo)
    assert "75%" in weaker_edit.params["media"]["caption"]
    assert not telegram.refused()


@module_loop
async def test_expired_source_asks_for_the_photo_again(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    now = [time.monotonic()]
    forgetful = Service(
        service_settings(service.settings.weights_dir, source_cache_ttl=60.0), queue=service.queue, clock=lambda: now[0]
    )
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, forgetful):
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        (reply,) = await replies(telegram, sent, kind="photo")
        now[0] += 61.0
        weaker = next(b for row in reply["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "− strength")
        telegram.press_button(user, reply, weaker["callback_data"])
        await telegram.wait_until(lambda: bool(telegram.calls_to("answerCallbackQuery")), REPLY_TIMEOUT)

    (answer,) = telegram.calls_to("answerCallbackQuery")
    assert answer.params["text"] == SOURCE_EXPIRED
    assert "send the photo again" in SOURCE_EXPIRED
    assert not telegram.calls_to("editMessageMedia")


@module_loop
async def test_png_document_gets_photo_and_file(
    telegram: FakeTelegram, service: Service, astronaut: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, service):
        sent = telegram.send_document(user, chat, png(astronaut), "portrait.png", "image/png")
        answers = await replies(telegram, sent, count=2)

    assert {"photo", "document"} == {kind for m in answers for kind in ("photo", "document") if kind in m}
    document = next(m["document"] for m in answers if "document" in m)
    assert document["file_name"] == f"portrait_{service.styles()[0].name}.png"
    full = decoded(telegram.file_data(document["file_id"]))
    assert full.format == "PNG"  # a file keeps its kind: no JPEG loss
    assert full.size == PHOTO_SIZE
    assert "reply_markup" in next(m for m in answers if "photo" in m)
    assert not telegram.refused()


@module_loop
async def test_unusable_inputs_get_a_short_clear_reply(telegram: FakeTelegram, service: Service) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, sharing_pool(service, max_upload_bytes=1_000_000)):
        text_file = telegram.send_document(user, chat, b"just some notes\n", "notes.txt", "text/plain")
        huge = telegram.send_document(user, chat, b"\xff\xd8\xff", "huge.jpg", "image/jpeg", file_size=5_000_000)
        sticker = telegram.send_sticker(user, chat)
        broken = telegram.send_document(user, chat, b"\x89PNG\r\n\x1a\n not really", "broken.png", "image/png")
        replies_by_message = {
            "text": await replies(telegram, text_file, kind="text"),
            "huge": await replies(telegram, huge, kind="text"),
            "sticker": await replies(telegram, sticker, kind="text"),
        }
        # The broken PNG passes the adapter (it claims to be an image) and is judged by the engine: the status
        # line becomes the engine's refusal.
        await telegram.wait_until(
            lambda: any(not is_status(text) for text in texts_replying_to(telegram, broken)), REPLY_TIMEOUT
        )

    assert replies_by_message["text"][0]["text"] == NOT_AN_IMAGE
    assert "MB" in replies_by_message["huge"][0]["text"]
    assert replies_by_message["sticker"][0]["text"] == NOT_A_PHOTO
    downloaded = {c.params["file_id"] for c in telegram.calls_to("getFile")}
    assert downloaded == {broken["document"]["file_id"]}  # nothing else was fetched
    (refusal,) = texts_replying_to(telegram, broken)
    assert "image" in refusal.lower() or "photo" in refusal.lower(), refusal
    assert not telegram.calls_to("sendPhoto") and not telegram.calls_to("sendDocument")


@module_loop
async def test_groups_only_answer_commands_mentions_and_replies(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    group = FakeChat(id=-100_500, type="supergroup", title="Friends")
    handle = f"@{telegram.bot_user.username}"
    async with bot(telegram, service):
        plain = telegram.send_photo(user, group, jpeg(coffee))
        chatter = telegram.send_text(user, group, "nice weather today")
        sticker = telegram.send_sticker(user, group)
        command = telegram.send_text(user, group, f"/styles{handle}")
        mentioned = telegram.send_photo(user, group, jpeg(coffee), caption=f"{handle} hayao")
        (result,) = await replies(telegram, mentioned, kind="photo")
        await replies(telegram, command, kind="text")
        answer_to_reply = telegram.send_text(user, group, "what can you do?", reply_to=result)
        await replies(telegram, answer_to_reply, kind="text")
        # Someone else in the group can't restyle this person's picture.
        stranger = new_user("Eve")
        button = next(b for row in result["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "Original")
        telegram.press_button(stranger, result, button["callback_data"])
        await telegram.wait_until(lambda: bool(telegram.calls_to("answerCallbackQuery")), REPLY_TIMEOUT)

    assert result["caption"].startswith("Hayao")
    for ignored in (plain, chatter, sticker):
        assert telegram.replies_to(ignored) == []
    photo_sources = [c.params["reply_parameters"]["message_id"] for c in telegram.calls_to("sendPhoto", group.id)]
    assert photo_sources == [mentioned["message_id"]]
    assert telegram.calls_to("answerCallbackQuery")[0].params["text"] == NOT_YOURS
    assert not telegram.calls_to("editMessageMedia")


@module_loop
async def test_style_command_is_remembered_per_chat(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    other_user = new_user("Bob")
    other_chat = telegram.private_chat(other_user)
    async with bot(telegram, service):
        command = telegram.send_text(user, chat, "/style hayao")
        (confirmation,) = await replies(telegram, command, kind="text")
        unknown = telegram.send_text(user, chat, "/style vangogh")
        (refusal,) = await replies(telegram, unknown, kind="text")
        first = telegram.send_photo(user, chat, jpeg(coffee))
        second = telegram.send_photo(other_user, other_chat, jpeg(coffee))
        (mine,) = await replies(telegram, first, kind="photo")
        (theirs,) = await replies(telegram, second, kind="photo")

    assert "Hayao" in confirmation["text"]
    assert "vangogh" in refusal["text"] and "hayao" in refusal["text"]
    assert mine["caption"].startswith("Hayao")
    assert theirs["caption"].startswith(service.styles()[0].title)  # another chat keeps the default


@module_loop
async def test_service_refusals_reach_the_person(telegram: FakeTelegram, service: Service, coffee: np.ndarray) -> None:
    strict = sharing_pool(service, rate_limit_per_minute=1)
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, strict):
        first = telegram.send_photo(user, chat, jpeg(coffee))
        await replies(telegram, first, kind="photo")
        second = telegram.send_photo(user, chat, jpeg(coffee))
        (refusal,) = await replies(telegram, second, kind="text")

    assert "in the last minute" in refusal["text"]
    assert len(telegram.calls_to("sendPhoto", chat.id)) == 1


@module_loop
async def test_chats_outside_the_allow_list_are_ignored(telegram: FakeTelegram, service: Service) -> None:
    allowed, stranger = new_user(), new_user("Eve")
    private = sharing_pool(service, allowed_chats={allowed.id})
    async with bot(telegram, private):
        ignored = telegram.send_text(stranger, telegram.private_chat(stranger), "/start")
        welcomed = telegram.send_text(allowed, telegram.private_chat(allowed), "/start")
        await replies(telegram, welcomed, kind="text")

    assert telegram.replies_to(ignored) == []


@module_loop
async def test_flood_every_photo_answered_once_in_fair_order(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    people = [new_user(name) for name in ("Ann", "Bob", "Cid")]
    per_person = 3
    photo = jpeg(coffee)
    async with bot(telegram, service):
        # Ann sends all hers first, then Bob, then Cid: first-come-first-served would finish Ann's three first.
        sent = [telegram.send_photo(p, telegram.private_chat(p), photo) for p in people for _ in range(per_person)]
        await telegram.wait_until(lambda: len(telegram.calls_to("sendPhoto")) >= len(sent), REPLY_TIMEOUT * 3)
        await asyncio.sleep(0.5)  # a duplicate would show up now

    answered = Counter((c.chat_id, c.params["reply_parameters"]["message_id"]) for c in telegram.calls_to("sendPhoto"))
    assert answered == Counter((m["chat"]["id"], m["message_id"]) for m in sent)  # each exactly once
    queued = [c for c in telegram.calls_to("sendMessage") if "In the queue" in str(c.params["text"])]
    assert len(queued) >= len(sent) - 1  # all but the first, which started at once, saw their place

    edited = telegram.calls_to("editMessageText")
    for status in {(c.chat_id, int(c.params["message_id"])) for c in edited}:
        edits = [c.at for c in edited if (c.chat_id, int(c.params["message_id"])) == status]
        gaps = [later - earlier for earlier, later in itertools.pairwise(sorted(edits))]
        assert all(gap >= STATUS_EDIT_INTERVAL * 0.9 for gap in gaps), gaps  # Telegram throttles bursts of edits

    finished_by = [c.chat_id for c in telegram.calls_to("sendPhoto")]
    # After the first job (running before the others arrived), people are served in turns.
    done: Counter[int] = Counter()
    for person in finished_by[1:]:
        done[person] += 1
        counts = [done[p.id] for p in people]
        assert max(counts) - min(counts) <= 1, finished_by
    assert not telegram.refused()


@module_loop
async def test_flood_control_delays_a_reply_without_losing_it(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    telegram.flood_wait("sendPhoto", count=1, retry_after=1)
    async with bot(telegram, service):
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        await replies(telegram, sent, kind="photo")
        await asyncio.sleep(0.5)

    refused, delivered = telegram.calls_to("sendPhoto", chat.id)
    assert refused.error is not None and refused.error.startswith("Too Many Requests")
    assert delivered.error is None and delivered.at - refused.at >= 1.0
    assert len(telegram.replies_to(sent)) == 1  # one photo, no apology


@module_loop
async def test_webhook_mode_receives_updates_with_the_secret(telegram: FakeTelegram, service: Service) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    user = new_user()
    async with bot(telegram, service, telegram_webhook_url=url, telegram_webhook_port=port):
        assert telegram.webhook is not None and telegram.webhook["url"] == url
        async with ClientSession() as session, session.post(url, json={"update_id": 1}) as forged:
            assert forged.status == 403  # no secret, no entry
        start = telegram.send_text(user, telegram.private_chat(user), "/start")
        (welcome,) = await replies(telegram, start, kind="text")

    assert "anime" in welcome["text"]
    assert not telegram.calls_to("deleteWebhook")


@module_loop
async def test_token_never_reaches_the_logs(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, service):
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        await replies(telegram, sent, kind="photo")
        # A failing call too (the file vanished from the server): its error is logged with a traceback.
        missing = telegram.send_document(user, chat, b"x" * 10, "gone.png", "image/png")
        telegram.files.pop(missing["document"]["file_id"])
        (apology,) = await replies(telegram, missing, kind="text")

    assert apology["text"] == SOMETHING_WENT_WRONG

    secret = telegram.token.partition(":")[2]
    assert "<redacted>" in caplog.text  # httpx did log the URLs
    assert any(record.exc_info or record.exc_text for record in caplog.records)
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in (record.exc_text or "")


@module_loop
async def test_stats_is_for_admins_only(telegram: FakeTelegram, service: Service) -> None:
    admin, someone = new_user("Admin"), new_user("Sam")
    with_admin = sharing_pool(service, admin_ids={f"telegram:{admin.id}"})
    async with bot(telegram, with_admin):
        asked = telegram.send_text(admin, telegram.private_chat(admin), "/stats")
        (stats,) = await replies(telegram, asked, kind="text")
        refused = telegram.send_text(someone, telegram.private_chat(someone), "/stats")
        (refusal,) = await replies(telegram, refused, kind="text")

    assert "queue depth: 0" in stats["text"] and "workers alive: " in stats["text"]
    assert "admins" in refusal["text"] and "queue" not in refusal["text"]
