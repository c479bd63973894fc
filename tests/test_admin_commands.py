"""The admins' /ban, /unban and /usage, bans and daily budgets on the local fake Telegram and fake Discord (issue 22,
points 1 and 2): the real python-telegram-bot and discord.py clients, the real service (its workers drawing with
a negative in place of the network, so each photo takes a moment), stores in a fresh data dir.

Non-admins get a plain refusal; a banned person's messages are dropped before any download, with one answer a
day; every admin action lands in the audit log; a spent budget is said in one sentence.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from bot.admin_actions import NOT_AN_ADMIN
from bot.audit import AdminAction
from bot.bans import BANNED_MESSAGE
from bot.config import Settings
from bot.service import Service
from tests import test_discord, test_telegram
from tests.fake_discord import EPHEMERAL, FakeDiscord, FakeUser
from tests.fake_telegram import FakeTelegram
from tests.fake_telegram import FakeUser as TelegramUser
from tests.support_clip_engine import NEGATIVE_ENGINE
from tests.test_discord import BOT_TOKEN, StartBot, finished, private_reply, upload
from tests.test_telegram import bot, jpeg, replies

# The fake platforms' fixtures of the front ends' main test modules (pytest injects them by these names).
telegram = test_telegram.telegram
fake = test_discord.fake
point_discord_py_at = test_discord.point_discord_py_at
start_bot = test_discord.start_bot

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

REPLY_TIMEOUT = 60.0
_ids = itertools.count(8101)


def person(name: str) -> TelegramUser:
    number = next(_ids)
    return TelegramUser(id=number, first_name=name, username=f"{name.lower()}{number}")


def admin_settings(weights_dir: Path, data_dir: Path, admin: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "weights_dir": weights_dir,
        "engine_factory": NEGATIVE_ENGINE,
        "workers": 1,
        "working_size": 128,
        "data_dir": data_dir,
        "admin_ids": {admin},
        "rate_limit_per_minute": 0,
        "discord_token": BOT_TOKEN,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def photo() -> bytes:
    return jpeg(np.full((96, 128, 3), 90, np.uint8), (128, 96))


# ---- Telegram -----------------------------------------------------------------------------------------------------


async def test_telegram_admin_bans_and_the_banned_person_is_dropped_before_any_download(
    telegram: FakeTelegram, weights_dir: Path, tmp_path: Path, photo: bytes
) -> None:
    admin, spammer, someone = person("Admin"), person("Spam"), person("Sam")
    settings = admin_settings(weights_dir, tmp_path, f"telegram:{admin.id}")
    to_admin = telegram.private_chat(admin)
    async with Service(settings) as service, bot(telegram, service):
        refused = telegram.send_text(someone, telegram.private_chat(someone), f"/ban {spammer.id}")
        (refusal,) = await replies(telegram, refused, kind="text")
        banned = telegram.send_text(admin, to_admin, f"/ban {spammer.id} sends junk")
        (ban_said,) = await replies(telegram, banned, kind="text")

        to_spammer = telegram.private_chat(spammer)
        first = telegram.send_photo(spammer, to_spammer, photo)
        (told,) = await replies(telegram, first, kind="text")
        second = telegram.send_photo(spammer, to_spammer, photo)
        await asyncio.sleep(1.5)  # time for an (unwanted) answer to the second photo
        downloads = telegram.calls_to("getFile")
        answers_to_second = telegram.replies_to(second)

        asked = telegram.send_text(admin, to_admin, f"/usage telegram:{spammer.id}")
        (usage_said,) = await replies(telegram, asked, kind="text")
        # /unban as a reply to one of the person's messages names them
        lifted = telegram.send_text(admin, to_admin, "/unban", reply_to=first)
        (unban_said,) = await replies(telegram, lifted, kind="text")
        again = telegram.send_photo(spammer, to_spammer, photo)
        (drawn,) = await replies(telegram, again, kind="photo")
        entries = await service.audit.recent(10)

    assert refusal["text"] == NOT_AN_ADMIN
    assert ban_said["text"] == f"telegram:{spammer.id} is banned: the bot ignores them from now on."
    assert told["text"] == BANNED_MESSAGE
    assert not answers_to_second, "a banned person is answered once a day"
    assert not downloads, "nothing of a banned person is downloaded"
    assert usage_said["text"] == (
        f"telegram:{spammer.id} has used 0 photos today; no budget applies to them. They are banned."
    )
    assert unban_said["text"] == f"telegram:{spammer.id} is no longer banned."
    assert drawn["photo"]
    assert [(entry.admin, entry.action, entry.target, entry.detail) for entry in entries] == [
        (f"telegram:{admin.id}", AdminAction.UNBAN, f"telegram:{spammer.id}", ""),
        (f"telegram:{admin.id}", AdminAction.USAGE, f"telegram:{spammer.id}", ""),
        (f"telegram:{admin.id}", AdminAction.BAN, f"telegram:{spammer.id}", "sends junk"),
    ]


async def test_telegram_says_a_spent_budget_in_one_sentence_in_the_persons_language(
    telegram: FakeTelegram, weights_dir: Path, tmp_path: Path, photo: bytes
) -> None:
    admin = person("Admin")
    reader = TelegramUser(id=next(_ids), first_name="Ira", language_code="ru")
    settings = admin_settings(weights_dir, tmp_path, f"telegram:{admin.id}", daily_photos=1)
    chat = telegram.private_chat(reader)
    async with Service(settings) as service, bot(telegram, service):
        first = telegram.send_photo(reader, chat, photo)
        await replies(telegram, first, kind="photo")
        second = telegram.send_photo(reader, chat, photo)
        (refusal,) = await replies(telegram, second, kind="text")
        asked = telegram.send_text(admin, telegram.private_chat(admin), f"/usage {reader.id}")
        (usage_said,) = await replies(telegram, asked, kind="text")
    assert refusal["text"] == ("На сегодня у вас не осталось фото (ваш лимит — 1 в день); он обновится в 00:00 UTC.")
    assert usage_said["text"].startswith(f"telegram:{reader.id} has used 1 of 1 photos today (0 left)")


# ---- Discord ------------------------------------------------------------------------------------------------------


ADMIN = FakeUser(1_300_000_000_000_000_701, "admin")
MALLORY = FakeUser(1_300_000_000_000_000_702, "mallory")
EVE = FakeUser(1_300_000_000_000_000_703, "eve")


@pytest_asyncio.fixture(loop_scope="module")
async def discord_service(weights_dir: Path, tmp_path: Path) -> AsyncIterator[Service]:
    async with Service(admin_settings(weights_dir, tmp_path, f"discord:{ADMIN.id}", daily_photos=1)) as service:
        yield service


async def test_discord_admin_commands_bans_and_budget(
    start_bot: StartBot, discord_service: Service, photo: bytes
) -> None:
    client = await start_bot(discord_service)
    fake: FakeDiscord = client.fake
    guild = fake.guild_id

    refused = await fake.send(fake.slash_command(EVE, "ban", guild_id=guild, person=str(MALLORY.id)))
    refusal = await private_reply(fake, refused)
    banned = await fake.send(
        fake.slash_command(ADMIN, "ban", guild_id=guild, person=f"<@{MALLORY.id}>", reason="raids", locale="es-ES")
    )
    ban_said = await private_reply(fake, banned)

    first = await fake.send(fake.slash_command(MALLORY, "anime", guild_id=guild, image=upload(fake, photo)))
    told = await private_reply(fake, first)
    second = await fake.send(fake.slash_command(MALLORY, "anime", guild_id=guild, image=upload(fake, photo)))
    await asyncio.sleep(1.5)
    answers_to_second = fake.answers(second)

    asked = await fake.send(fake.slash_command(ADMIN, "usage", guild_id=guild, person=f"discord:{MALLORY.id}"))
    usage_said = await private_reply(fake, asked)
    lifted = await fake.send(fake.slash_command(ADMIN, "unban", guild_id=guild, person=str(MALLORY.id)))
    unban_said = await private_reply(fake, lifted)

    drawn = await fake.send(fake.slash_command(MALLORY, "anime", guild_id=guild, image=upload(fake, photo)))
    await finished(fake, drawn, "anime-shinkai.jpg")
    spent = await fake.send(fake.slash_command(MALLORY, "anime", guild_id=guild, image=upload(fake, photo)))
    budget_said = await private_reply(fake, spent)
    entries = await discord_service.audit.recent(10)

    assert refusal["content"] == NOT_AN_ADMIN and refusal["flags"] & EPHEMERAL
    assert ban_said["content"] == f"discord:{MALLORY.id} está bloqueado: desde ahora el bot lo ignora."
    assert told["content"] == BANNED_MESSAGE and told["flags"] & EPHEMERAL
    assert not answers_to_second, "a banned person is answered once a day, then dropped"
    assert usage_said["content"] == (
        f"discord:{MALLORY.id} has used 0 of 1 photos today (1 left); budgets reset at 00:00 UTC. They are banned."
    )
    assert unban_said["content"] == f"discord:{MALLORY.id} is no longer banned."
    reset = budget_said["content"]
    assert reset.startswith("You have no photos left today (your budget is 1 a day); it resets at <t:")
    assert reset.endswith(":t>.")  # Discord shows it in the reader's own time zone
    assert [(entry.action, entry.target, entry.detail) for entry in entries] == [
        (AdminAction.UNBAN, f"discord:{MALLORY.id}", ""),
        (AdminAction.USAGE, f"discord:{MALLORY.id}", ""),
        (AdminAction.BAN, f"discord:{MALLORY.id}", "raids"),
    ]
