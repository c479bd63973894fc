"""The Discord front end end to end: the real discord.py client against a local fake Discord, the real service.

discord.py's REST base (``Route.BASE``) and gateway URL (``DiscordWebSocket.DEFAULT_GATEWAY``) are class attributes
with no constructor option in 2.7, so the test points them at ``tests/fake_discord.py`` for its duration. The
client logs in, syncs its commands, connects to the gateway, and answers ``INTERACTION_CREATE`` payloads with
real HTTP calls; the photos go through the real ``Service`` and its worker running the real generators.

Over 400 lines on purpose: the front end's core scenarios share one module-scoped service and fake Discord
(the chat features are in ``test_discord_chat_features``, clips in ``test_discord_clips``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import discord
import numpy as np
import pytest
import pytest_asyncio
import yarl
from discord.gateway import DiscordWebSocket
from PIL import Image

from adapters.discord import NO_IMAGE, NOT_ALLOWED, NOT_YOURS, SOURCE_EXPIRED, AnimeClient, build_client, serve
from bot.config import Settings
from bot.jobs import JobError, JobRequest, RateLimited
from bot.service import Service
from tests.fake_discord import (
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    EPHEMERAL,
    MESSAGE_COMMAND,
    RESPONSE_WINDOW,
    FakeDiscord,
    FakeUser,
)

on_module_loop = pytest.mark.asyncio(loop_scope="module")
pytestmark = [on_module_loop, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
BOT_TOKEN = f"{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(5)}.{secrets.token_urlsafe(27)}"
WORKING_SIZE = 128  # tiny photos keep each real job to a few seconds on a busy 2-core machine
PHOTO_SIDE = 128
ADA = FakeUser(1_300_000_000_000_000_501, "ada")
BOB = FakeUser(1_300_000_000_000_000_502, "bob")
OTHER_GUILD = 1_300_000_000_000_000_999
SOURCE_TTL = 600.0
RESULT_TIMEOUT = 60.0


class ManualClock:
    """A monotonic clock the test moves by hand (for the source cache's time-to-live)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Bot:
    """One running client and the fake Discord it talks to."""

    fake: FakeDiscord
    client: AnimeClient
    service: Service
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """What ``animebot serve`` does on shutdown."""
        await self.client.close()
        await asyncio.wait_for(self.task, 10)


StartBot = Callable[[Service], Awaitable[Bot]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(weights_dir: Path) -> AsyncIterator[Service]:
    """The real service with one worker running the real engine."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        discord_token=BOT_TOKEN,
        weights_dir=weights_dir,
        workers=1,
        working_size=WORKING_SIZE,
        rate_limit_per_minute=0,
        source_cache_ttl=SOURCE_TTL,
    )
    async with Service(settings) as running:
        yield running


def sharing_queue(service: Service, clock: Callable[[], float] | None = None, **overrides: object) -> Service:
    """Another real ``Service`` with other settings, on the already running worker pool."""
    settings = service.settings.model_copy(update=overrides)
    return Service(settings, queue=service.queue, **({"clock": clock} if clock else {}))


@pytest.fixture(autouse=True)
def point_discord_py_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeDiscord], None]:
    """Returns a function aiming discord.py's REST base and gateway at a fake (undone after the test)."""

    def aim(fake: FakeDiscord) -> None:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))

    return aim


@pytest_asyncio.fixture(loop_scope="module")
async def fake(point_discord_py_at: Callable[[FakeDiscord], None]) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=BOT_TOKEN) as server:
        point_discord_py_at(server)
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def start_bot(fake: FakeDiscord) -> AsyncIterator[StartBot]:
    """Starts clients on the fake (as ``animebot serve`` does: ``serve`` as a task) and closes them afterwards."""
    running: list[Bot] = []

    async def start(service: Service) -> Bot:
        fake.ready.clear()
        client = build_client(service.settings, service)
        task = asyncio.create_task(serve(client))
        ready = asyncio.create_task(fake.ready.wait())
        await asyncio.wait([task, ready], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if task.done():
            task.result()  # the client failed to start: raise its error
        assert fake.ready.is_set(), "the client never identified on the gateway"
        running.append(Bot(fake, client, service, task))
        return running[-1]

    yield start
    for started in running:
        await started.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def bot(start_bot: StartBot, service: Service) -> Bot:
    return await start_bot(service)


@pytest.fixture(scope="module")
def photo(astronaut: np.ndarray) -> bytes:
    """A small real portrait, as a JPEG a person would attach."""
    image = Image.fromarray(astronaut).resize((PHOTO_SIDE, PHOTO_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# --- helpers ---


def image_of(message: dict | None) -> dict | None:
    """The message's only attachment, once it has one."""
    if message is None or len(message["attachments"]) != 1:
        return None
    return message["attachments"][0]


CONTROLS = ["less", "more", "orig", "sticker"]


def buttons_of(message: dict) -> dict[str, dict]:
    """The message's buttons: style buttons by style name, the controls by role (``less``, ``more``, ``orig``).

    Custom ids are ``anime:<key>:<style>:<percent>``, with ``:<role>`` on the controls.
    """
    buttons = [button for row in message["components"] for button in row["components"]]
    parts = [button["custom_id"].split(":") for button in buttons]
    return {(part[4] if len(part) == 5 else part[2]): button for part, button in zip(parts, buttons, strict=True)}


async def showing(fake: FakeDiscord, token: str, text: str) -> dict:
    """Wait until the original response's text contains ``text`` and no re-style is running on it."""

    def shows() -> bool:
        content = (fake.original(token) or {}).get("content", "")
        return text in content and "⏳" not in content

    await fake.wait_until(lambda: shows() or bool(fake.refused()), RESULT_TIMEOUT)
    assert not fake.refused(), [(call.path, call.error) for call in fake.refused()]
    message = fake.original(token)
    assert message is not None
    return message


def percent_of(button: dict) -> int:
    """The strength (percent) a button asks for."""
    return int(button["custom_id"].split(":")[3])


def status_edits(fake: FakeDiscord, token: str) -> list[str]:
    """The texts of every edit of a press's message that showed a re-style status."""
    return [
        call.body["content"]
        for call in fake.answers(token)
        if call.method == "PATCH" and isinstance(call.body, dict) and "⏳" in (call.body.get("content") or "")
    ]


def callback_types(fake: FakeDiscord, token: str) -> list[int]:
    return [call.body["type"] for call in fake.answers(token) if call.path.endswith("/callback")]


async def finished(fake: FakeDiscord, token: str, filename: str) -> dict:
    """Wait for the original response to show the result file ``filename``; returns the message."""

    def shows_result() -> bool:
        attachment = image_of(fake.original(token))
        return attachment is not None and attachment["filename"] == filename

    await fake.wait_until(lambda: shows_result() or bool(fake.refused()), RESULT_TIMEOUT)
    assert not fake.refused(), [(call.path, call.error) for call in fake.refused()]
    message = fake.original(token)
    assert message is not None
    return message


async def private_reply(fake: FakeDiscord, token: str) -> dict:
    """Wait for the ephemeral answer to ``token``: the response itself or a follow-up."""

    def ephemeral() -> list[dict]:
        original = fake.original(token)
        candidates = ([original] if original else []) + fake.followups(token)
        return [message for message in candidates if message["flags"] & EPHEMERAL and message["content"]]

    await fake.wait_until(lambda: bool(ephemeral()), RESULT_TIMEOUT)
    return ephemeral()[0]


def upload(fake: FakeDiscord, photo: bytes, filename: str = "me.jpg") -> dict:
    """The photo attached by a person, as Discord describes it."""
    return fake.upload(photo, filename, "image/jpeg")


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- tests ---


async def test_commands_are_synced_globally_with_the_service_styles(bot: Bot) -> None:
    commands = {command["name"]: command for command in bot.fake.commands}

    assert set(commands) == {"anime", "Animefy", "forget", "settings", "ban", "unban", "usage"}
    options = {option["name"]: option for option in commands["anime"]["options"]}
    assert [choice["value"] for choice in options["style"]["choices"]] == [style.name for style in bot.service.styles()]
    assert options["image"]["required"] is True
    assert (options["strength"]["min_value"], options["strength"]["max_value"]) == (0.0, 1.0)
    assert commands["Animefy"]["type"] == MESSAGE_COMMAND
    assert sorted(commands["anime"]["contexts"]) == [0, 1, 2]  # guilds, the bot's DMs, other DMs and group DMs
    assert sorted(commands["anime"]["integration_types"]) == [0, 1]  # installed to a server or to a person
    assert not bot.fake.refused()


async def test_slash_command_defers_then_shows_the_photo_with_style_buttons(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    fake.download_delay = RESPONSE_WINDOW + 0.5  # answering only after the download would be too late
    attachment = fake.upload(photo, "me.jpg", "image/jpeg", ephemeral=True)

    command = fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=attachment, style="hayao", strength=0.5)
    token = await fake.send(command)
    message = await finished(fake, token, "anime-hayao.jpg")

    assert callback_types(fake, token) == [DEFERRED_CHANNEL_MESSAGE]
    assert not message["flags"] & EPHEMERAL
    assert "Hayao" in message["content"] and "50%" in message["content"]
    result = decoded(fake.file(image_of(message)))
    assert result.format == "JPEG"
    assert result.width == result.height  # the square photo stays square
    assert fake.file(image_of(message)) != photo
    buttons = buttons_of(message)
    assert list(buttons) == [style.name for style in bot.service.styles()] + CONTROLS
    assert [len(row["components"]) for row in message["components"]][:-1] == [5] * (len(message["components"]) - 1)
    assert [button["label"] for button in message["components"][-1]["components"]] == [
        "− strength",
        "+ strength",
        "Original",
        "Sticker",
    ]
    assert (percent_of(buttons["less"]), percent_of(buttons["more"]), percent_of(buttons["orig"])) == (25, 75, 0)
    assert buttons["hayao"]["disabled"] is True
    assert all(not button["disabled"] for name, button in buttons.items() if name != "hayao")
    key = buttons["hayao"]["custom_id"].split(":")[1]
    assert buttons["hayao"]["custom_id"] == f"anime:{key}:hayao:50"
    assert await bot.service.sources.get(key) == photo
    assert not fake.refused()


def rebuilt(service: Service, data_dir: Path) -> Service:
    """A new service on ``data_dir`` (sharing the running workers), as a new ``animebot serve`` process builds it."""
    return sharing_queue(service, data_dir=data_dir)


async def restart(bot: Bot, start_bot: StartBot, data_dir: Path) -> Bot:
    """Stop the client and its service's photo store, then start a new client on a new service, same data dir."""
    await bot.stop()
    await bot.service.sources.close()  # type: ignore[attr-defined]  # nothing of the first run stays in memory
    return await start_bot(rebuilt(bot.service, data_dir))


async def test_buttons_restyle_the_same_message_for_its_sender_even_after_a_restart(
    start_bot: StartBot, service: Service, photo: bytes, tmp_path: Path
) -> None:
    bot = await start_bot(rebuilt(service, tmp_path))
    fake = bot.fake
    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    first = await finished(fake, token, "anime-shinkai.jpg")
    await restart(bot, start_bot, tmp_path)

    refused = await fake.send(
        fake.press_button(BOB, first, buttons_of(first)["sketch"]["custom_id"], guild_id=fake.guild_id)
    )
    assert (await private_reply(fake, refused))["content"] == NOT_YOURS
    press = await fake.send(
        fake.press_button(ADA, first, buttons_of(first)["sketch"]["custom_id"], guild_id=fake.guild_id)
    )
    message = await finished(fake, token, "anime-sketch.jpg")

    assert callback_types(fake, press) == [DEFERRED_UPDATE_MESSAGE]
    assert message["id"] == first["id"]
    assert fake.followups(press) == [] and fake.followups(token) == []
    assert "Sketch" in message["content"] and "⏳" not in message["content"]
    assert buttons_of(message)["sketch"]["disabled"] and not buttons_of(message)["shinkai"]["disabled"]
    assert fake.file(image_of(message)) != fake.file(image_of(first))
    statuses = status_edits(fake, press)
    assert statuses and all(status.endswith(("⏳ Re-styling as Sketch…", "%")) for status in statuses), statuses
    assert not any("Reading the photo" in status for status in statuses)
    assert not fake.refused()


async def test_strength_and_original_buttons_work_also_after_a_restart(
    start_bot: StartBot, service: Service, photo: bytes, tmp_path: Path
) -> None:
    bot = await start_bot(rebuilt(service, tmp_path))
    fake = bot.fake
    token = await fake.send(
        fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=upload(fake, photo), style="hayao")
    )
    full = await finished(fake, token, "anime-hayao.jpg")
    assert buttons_of(full)["more"]["disabled"] and not buttons_of(full)["less"]["disabled"]

    await fake.send(fake.press_button(ADA, full, buttons_of(full)["less"]["custom_id"], guild_id=fake.guild_id))
    weaker = await showing(fake, token, "strength 75%")
    await restart(bot, start_bot, tmp_path)
    await fake.send(fake.press_button(ADA, weaker, buttons_of(weaker)["orig"]["custom_id"], guild_id=fake.guild_id))
    original = await showing(fake, token, "Original")

    assert "Hayao** · strength 75%" in weaker["content"]
    assert buttons_of(weaker)["hayao"]["disabled"] and percent_of(buttons_of(weaker)["hayao"]) == 75
    assert (percent_of(buttons_of(weaker)["less"]), percent_of(buttons_of(weaker)["more"])) == (50, 100)
    assert original["content"].startswith("**Original**")
    assert buttons_of(original)["orig"]["disabled"] and not buttons_of(original)["hayao"]["disabled"]
    assert percent_of(buttons_of(original)["hayao"]) == 100  # a style button brings the full style back

    def difference(result: dict) -> float:
        picture = np.asarray(decoded(fake.file(image_of(result))).convert("RGB"), dtype=np.float32)
        source = np.asarray(decoded(photo).convert("RGB").resize(picture.shape[1::-1]), dtype=np.float32)
        return float(np.abs(picture - source).mean())

    assert difference(original) < difference(weaker) < difference(full)  # 0% is the photo, 75% between
    assert not fake.refused()


async def test_two_quick_presses_end_with_one_clean_status_and_the_last_style(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    shown = await finished(fake, token, "anime-shinkai.jpg")

    hayao, sketch = buttons_of(shown)["hayao"]["custom_id"], buttons_of(shown)["sketch"]["custom_id"]
    first = await fake.send(fake.press_button(ADA, shown, hayao, guild_id=fake.guild_id))
    await fake.wait_until(lambda: bool(status_edits(fake, first)), RESULT_TIMEOUT)
    running = fake.original(token)
    assert running is not None and buttons_of(running)["hayao"]["label"] == "⏳ Hayao"
    assert buttons_of(running)["shinkai"]["disabled"] and not buttons_of(running)["sketch"]["disabled"]
    last = await fake.send(fake.press_button(ADA, running, sketch, guild_id=fake.guild_id))
    final = await finished(fake, token, "anime-sketch.jpg")
    await asyncio.sleep(3.0)  # the first press's job ends meanwhile: it must not show its picture or status

    final = fake.original(token)
    assert final is not None and image_of(final)["filename"] == "anime-sketch.jpg"
    assert "⏳" not in final["content"] and "Sketch" in final["content"]
    assert all(not button["label"].startswith("⏳") for button in buttons_of(final).values())
    assert not any(call.files for call in fake.answers(first))  # the superseded press never sent a picture
    first_statuses, last_statuses = status_edits(fake, first), status_edits(fake, last)
    assert all("Hayao" in status and "Sketch" not in status for status in first_statuses)
    assert last_statuses and all("Sketch" in status and "Hayao" not in status for status in last_statuses)
    last_started = min(call.at for call in fake.answers(last) if call.method == "PATCH")
    assert all(call.at < last_started for call in fake.answers(first) if call.method == "PATCH")  # never interleaved
    assert all(status.count("⏳") == 1 for status in first_statuses + last_statuses)
    assert not fake.refused()


async def test_button_on_an_expired_photo_asks_for_it_again(
    start_bot: StartBot, service: Service, photo: bytes
) -> None:
    clock = ManualClock()
    bot = await start_bot(sharing_queue(service, clock=clock))
    fake = bot.fake
    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    message = await finished(fake, token, "anime-shinkai.jpg")

    clock.now += SOURCE_TTL + 1
    press = await fake.send(
        fake.press_button(ADA, message, buttons_of(message)["hayao"]["custom_id"], guild_id=fake.guild_id)
    )
    reply = await private_reply(fake, press)

    assert reply["content"] == SOURCE_EXPIRED
    assert callback_types(fake, press) == [CHANNEL_MESSAGE]
    assert image_of(fake.messages[int(message["id"])])["filename"] == "anime-shinkai.jpg"


async def test_works_in_direct_messages(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=None, image=upload(fake, photo), style="hayao"))
    message = await finished(fake, token, "anime-hayao.jpg")

    assert "guild_id" not in message
    press = await fake.send(fake.press_button(ADA, message, buttons_of(message)["shinkai"]["custom_id"]))
    await finished(fake, token, "anime-shinkai.jpg")
    assert callback_types(fake, press) == [DEFERRED_UPDATE_MESSAGE]


async def test_animefy_context_menu_stylizes_the_message_image(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    target = fake.user_message(BOB, [upload(fake, photo, "holiday.jpg")], guild_id=fake.guild_id)

    token = await fake.send(fake.message_command(ADA, "Animefy", target, guild_id=fake.guild_id))
    default = bot.service.settings.default_style
    message = await finished(fake, token, f"anime-{default}.jpg")

    assert callback_types(fake, token) == [DEFERRED_CHANNEL_MESSAGE]
    width, height = decoded(fake.file(image_of(message))).size
    assert width == height
    assert buttons_of(message)[default]["disabled"]


async def test_animefy_on_a_message_without_image_answers_privately(bot: Bot) -> None:
    fake = bot.fake
    words = fake.upload(b"just words", "notes.txt", "text/plain; charset=utf-8")
    target = fake.user_message(BOB, [words], guild_id=fake.guild_id)

    token = await fake.send(fake.message_command(ADA, "Animefy", target, guild_id=fake.guild_id))

    assert (await private_reply(fake, token))["content"] == NO_IMAGE
    assert callback_types(fake, token) == [CHANNEL_MESSAGE]


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (b"%PDF-1.7 not a photo", "scan.pdf", "application/pdf"),
        (b"plain text", "notes.txt", None),  # Discord sometimes omits the type: the file name decides
    ],
)
async def test_non_image_attachment_gets_a_private_error_and_no_job(
    bot: Bot, data: bytes, filename: str, content_type: str | None
) -> None:
    fake = bot.fake
    before = bot.service.stats()["jobs_accepted"], bot.service.sources.usage()

    attachment = fake.upload(data, filename, content_type)
    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=attachment))
    reply = await private_reply(fake, token)

    assert filename in reply["content"] and "not an image" in reply["content"]
    assert callback_types(fake, token) == [CHANNEL_MESSAGE]
    assert (bot.service.stats()["jobs_accepted"], bot.service.sources.usage()) == before


async def test_too_large_attachment_gets_a_private_error(start_bot: StartBot, service: Service, photo: bytes) -> None:
    bot = await start_bot(sharing_queue(service, max_upload_bytes=len(photo) - 1))
    fake = bot.fake

    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    reply = await private_reply(fake, token)

    assert "me.jpg" in reply["content"] and "MB" in reply["content"]
    assert callback_types(fake, token) == [CHANNEL_MESSAGE]


async def test_service_errors_replace_the_thinking_message_with_a_private_one(bot: Bot) -> None:
    fake = bot.fake
    broken = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # a PNG signature and nothing after it
    with pytest.raises(JobError) as expected:
        await (await bot.service.enqueue(JobRequest(user="test:direct", image=broken, style="shinkai"))).result()

    attachment = fake.upload(broken, "broken.png", "image/png")
    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=attachment))
    reply = await private_reply(fake, token)

    assert reply["content"] == expected.value.message
    assert fake.original(token) is None  # the public "thinking..." message is gone, no public error left behind
    assert callback_types(fake, token) == [DEFERRED_CHANNEL_MESSAGE]
    assert not fake.refused()


async def test_five_commands_at_once_leave_no_public_refusal(bot: Bot, photo: bytes) -> None:
    fake = bot.fake
    waiting_cap = bot.service.settings.per_user_queued
    commands = [fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=upload(fake, photo)) for _ in range(5)]
    tokens = await asyncio.gather(*(fake.send(command) for command in commands))

    await fake.wait_until(
        lambda: sum(bool(image_of(fake.original(token))) for token in tokens) == waiting_cap + 1, RESULT_TIMEOUT * 3
    )
    refused = [token for token in tokens if not image_of(fake.original(token))]
    assert len(refused) == 1  # one runs, three wait, the fifth is one too many
    reply = await private_reply(fake, refused[0])
    assert "waiting" in reply["content"]
    public = [message for message in fake.messages.values() if not message["flags"] & EPHEMERAL]
    assert all(image_of(message) or message.get("_token") not in tokens for message in public), public
    assert fake.original(refused[0]) is None  # the public "thinking..." placeholder is gone
    assert not fake.refused()


async def test_rate_limit_message_reaches_the_person(start_bot: StartBot, service: Service, photo: bytes) -> None:
    bot = await start_bot(sharing_queue(service, rate_limit_per_minute=1))
    fake = bot.fake
    first = await fake.send(fake.slash_command(BOB, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    await finished(fake, first, "anime-shinkai.jpg")

    second = await fake.send(fake.slash_command(BOB, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    reply = await private_reply(fake, second)

    with pytest.raises(RateLimited) as refusal:
        bot.service.limiter.check(f"discord:{BOB.id}")
    first_sentence = refusal.value.message.split(".")[0]  # the rest names the seconds left, which move on
    assert reply["content"].startswith(first_sentence)
    assert fake.original(second) is None  # no public placeholder left in the channel
    assert bot.service.stats()["rate_limited"] == 2


async def test_a_refused_button_press_answers_privately_and_leaves_the_message(
    start_bot: StartBot, service: Service, photo: bytes
) -> None:
    bot = await start_bot(sharing_queue(service, rate_limit_per_minute=1))
    fake = bot.fake
    token = await fake.send(fake.slash_command(BOB, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))
    shown = await finished(fake, token, "anime-shinkai.jpg")

    hayao = buttons_of(shown)["hayao"]["custom_id"]
    press = await fake.send(fake.press_button(BOB, shown, hayao, guild_id=fake.guild_id))
    reply = await private_reply(fake, press)

    assert "in the last minute" in reply["content"]
    assert callback_types(fake, press) == [CHANNEL_MESSAGE]  # an ephemeral answer, no public edit
    assert fake.original(token) == shown


async def test_allow_list_refuses_other_guilds_and_dms(
    fake: FakeDiscord, start_bot: StartBot, service: Service, photo: bytes
) -> None:
    await start_bot(sharing_queue(service, allowed_guilds={fake.guild_id}))

    elsewhere = await fake.send(fake.slash_command(ADA, "anime", guild_id=OTHER_GUILD, image=upload(fake, photo)))
    direct = await fake.send(fake.slash_command(ADA, "anime", guild_id=None, image=upload(fake, photo)))
    allowed = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=upload(fake, photo)))

    assert (await private_reply(fake, elsewhere))["content"] == NOT_ALLOWED
    assert (await private_reply(fake, direct))["content"] == NOT_ALLOWED
    await finished(fake, allowed, "anime-shinkai.jpg")


async def test_the_token_is_used_but_never_logged(
    fake: FakeDiscord, start_bot: StartBot, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await start_bot(service)
    attachment = fake.upload(b"plain text", "notes.txt", "text/plain")
    token = await fake.send(fake.slash_command(ADA, "anime", guild_id=fake.guild_id, image=attachment))
    await private_reply(fake, token)

    assert fake.identify is not None and fake.identify["token"] == BOT_TOKEN
    assert "Synced 7 global Discord commands" in caplog.text
    assert BOT_TOKEN not in caplog.text


async def test_start_logs_no_voice_warnings(tmp_path: Path) -> None:
    # A fresh process: discord.py warns once per process, so an earlier client here would hide the warnings.
    code = (
        "import logging\n"
        "from bot.config import Settings\n"
        "from bot.service import Service\n"
        "from adapters.discord import build_client\n"
        "logging.basicConfig(level=logging.INFO)\n"  # what `animebot serve` sets up
        "settings = Settings(_env_file=None, discord_token='x.y.z', data_dir=__import__('sys').argv[1])\n"
        "build_client(settings, Service(settings))\n"
        "logging.getLogger('discord').warning('client built')\n"
    )
    command = [sys.executable, "-c", code, str(tmp_path)]
    started = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, cwd=REPO, timeout=120)

    assert started.returncode == 0, started.stderr
    assert "client built" in started.stderr  # the log is there, and shows...
    assert "is not installed" not in started.stderr and "voice" not in started.stderr.lower()  # ...no voice warning
