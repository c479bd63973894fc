"""Telegram chat features end to end: albums, /settings kept across restarts (SQLite, and Redis shared by two
front ends), replies in the person's language, /forget. The real python-telegram-bot against the fake Bot API
server, the real service and engine (fixtures and helpers from ``test_telegram``).

Over 400 lines on purpose: each feature's scenario shares the fixtures of ``test_telegram``.
"""

from __future__ import annotations

import itertools
import logging
import re
import sqlite3
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from babel.messages.pofile import read_po

from adapters.telegram.texts import NOT_A_PHOTO, NOT_YOURS
from bot.i18n import LOCALE_DIR, Translator
from bot.orders import SOURCE_EXPIRED
from bot.service import Service
from bot.settings_store import FILE_NAME, ChatSettings, SqliteSettingsStore
from tests.fake_telegram import FakeChat, FakeTelegram, FakeUser
from tests.support_redis import RedisServer
from tests.test_telegram import (  # noqa: F401 - fixtures
    REPLY_TIMEOUT,
    bot,
    decoded,
    jpeg,
    module_loop,
    replies,
    service,
    service_settings,
    telegram,
)

_user_ids = itertools.count(5001)
JsonDict = dict[str, Any]


def new_user(language: str | None = None) -> FakeUser:
    number = next(_user_ids)
    return FakeUser(id=number, first_name="Yuki", username=f"yuki{number}", language_code=language)


def settings_buttons(message: JsonDict) -> dict[str, str]:
    return {b["text"]: b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row}


async def answered(telegram: FakeTelegram, count: int) -> None:
    """Wait for ``count`` button answers and the settings message edits that follow them."""
    await telegram.wait_until(
        lambda: (
            len(telegram.calls_to("answerCallbackQuery")) >= count
            and len(telegram.calls_to("editMessageText")) >= count
        ),
        REPLY_TIMEOUT,
    )


def photos(coffee: np.ndarray, count: int) -> list[tuple[str, bytes]]:
    """``count`` different photos (shifted crops), as album items."""
    return [("photo", jpeg(np.roll(coffee, 37 * index, axis=1))) for index in range(count)]


# ---- albums -------------------------------------------------------------------------------------------------------


@module_loop
async def test_album_of_three_comes_back_as_one_album_and_one_message_of_buttons_that_restyle_all(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, service):
        sent = telegram.send_album(user, chat, photos(coffee, 3))
        await telegram.wait_until(lambda: bool(telegram.calls_to("sendMediaGroup", chat.id)), REPLY_TIMEOUT)
        buttons_message = (await replies(telegram, sent[0], count=1, kind="reply_markup"))[0]
        (album_call,) = telegram.calls_to("sendMediaGroup", chat.id)
        album = [m for m in telegram.bot_messages(chat.id) if "media_group_id" in m]
        assert len(album) == 3 and len({m["media_group_id"] for m in album}) == 1
        assert album_call.params["reply_parameters"]["message_id"] == sent[0]["message_id"]
        first_pictures = [telegram.file_data(m["photo"][-1]["file_id"]) for m in album]
        assert len(set(first_pictures)) == 3  # three pictures, not one thrice
        assert not telegram.calls_to("sendPhoto", chat.id)  # one album, not three photos
        assert buttons_message["text"].startswith("Album of 3 pictures: Shinkai")

        other = service.styles()[1]
        telegram.press_button(user, buttons_message, settings_buttons(buttons_message)[other.title])
        await telegram.wait_until(lambda: len(telegram.calls_to("editMessageMedia", chat.id)) == 3, REPLY_TIMEOUT)
        await telegram.wait_until(
            lambda: telegram.message(chat.id, buttons_message["message_id"])["text"].startswith(
                f"Album of 3 pictures: {other.title}"
            ),
            REPLY_TIMEOUT,
        )

    edited = {int(call.params["message_id"]) for call in telegram.calls_to("editMessageMedia", chat.id)}
    assert edited == {m["message_id"] for m in album}
    restyled = [telegram.file_data(telegram.message(chat.id, m["message_id"])["photo"][-1]["file_id"]) for m in album]
    assert all(new != old for new, old in zip(restyled, first_pictures, strict=True))
    final = telegram.message(chat.id, buttons_message["message_id"])
    assert f"✓ {other.title}" in settings_buttons(final)
    assert not telegram.refused()


@module_loop
async def test_album_mixing_photos_with_a_video_and_a_text_file_answers_the_photos_and_says_what_it_skipped(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    items = [*photos(coffee, 2), ("video", b"\x00\x00\x00\x18ftypmp42"), ("document:notes.txt:text/plain", b"hi")]
    async with bot(telegram, service):
        sent = telegram.send_album(user, chat, items)
        await telegram.wait_until(lambda: bool(telegram.calls_to("sendMediaGroup", chat.id)), REPLY_TIMEOUT)
        await replies(telegram, sent[0], count=1, kind="reply_markup")

    texts = [m["text"] for m in telegram.bot_messages(chat.id) if "text" in m]
    assert "I skipped 2 items of the album that aren't photos." in texts
    assert NOT_A_PHOTO not in texts  # one note for the album, not a refusal per item
    assert len(telegram.calls_to("sendMediaGroup", chat.id)[0].params["media"]) == 2
    assert not telegram.refused()


@module_loop
async def test_ten_photos_with_a_cap_of_three_all_come_back_the_rest_waiting_their_turn(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    assert service.settings.per_user_queued == 3
    user = new_user()
    chat = telegram.private_chat(user)
    small = [("photo", jpeg(np.roll(coffee, 11 * i, axis=0), (128, 96))) for i in range(10)]
    async with bot(telegram, service):
        telegram.send_album(user, chat, small)
        await telegram.wait_until(lambda: bool(telegram.calls_to("sendMediaGroup", chat.id)), REPLY_TIMEOUT * 2)

    (album,) = telegram.calls_to("sendMediaGroup", chat.id)
    assert len(album.params["media"]) == 10
    texts = [m.get("text", "") for m in telegram.bot_messages(chat.id)]
    assert not any("waiting" in text for text in texts)  # nobody was told "you already have 3 waiting"
    assert not telegram.refused()


@module_loop
async def test_album_in_a_group_whose_caption_mentions_the_bot_is_answered_whole(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    group = FakeChat(id=-100_777_000_1, type="supergroup", title="Anime club")
    async with bot(telegram, service):
        telegram.send_text(user, group, "hi all")  # the group exists for the fake server once someone spoke
        mention = f"@{telegram.bot_user.username} please"
        sent = telegram.send_album(user, group, photos(coffee, 2), caption=mention)
        await telegram.wait_until(lambda: bool(telegram.calls_to("sendMediaGroup", group.id)), REPLY_TIMEOUT)
        (buttons,) = await replies(telegram, sent[0], count=1, kind="reply_markup")
        telegram.press_button(new_user(), buttons, settings_buttons(buttons)["Hayao"])  # someone else's album
        await telegram.wait_until(lambda: bool(telegram.calls_to("answerCallbackQuery")), REPLY_TIMEOUT)
    (album,) = telegram.calls_to("sendMediaGroup", group.id)
    assert len(album.params["media"]) == 2  # both photos, though only the first one's caption named the bot
    assert telegram.calls_to("answerCallbackQuery")[0].params["text"] == NOT_YOURS
    assert not telegram.calls_to("editMessageMedia", group.id)
    assert not telegram.refused()


# ---- settings, languages, /forget ----------------------------------------------------------------------------------


@module_loop
async def test_settings_buttons_change_what_the_next_photo_gets_and_survive_a_restart(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray, tmp_path: Path
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    hayao = next(style for style in service.styles() if style.name == "hayao")
    first = Service(service_settings(service.settings.weights_dir, data_dir=tmp_path), queue=service.queue)
    async with bot(telegram, first):
        command = telegram.send_text(user, chat, "/settings")
        (panel,) = await replies(telegram, command)
        assert "Style: Shinkai" in panel["text"] and "Strength: 100%" in panel["text"]
        telegram.press_button(user, panel, settings_buttons(panel)[hayao.title])
        await answered(telegram, 1)
        telegram.press_button(
            user, telegram.message(chat.id, panel["message_id"]), settings_buttons(panel)["− strength"]
        )
        await answered(telegram, 2)
        panel = telegram.message(chat.id, panel["message_id"])
        assert "Style: Hayao" in panel["text"] and "Strength: 75%" in panel["text"]
        telegram.press_button(user, panel, settings_buttons(panel)["Face pass: on"])
        await answered(telegram, 3)
    await first.chat_settings.close()  # the first "process" is gone; only the file remains
    await first.sources.close()  # type: ignore[attr-defined]

    after = Service(service_settings(service.settings.weights_dir, data_dir=tmp_path), queue=service.queue)
    async with bot(telegram, after):
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        (reply,) = await replies(telegram, sent, kind="photo")
    assert reply["caption"].startswith("Hayao, strength 75%")
    assert await after.chat_settings.load(f"telegram:{user.id}") == ChatSettings("hayao", 75, False, None)
    assert not telegram.refused()


def english_fragments() -> list[str]:
    """Pieces of English msgids (between placeholders, 12+ characters) that a translated reply must not show."""
    with (LOCALE_DIR / "ru" / "LC_MESSAGES" / "animebot.po").open("rb") as source:
        ids = [m.id for m in read_po(source) if m.id]
    pieces = set()
    for msgid in ids:
        for text in msgid if isinstance(msgid, tuple) else (msgid,):
            for literal, *_ in string.Formatter().parse(text):
                pieces.update(part.strip() for part in re.split(r"[\n•]", literal) if len(part.strip()) >= 12)
    return sorted(pieces)


def everything_the_bot_said(telegram: FakeTelegram, chat_id: int) -> list[str]:
    said: list[str] = []
    for call in telegram.calls:
        if call.chat_id not in (chat_id, None) or call.error:
            continue
        params = call.params
        said += [str(params[key]) for key in ("text", "caption") if params.get(key)]
        if isinstance(params.get("media"), dict) and params["media"].get("caption"):
            said.append(params["media"]["caption"])
        markup = params.get("reply_markup") or {}
        said += [b["text"] for row in markup.get("inline_keyboard", []) for b in row]
    return said


@pytest.mark.parametrize("language", ["ru", "es", "ja"])
@module_loop
async def test_a_person_gets_every_reply_in_their_apps_language(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray, language: str
) -> None:
    user = new_user(language)
    chat = telegram.private_chat(user)
    _ = Translator(language)
    async with bot(telegram, service):
        for text in ("/start", "/help", "/styles", "/settings", "hello", "/style nope"):
            await replies(telegram, telegram.send_text(user, chat, text))
        await replies(telegram, telegram.send_sticker(user, chat))
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        (reply,) = await replies(telegram, sent, kind="photo")
        first_caption = reply["caption"]
        telegram.press_button(user, reply, settings_buttons(reply)[_("− strength")])
        await telegram.wait_until(lambda: bool(telegram.calls_to("editMessageMedia", chat.id)), REPLY_TIMEOUT)

    said = everything_the_bot_said(telegram, chat.id)
    leaks = [(fragment, text) for text in said for fragment in english_fragments() if fragment in text]
    assert not leaks, leaks
    joined = "\n".join(said)
    for msgid in ("Settings for this chat:", "Non-commercial use only.", "− strength", "Face pass: on"):
        assert _(msgid) in joined and _(msgid) != msgid
    assert _(NOT_A_PHOTO) in joined
    assert first_caption.startswith(_("{style}, strength {percent}%", style="Shinkai", percent=100))
    assert not telegram.refused()


@module_loop
async def test_language_chosen_in_settings_wins_over_the_apps(telegram: FakeTelegram, service: Service) -> None:
    user = new_user("es")
    chat = telegram.private_chat(user)
    async with bot(telegram, service):
        (panel,) = await replies(telegram, telegram.send_text(user, chat, "/settings"))
        assert panel["text"].startswith("Ajustes de este chat:")
        telegram.press_button(user, panel, settings_buttons(panel)["日本語"])
        await answered(telegram, 1)
        assert telegram.message(chat.id, panel["message_id"])["text"].startswith("このチャットの設定:")
        (help_reply,) = await replies(telegram, telegram.send_text(user, chat, "/help"))
    assert help_reply["text"].startswith(
        Translator("ja")("Send a photo (or an image file: JPEG, PNG, WebP, HEIC) and I reply with its anime version.")
    )


@module_loop
async def test_forget_leaves_nothing_about_the_person_in_the_database(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray, tmp_path: Path
) -> None:
    user, bystander = new_user("ru"), new_user()
    chat = telegram.private_chat(user)
    mine = Service(service_settings(service.settings.weights_dir, data_dir=tmp_path), queue=service.queue)
    await mine.chat_settings.save(f"telegram:{bystander.id}", ChatSettings(style="hayao"))
    async with bot(telegram, mine):
        (panel,) = await replies(telegram, telegram.send_text(user, chat, "/settings"))
        telegram.press_button(user, panel, settings_buttons(panel)["− сила"])
        await answered(telegram, 1)
        sent = telegram.send_photo(user, chat, jpeg(coffee))
        (reply,) = await replies(telegram, sent, kind="photo")
        restyle = settings_buttons(reply)["Оригинал"]
        assert await mine.chat_settings.holds_anything_about(f"telegram:{user.id}")
        (answer,) = await replies(telegram, telegram.send_text(user, chat, "/forget"))
        assert answer["text"].startswith("Готово: я удалил ваши настройки и 1 сохранённое фото")
        telegram.press_button(user, reply, restyle)
        await telegram.wait_until(lambda: len(telegram.calls_to("answerCallbackQuery")) == 2, REPLY_TIMEOUT)
    await mine.chat_settings.close()
    await mine.sources.close()  # type: ignore[attr-defined]

    key = restyle.split("|")[0]
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        rows = [
            row
            for table in ("chat_settings", "owned_sources", "sticker_sets")
            for row in db.execute(f"SELECT * FROM {table}")
        ]
    assert rows == [(f"telegram:{bystander.id}", "hayao", 100, 1, None, rows[0][5])]  # only the other person
    with sqlite3.connect(tmp_path / "sources.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM photos WHERE key = ?", (key,)).fetchone() == (0,)
    # Nothing of the photo lingers in the file's free pages either (secure_delete).
    photo_bytes = telegram.file_data(sent["photo"][-1]["file_id"])
    assert photo_bytes[1000:1064] not in (tmp_path / "sources.sqlite3").read_bytes()
    assert telegram.calls_to("answerCallbackQuery")[-1].params["text"] == Translator("ru")(SOURCE_EXPIRED)


@module_loop
async def test_a_corrupted_settings_file_is_set_aside_and_the_bot_answers_with_everything_else_kept(
    telegram: FakeTelegram, service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = Service(service_settings(service.settings.weights_dir, data_dir=tmp_path), queue=service.queue)
    key = await before.keep_source(b"a kept photo", owner="telegram:1")
    await before.chat_settings.close()
    await before.sources.close()  # type: ignore[attr-defined]
    (tmp_path / FILE_NAME).write_bytes(b"\x00not a database, a disk error\xff" * 400)

    caplog.set_level(logging.WARNING, logger="bot.settings_store")
    after = Service(service_settings(service.settings.weights_dir, data_dir=tmp_path), queue=service.queue)
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, after):
        (panel,) = await replies(telegram, telegram.send_text(user, chat, "/settings"))
    assert panel["text"].startswith("Settings for this chat:")
    assert await after.find_source(key) == b"a kept photo"  # the photos behind buttons are untouched
    (warning,) = [r.getMessage() for r in caplog.records if "could not be read" in r.getMessage()]
    assert "moved it to" in warning and "source photos are kept" in warning
    assert [p.name for p in tmp_path.glob(f"{FILE_NAME}.broken-*")]
    assert isinstance(await SqliteSettingsStore.in_folder(tmp_path).schema_version(), int)
    await after.chat_settings.close()
    await after.sources.close()  # type: ignore[attr-defined]


@module_loop
async def test_two_front_ends_on_redis_share_the_settings(
    service: Service, redis_server: RedisServer, tmp_path: Path
) -> None:
    user = new_user()
    front_ends = [
        Service(
            service_settings(
                service.settings.weights_dir, redis_url=redis_server.url, workers=0, data_dir=tmp_path / str(n)
            )
        )
        for n in range(2)
    ]
    async with FakeTelegram() as first_server, FakeTelegram() as second_server:
        async with bot(first_server, front_ends[0]):
            chat = first_server.private_chat(user)
            (panel,) = await replies(first_server, first_server.send_text(user, chat, "/settings"))
            first_server.press_button(user, panel, settings_buttons(panel)["Русский"])
            await answered(first_server, 1)
        async with bot(second_server, front_ends[1]):
            chat = second_server.private_chat(user)
            (help_reply,) = await replies(second_server, second_server.send_text(user, chat, "/help"))
    for front_end in front_ends:
        await front_end.stop()
    assert help_reply["text"].startswith("Пришлите фото")
    assert not list(tmp_path.glob("*/settings.sqlite3"))  # kept in Redis, not in a file of either front end


# ---- stickers -----------------------------------------------------------------------------------------------------


@module_loop
async def test_sticker_button_makes_a_512_px_webp_and_the_pack_is_created_then_added_to(
    telegram: FakeTelegram, service: Service, coffee: np.ndarray
) -> None:
    user = new_user()
    chat = telegram.private_chat(user)
    async with bot(telegram, service):
        for round_number in (1, 2):
            sent = telegram.send_photo(user, chat, jpeg(np.roll(coffee, 50 * round_number, axis=1)))
            (reply,) = await replies(telegram, sent, kind="photo")
            telegram.press_button(user, reply, settings_buttons(reply)["🎨 Sticker"])
            await telegram.wait_until(
                lambda count=round_number: len(telegram.calls_to("sendSticker", chat.id)) == count, REPLY_TIMEOUT
            )
            sticker_message = [m for m in telegram.bot_messages(chat.id) if "sticker" in m][-1]
            telegram.press_button(user, sticker_message, settings_buttons(sticker_message)["Add to my sticker pack"])
            await telegram.wait_until(
                lambda count=round_number: (
                    sum("Your sticker pack" in m.get("text", "") for m in telegram.bot_messages(chat.id)) == count
                ),
                REPLY_TIMEOUT,
            )

    upload = telegram.calls_to("sendSticker", chat.id)[0].files["sticker"].data
    picture = decoded(upload)
    assert picture.format == "WEBP" and max(picture.size) == 512
    assert picture.size == (512, round(512 * 240 / 360))  # the result's shape, long side 512
    (created,) = telegram.calls_to("createNewStickerSet")
    (added,) = telegram.calls_to("addStickerToSet")
    name = f"anime_{user.id}_by_{telegram.bot_user.username}"
    assert created.params["name"] == added.params["name"] == name
    assert len(telegram.sticker_sets[name]["stickers"]) == 2 and telegram.sticker_sets[name]["owner"] == user.id
    assert await service.chat_settings.sticker_set(f"telegram:{user.id}") == name
    assert f"https://t.me/addstickers/{name}" in telegram.bot_messages(chat.id)[-1]["text"]
    assert not telegram.refused()
