"""Discord front end: ``/anime`` and an "Animefy" message menu; the result's buttons are in ``discord_result``.

Each handler reads the interaction, answers Discord within its 3-second window (an ephemeral refusal or a
deferral), hands a ``JobRequest`` to the service and turns the ``JobResult`` into a message. Every refusal is
private: the public "thinking…" placeholder is deleted and the sentence sent as an ephemeral follow-up. The
service (queue, limits, source photos) is reached through the client, never a module global.

Run it inside an already running loop::

    client = build_client(settings, service)
    task = asyncio.create_task(serve(client))
    ...
    await client.close()
    await task
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import discord
from discord import app_commands

from adapters.discord_i18n import (
    COMMAND_NAME,
    CONTEXT_MENU_NAME,
    FACES_OPTION,
    FORGET_NAME,
    IMAGE_OPTION,
    SETTINGS_NAME,
    STRENGTH_OPTION,
    STYLE_OPTION,
    CatalogueTranslator,
    command_name,
    interaction_translator,
    localized,
)
from adapters.discord_replies import apologize, check_allowed
from adapters.discord_settings import chosen_style, owner_of, settings_command
from adapters.discord_stickers import StickerButton
from adapters.discord_result import USER_PREFIX, StyleButton, follow, show_result
from bot.clips import looks_like_clip
from bot.i18n import ENGLISH, N_, Translator
from bot.jobs import STAGE_LABELS, JobError, JobKind, JobProgress, JobRequest, JobStage
from bot.jobs import progress_label as stage_label
from bot.redaction import redact_token_in_logs
from bot.restyle import FULL_STRENGTH, LatestPress
from bot.service import Service

from bot.config import Settings
from bot.front_ends import FrontEnd

_log = logging.getLogger(__name__)

MAX_CHOICES = 25  # Discord allows 25 choices on a slash command option
MEGABYTE = 1024 * 1024

NO_IMAGE = N_("That message has no image or video attached: pick a message with a photo, a video or a GIF.")
NOT_AN_IMAGE = N_("“{name}” is not an image or a video: attach a photo (JPEG, PNG, WebP...), a video or a GIF.")
TOO_LARGE = N_("“{name}” is {size:.1f} MB; the largest photo I take is {limit:.1f} MB.")
DOWNLOAD_FAILED = N_("I could not download that photo from Discord: send the photo again.")


class AnimeClient(discord.Client):
    """A Discord client holding the settings, the service and the command tree."""

    def __init__(self, settings: Settings, service: Service) -> None:
        # The bot uses no voice: without this, discord.py warns at every start that PyNaCl and davey (its voice
        # dependencies) are missing. These class flags are the switch discord.py reads for those two warnings.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(intents=discord.Intents(guilds=True), max_messages=None)
        self.settings = settings
        self.service = service
        self.restyles: LatestPress[int] = LatestPress()  # result message id -> the press being followed
        # Installed to a server, or by a person to their own account (then usable in any server, DM or group DM,
        # the bot itself being in none of them).
        self.tree = AnimeCommandTree(
            self,
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
        )

    async def setup_hook(self) -> None:
        """Register the style buttons and sync the commands globally (after login, before the gateway)."""
        self.add_dynamic_items(StyleButton, StickerButton)
        await self.tree.set_translator(CatalogueTranslator())
        try:
            synced = await self.tree.sync()
        except discord.HTTPException:
            _log.exception("Syncing Discord commands failed; the ones registered before stay in place")
        else:
            _log.info("Synced %d global Discord commands: %s", len(synced), ", ".join(c.name for c in synced))


class AnimeCommandTree(app_commands.CommandTree[AnimeClient]):
    """The command tree, with the guild allow-list applied to every command and a plain reply to crashes."""

    async def interaction_check(self, interaction: discord.Interaction[AnimeClient], /) -> bool:
        """Refuse (ephemerally) interactions from guilds outside ``settings.allowed_guilds``."""
        return await check_allowed(interaction)

    async def on_error(
        self, interaction: discord.Interaction[AnimeClient], error: app_commands.AppCommandError, /
    ) -> None:
        """Log the crash and tell the person in a plain sentence."""
        _log.error("Discord command %r crashed", interaction.command and interaction.command.name, exc_info=error)
        await apologize(interaction)


# Commands

MAX_IMAGES = 4  # /anime's image options: image, image2, image3, image4


async def anime(
    interaction: discord.Interaction[AnimeClient],
    image: discord.Attachment,
    style: str | None = None,
    strength: app_commands.Range[float, 0.0, 1.0] | None = None,
    image2: discord.Attachment | None = None,
    image3: discord.Attachment | None = None,
    image4: discord.Attachment | None = None,
) -> None:
    """Turn the attached photos, videos or GIFs (up to 4) into anime art (style and strength: the person's
    /settings unless given)."""
    attachments = [a for a in (image, image2, image3, image4) if a is not None]
    await stylize_attachments(interaction, attachments, style, strength)


async def animefy(interaction: discord.Interaction[AnimeClient], message: discord.Message) -> None:
    """Turn every image of a message into anime art in the default style."""
    images = [attachment for attachment in message.attachments if is_image(attachment)]
    if not images:
        _ = interaction_translator(interaction)
        await interaction.response.send_message(_(NO_IMAGE), ephemeral=True)
        return
    await stylize_attachments(interaction, images)


async def forget(interaction: discord.Interaction[AnimeClient]) -> None:
    """Delete the photos kept for the person's buttons (and any other record about them), privately."""
    _ = interaction_translator(interaction)
    photos = await interaction.client.service.forget(f"{USER_PREFIX}:{interaction.user.id}")
    await interaction.response.send_message(
        _.plural(
            "Done: I deleted {count} kept photo. I keep nothing else about you.",
            "Done: I deleted {count} kept photos. I keep nothing else about you.",
            photos,
        ),
        ephemeral=True,
    )


async def stylize_attachments(
    interaction: discord.Interaction[AnimeClient],
    attachments: list[discord.Attachment],
    style: str | None = None,
    strength: float | None = None,
) -> None:
    """Check the attachments, defer, then stylize them one after another: the first in the command's own reply,
    each next one in a follow-up message (one at a time keeps a person within their own queue cap). What is not
    given comes from the person's /settings."""
    _ = interaction_translator(interaction)
    chosen = await interaction.client.service.chat_settings.load(owner_of(interaction))
    style = style or chosen_style(chosen, interaction.client.service)
    strength = chosen.strength / FULL_STRENGTH if strength is None else strength
    limit = interaction.client.settings.max_upload_bytes
    problems = [problem for problem in (attachment_problem(a, limit, _) for a in attachments) if problem]
    usable = [a for a in attachments if attachment_problem(a, limit, _) is None]
    if not usable:
        await interaction.response.send_message("\n".join(problems), ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    if problems:
        await interaction.followup.send("\n".join(problems), ephemeral=True)
    for index, attachment in enumerate(usable):
        if index == 0:
            edit: Callable[..., Awaitable[Any]] = interaction.edit_original_response
            remove: Callable[[], Awaitable[Any]] = interaction.delete_original_response
        else:
            placeholder = await interaction.followup.send(_("Starting…"), wait=True)
            edit, remove = placeholder.edit, placeholder.delete
        await _stylize_one(interaction, attachment, style, strength, chosen.faces, edit, remove, _)


async def _stylize_one(
    interaction: discord.Interaction[AnimeClient],
    attachment: discord.Attachment,
    style: str,
    strength: float,
    faces: bool,
    edit: Callable[..., Awaitable[Any]],
    remove: Callable[[], Awaitable[Any]],
    _: Translator,
) -> None:
    """Download one attachment, keep it for re-styling, stylize it and show it with ``edit``; a refusal takes
    the placeholder back (``remove``) and is said privately."""
    try:
        image = await attachment.read()
    except discord.HTTPException:
        _log.warning("Downloading a Discord attachment failed", exc_info=True)
        await _fail(interaction, _(DOWNLOAD_FAILED), remove)
        return
    owner = owner_of(interaction)
    key = await interaction.client.service.keep_source(image, owner=owner)
    request = JobRequest(
        user=owner, image=image, style=style, strength=strength, faces=faces,
        kind=JobKind.CLIP if looks_like_clip(image) else JobKind.PHOTO,
    )
    try:
        handle = await interaction.client.service.submit(request)
        result = await follow(handle, lambda event: progress_label(event, _), lambda text: edit(content=text))
    except JobError as error:
        await _fail(interaction, _.say(error.message), remove)
        return
    await show_result(interaction, result, key, round(strength * FULL_STRENGTH), edit=edit)


async def _fail(
    interaction: discord.Interaction[AnimeClient], message: str, remove: Callable[[], Awaitable[Any]] | None = None
) -> None:
    """Take back the public placeholder (and any progress in it) and tell the person why, privately."""
    await (remove or interaction.delete_original_response)()
    await interaction.followup.send(message, ephemeral=True)


# Pure helpers


def is_image(attachment: discord.Attachment) -> bool:
    """Whether Discord says the attachment is an image or a video, which the bot takes as a clip (by its file name
    when Discord sent no content type)."""
    content_type = attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or ""
    return content_type.startswith(("image/", "video/"))


def attachment_problem(attachment: discord.Attachment, max_bytes: int, _: Translator = ENGLISH) -> str | None:
    """The sentence explaining why an attachment can't be used, or None when it looks like a usable image."""
    if not is_image(attachment):
        return _(NOT_AN_IMAGE, name=attachment.filename)
    if attachment.size > max_bytes:
        return _(TOO_LARGE, name=attachment.filename, size=attachment.size / MEGABYTE, limit=max_bytes / MEGABYTE)
    return None


def progress_label(event: JobProgress, _: Translator = ENGLISH) -> str | None:
    """The text shown while a job runs, or None for the final events (the result or error replaces it)."""
    if event.stage in (JobStage.DONE, JobStage.FAILED):
        return None
    if event.stage is JobStage.QUEUED and event.position:
        return _("{stage} (position {position})…", stage=_(STAGE_LABELS[event.stage]), position=event.position)
    return f"{_.say(stage_label(event))}…"


# Wiring


def build_client(settings: Settings, service: Service) -> AnimeClient:
    """The Discord client with ``/anime`` (style choices from ``service.styles()``) and the "Animefy" menu."""
    client = AnimeClient(settings, service)
    command = app_commands.Command(
        name=command_name(COMMAND_NAME), description=localized("Turn photos, videos or GIFs into anime art."),
        callback=anime,
    )
    app_commands.rename(image=command_name(IMAGE_OPTION), style=command_name(STYLE_OPTION),
                        strength=command_name(STRENGTH_OPTION))(command)
    app_commands.describe(
        image=localized("The photo, video or GIF to stylize"),
        style=localized("The look (default: the server's default style)"),
        strength=localized("0 = photo, 1 = full style"),
        image2=localized("Another photo"),
        image3=localized("Another photo"),
        image4=localized("Another photo"),
    )(command)
    settings = app_commands.Command(
        name=command_name(SETTINGS_NAME), description=localized("Your style, strength and face pass, kept for you."),
        callback=settings_command,
    )
    app_commands.rename(style=command_name(STYLE_OPTION), strength=command_name(STRENGTH_OPTION),
                        faces=command_name(FACES_OPTION))(settings)
    app_commands.describe(
        style=localized("Your style from now on"),
        strength=localized("0 = photo, 1 = full style"),
        faces=localized("Stylize faces on their own (face pass)"),
    )(settings)
    styles = service.styles()
    if styles:
        choices = [app_commands.Choice(name=style.title, value=style.name) for style in styles[:MAX_CHOICES]]
        app_commands.choices(style=choices)(command)
        app_commands.choices(style=choices)(settings)
    client.tree.add_command(command)
    client.tree.add_command(settings)
    client.tree.add_command(app_commands.ContextMenu(name=command_name(CONTEXT_MENU_NAME), callback=animefy))
    client.tree.add_command(
        app_commands.Command(
            name=command_name(FORGET_NAME), description=localized("Delete everything the bot keeps about you."),
            callback=forget,
        )
    )
    return client


async def serve(client: AnimeClient) -> None:
    """Log in and stay connected until ``client.close()``; run it as a task beside the other front ends."""
    token = client.settings.discord_token
    if token is None:
        raise ValueError("ANIMEBOT_DISCORD_TOKEN is not set")
    redact_token_in_logs(token.get_secret_value())
    await client.start(token.get_secret_value())


def serving(settings: Settings, service: Service) -> AbstractAsyncContextManager[None] | None:
    """Discord while entered, when ``settings.discord_token`` is set (for ``animebot serve``)."""
    if settings.discord_token is None:
        return None
    return _connected(build_client(settings, service))


@asynccontextmanager
async def _connected(client: AnimeClient) -> AsyncIterator[None]:
    task = asyncio.create_task(serve(client))
    try:
        yield
    finally:
        await client.close()
        await task


FRONT_END = FrontEnd("discord", start_order=2, serving=serving)
