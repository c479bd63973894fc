"""Discord: several photos in one command or message, the app installed by a person (no guild), and the
commands' localized names; the real discord.py client against the fake Discord, the real service and engine.

Fixtures and helpers come from ``test_discord`` (one worker, tiny photos).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from adapters.discord import NO_IMAGE
from bot.i18n import Translator
from tests.fake_discord import EPHEMERAL, FakeUser
from tests.test_discord import (  # noqa: F401 - fixtures
    ADA,
    Bot,
    bot,
    fake,
    finished,
    image_of,
    photo,
    point_discord_py_at,
    private_reply,
    service,
    start_bot,
    upload,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

CARL = FakeUser(1_300_000_000_000_000_503, "carl")
RESULT_TIMEOUT = 90.0


async def test_anime_takes_up_to_four_photos_and_answers_each_with_its_own_result(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    first, second, third = (upload(fake, photo, f"p{n}.jpg") for n in range(3))
    token = await fake.send(
        fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=first, image2=second, image3=third)
    )
    await finished(fake, token, "anime-shinkai.jpg")

    def results() -> list[dict]:
        return [m for m in fake.followups(token) if image_of(m) is not None and not m["flags"] & EPHEMERAL]

    await fake.wait_until(lambda: len(results()) == 2 or bool(fake.refused()), RESULT_TIMEOUT)
    assert not fake.refused()
    pictures = [fake.file(image_of(fake.original(token)))] + [fake.file(image_of(m)) for m in results()]
    assert len(pictures) == 3 and all(picture[:2] == b"\xff\xd8" for picture in pictures)
    assert all(m["components"] for m in results())  # each result has its own re-style buttons


async def test_animefy_takes_every_image_of_the_message_and_skips_other_files(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    images = [upload(fake, photo, "a.jpg"), upload(fake, photo, "b.jpg")]
    notes = fake.upload(b"just text", "notes.txt", "text/plain")
    target = fake.user_message(CARL, [images[0], notes, images[1]], guild_id=fake.guild_id)
    token = await fake.send(fake.message_command(CARL, "Animefy", target, guild_id=fake.guild_id))
    await finished(fake, token, "anime-shinkai.jpg")
    await fake.wait_until(
        lambda: any(image_of(m) for m in fake.followups(token)) or bool(fake.refused()), RESULT_TIMEOUT
    )
    assert not fake.refused()
    assert len([m for m in fake.followups(token) if image_of(m)]) == 1  # 2 images: the reply and one follow-up


async def test_user_installed_app_works_in_a_group_dm_without_any_guild(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    interaction = fake.slash_command(CARL, "anime", user_install=True, group_dm=True, image=upload(fake, photo))
    assert "guild_id" not in interaction and interaction["context"] == 2
    token = await fake.send(interaction)
    message = await finished(fake, token, "anime-shinkai.jpg")
    assert message["components"]  # the buttons work there too (they only need the interaction token)


async def test_user_installed_context_menu_in_a_server_without_the_bot(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    stranger_guild = 1_300_000_000_000_000_777  # the bot is not a member: only the person's install counts
    target = fake.user_message(CARL, [upload(fake, photo)], guild_id=stranger_guild)
    token = await fake.send(fake.message_command(CARL, "Animefy", target, guild_id=stranger_guild, user_install=True))
    await finished(fake, token, "anime-shinkai.jpg")


async def test_commands_have_localized_names_and_descriptions(bot: Bot) -> None:
    commands = {command["name"]: command for command in bot.fake.commands}
    anime, menu = commands["anime"], commands["Animefy"]
    for locale, language in (("ru", "ru"), ("ja", "ja"), ("es-ES", "es"), ("es-419", "es")):
        _ = Translator(language)
        assert anime["description_localizations"][locale] == _("Turn photos, videos or GIFs into anime art.")
        assert menu["name_localizations"][locale] == _("menu-name:Animefy")
        options = {option["name"]: option for option in anime["options"]}
        assert options["image"]["description_localizations"][locale] == _("The photo, video or GIF to stylize")
    assert anime["name_localizations"]["ru"] == "аниме"
    assert anime["name_localizations"]["ja"] == "アニメ"
    assert "en-US" not in anime.get("name_localizations", {})


async def test_replies_follow_the_persons_discord_language(bot: Bot) -> None:
    fake = bot.fake
    target = fake.user_message(CARL, [], guild_id=fake.guild_id)
    token = await fake.send(fake.message_command(CARL, "Animefy", target, guild_id=fake.guild_id, locale="ja"))
    reply = await private_reply(fake, token)
    assert reply["content"] == Translator("ja")(NO_IMAGE) != NO_IMAGE


async def test_sticker_button_sends_the_picture_as_a_512_px_webp_privately(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    message = await finished(fake, token, "anime-shinkai.jpg")
    sticker_button = next(
        b for row in message["components"] for b in row["components"] if b["custom_id"].endswith(":sticker")
    )
    press = await fake.send(fake.press_button(CARL, message, sticker_button["custom_id"], guild_id=fake.guild_id))
    await fake.wait_until(
        lambda: any(image_of(m) for m in fake.followups(press)) or bool(fake.refused()), RESULT_TIMEOUT
    )
    assert not fake.refused()
    (reply,) = [m for m in fake.followups(press) if image_of(m)]
    assert reply["flags"] & EPHEMERAL
    attachment = image_of(reply)
    assert attachment["filename"] == "anime-shinkai-sticker.webp"
    sticker = Image.open(io.BytesIO(fake.file(attachment)))
    assert sticker.format == "WEBP" and max(sticker.size) == 512


async def test_forget_deletes_the_persons_kept_photos(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    dora = FakeUser(1_300_000_000_000_000_504, "dora")
    token = await fake.send(fake.slash_command(dora, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    message = await finished(fake, token, "anime-shinkai.jpg")
    key = message["components"][0]["components"][0]["custom_id"].split(":")[1]
    assert await bot.service.find_source(key) is not None

    forgot = await fake.send(fake.slash_command(dora, "forget", guild_id=fake.guild_id, locale="es-ES"))
    reply = await private_reply(fake, forgot)
    assert reply["content"] == "Hecho: borré 1 foto guardada. No guardo nada más sobre ti."
    assert await bot.service.find_source(key) is None
    assert not await bot.service.chat_settings.holds_anything_about(f"discord:{dora.id}")


async def test_settings_are_kept_and_used_by_the_next_command(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    erin = FakeUser(1_300_000_000_000_000_505, "erin")
    shown = await fake.send(fake.slash_command(erin, "settings", guild_id=fake.guild_id))
    assert "Strength: 100%" in (await private_reply(fake, shown))["content"]

    changed = await fake.send(
        fake.slash_command(erin, "settings", guild_id=fake.guild_id, style="hayao", strength=0.5, faces=False)
    )
    reply = (await private_reply(fake, changed))["content"]
    assert "Style: Hayao" in reply and "Strength: 50%" in reply and "Face pass: off" in reply
    kept = await bot.service.chat_settings.load(f"discord:{erin.id}")
    assert (kept.style, kept.strength, kept.faces) == ("hayao", 50, False)

    token = await fake.send(fake.slash_command(erin, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    await finished(fake, token, "anime-hayao.jpg")  # the kept style, without naming it
