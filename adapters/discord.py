"""Discord front end: ``/anime``, an "Animefy" message menu, and style buttons that re-style in place.

Each handler reads the interaction, answers Discord within its 3-second window (an ephemeral refusal or a
deferral), hands a ``JobRequest`` to the service and turns the ``JobResult`` into a message. The service
(queue, limits, source cache) is reached through the client, never a module global. Buttons carry everything
they need in their custom id (``anime:<source key>:<style>:<strength %>``) and are registered as a
``DynamicItem``, so they keep working after a restart for as long as the source cache holds the photo.

Run it inside an already running loop::

    client = build_client(settings, service)
    task = asyncio.create_task(serve(client))
    ...
    await client.close()
    await task
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import mimetypes
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.jobs import STAGE_LABELS, JobError, JobHandle, JobProgress, JobRequest, JobResult, JobStage

if TYPE_CHECKING:
    from animegan.manifest import Style
    from bot.config import Settings

from bot.redaction import redact_token_in_logs
from bot.service import Service

_log = logging.getLogger(__name__)

USER_PREFIX = "discord"
BUTTON_ID = re.compile(r"anime:(?P<key>[^:]{1,16}):(?P<style>[a-z0-9_]{1,40}):(?P<percent>\d{1,3})")
MAX_BUTTONS = 25  # Discord allows 5 rows of 5 buttons on a message
MAX_CHOICES = 25  # and 25 choices on a slash command option
PROGRESS_EDIT_INTERVAL = 1.0  # seconds: edits of one message share a rate limit, so intermediate stages are skipped
MEGABYTE = 1024 * 1024
PERCENT = 100

NOT_ALLOWED = "This bot is not enabled here."
NOT_YOURS = "Only the person who sent this photo can re-style it: use /anime with your own photo."
SOURCE_EXPIRED = "I no longer have that photo: send the photo again."
NO_IMAGE = "That message has no image attached: pick a message with a photo (JPEG, PNG, WebP...)."
NOT_AN_IMAGE = "“{name}” is not an image: attach a photo (JPEG, PNG, WebP...)."
TOO_LARGE = "“{name}” is {size:.1f} MB; the largest photo I take is {limit:.1f} MB."
DOWNLOAD_FAILED = "I could not download that photo from Discord: send the photo again."
CRASHED = "Something went wrong on my side. Please try again in a moment."
LICENCE_NOTE = "-# AnimeGAN weights: non-commercial use only."


class AnimeClient(discord.Client):
    """A Discord client holding the settings, the service and the command tree."""

    def __init__(self, settings: Settings, service: Service) -> None:
        super().__init__(intents=discord.Intents(guilds=True), max_messages=None)
        self.settings = settings
        self.service = service
        self.tree = AnimeCommandTree(
            self,
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )

    async def setup_hook(self) -> None:
        """Register the style buttons and sync the commands globally (after login, before the gateway)."""
        self.add_dynamic_items(StyleButton)
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
        return await _check_allowed(interaction)

    async def on_error(
        self, interaction: discord.Interaction[AnimeClient], error: app_commands.AppCommandError, /
    ) -> None:
        """Log the crash and tell the person in a plain sentence."""
        _log.error("Discord command %r crashed", interaction.command and interaction.command.name, exc_info=error)
        await _apologize(interaction)


class StyleButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=BUTTON_ID):
    """A button re-styling the photo of its message; its custom id carries source key, style and strength."""

    def __init__(
        self, key: str, style: str, strength: float, *, label: str | None = None, current: bool = False
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or style,
                style=discord.ButtonStyle.primary if current else discord.ButtonStyle.secondary,
                disabled=current,
                custom_id=button_id(key, style, strength),
            )
        )
        self.key = key
        self.style = style
        self.strength = strength

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[AnimeClient], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> StyleButton:
        """Rebuild the button from a pressed component's custom id."""
        return cls(match["key"], match["style"], int(match["percent"]) / PERCENT)

    async def interaction_check(self, interaction: discord.Interaction[AnimeClient], /) -> bool:
        """Apply the guild allow-list and let only the photo's sender re-style it."""
        if not await _check_allowed(interaction):
            return False
        if not is_owner(interaction):
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return False
        return True

    async def callback(self, interaction: discord.Interaction[AnimeClient]) -> None:
        """Re-style the cached source photo and replace the message's image with the new one."""
        image = await interaction.client.service.find_source(self.key)
        if image is None:
            await interaction.response.send_message(SOURCE_EXPIRED, ephemeral=True)
            return
        await interaction.response.defer()
        try:
            await _stylize(interaction, image, self.key, self.style, self.strength)
        except Exception:
            _log.exception("Discord re-style button crashed")
            await _apologize(interaction)


# Commands


async def anime(
    interaction: discord.Interaction[AnimeClient],
    image: discord.Attachment,
    style: str | None = None,
    strength: app_commands.Range[float, 0.0, 1.0] = 1.0,
) -> None:
    """Turn the attached photo into anime art."""
    await _stylize_attachment(interaction, image, style or interaction.client.settings.default_style, strength)


async def animefy(interaction: discord.Interaction[AnimeClient], message: discord.Message) -> None:
    """Turn the first image of a message into anime art in the default style."""
    image = first_image(message.attachments)
    if image is None:
        await interaction.response.send_message(NO_IMAGE, ephemeral=True)
        return
    await _stylize_attachment(interaction, image, interaction.client.settings.default_style, 1.0)


async def _stylize_attachment(
    interaction: discord.Interaction[AnimeClient], attachment: discord.Attachment, style: str, strength: float
) -> None:
    """Check the attachment, defer, download it, keep it for re-styling, and stylize it."""
    problem = attachment_problem(attachment, interaction.client.settings.max_upload_bytes)
    if problem is not None:
        await interaction.response.send_message(problem, ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    try:
        image = await attachment.read()
    except discord.HTTPException:
        _log.warning("Downloading a Discord attachment failed", exc_info=True)
        await _fail(interaction, DOWNLOAD_FAILED)
        return
    key = await interaction.client.service.keep_source(image)
    await _stylize(interaction, image, key, style, strength)


async def _stylize(
    interaction: discord.Interaction[AnimeClient], image: bytes, key: str, style: str, strength: float
) -> None:
    """Run one job, showing progress in the interaction's message, then put the result and style buttons there."""
    service = interaction.client.service
    request = JobRequest(user=f"{USER_PREFIX}:{interaction.user.id}", image=image, style=style, strength=strength)
    try:
        handle = await service.submit(request)
        result = await _result_with_progress(interaction, handle)
    except JobError as error:
        await _fail(interaction, error.message)
        return
    styles = service.styles()
    await interaction.edit_original_response(
        content=caption(result, styles),
        attachments=[discord.File(io.BytesIO(result.image), filename=result_filename(result))],
        view=style_view(key, styles, result.style, result.strength),
    )


async def _result_with_progress(interaction: discord.Interaction[AnimeClient], handle: JobHandle) -> JobResult:
    """Wait for the job's result while a side task shows its progress."""
    watcher = asyncio.create_task(_show_progress(interaction, handle))
    try:
        return await handle.result()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def _show_progress(interaction: discord.Interaction[AnimeClient], handle: JobHandle) -> None:
    """Edit the message's text as the job moves along, at most once per ``PROGRESS_EDIT_INTERVAL``."""
    loop = asyncio.get_running_loop()
    shown, shown_at = None, -math.inf
    async for event in handle.progress():
        label = progress_label(event)
        if label is None or label == shown or loop.time() - shown_at < PROGRESS_EDIT_INTERVAL:
            continue
        try:
            await interaction.edit_original_response(content=label)
        except discord.HTTPException:
            _log.debug("A Discord progress edit failed", exc_info=True)
        shown, shown_at = label, loop.time()


async def _fail(interaction: discord.Interaction[AnimeClient], message: str) -> None:
    """Take back the progress shown so far and tell the person why, privately."""
    if interaction.type is discord.InteractionType.component:
        await interaction.edit_original_response(content=interaction.message.content if interaction.message else None)
    else:
        await interaction.delete_original_response()
    await interaction.followup.send(message, ephemeral=True)


async def _check_allowed(interaction: discord.Interaction[AnimeClient]) -> bool:
    """True when the interaction comes from an allowed place; otherwise say so ephemerally."""
    if interaction.client.service.access.allows_guild(interaction.guild_id):
        return True
    await interaction.response.send_message(NOT_ALLOWED, ephemeral=True)
    return False


async def _apologize(interaction: discord.Interaction[AnimeClient]) -> None:
    """Tell the person something broke, whether or not the interaction was answered yet."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(CRASHED, ephemeral=True)
        else:
            await interaction.response.send_message(CRASHED, ephemeral=True)
    except discord.HTTPException:
        _log.warning("Could not tell a Discord user about a crash", exc_info=True)


# Pure helpers


def is_owner(interaction: discord.Interaction[AnimeClient]) -> bool:
    """Whether the button presser is the person whose command made the message (True when Discord doesn't say)."""
    metadata = interaction.message.interaction_metadata if interaction.message else None
    return metadata is None or metadata.user.id == interaction.user.id


def is_image(attachment: discord.Attachment) -> bool:
    """Whether Discord says the attachment is an image (by its file name when Discord sent no content type)."""
    content_type = attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or ""
    return content_type.startswith("image/")


def attachment_problem(attachment: discord.Attachment, max_bytes: int) -> str | None:
    """The sentence explaining why an attachment can't be used, or None when it looks like a usable image."""
    if not is_image(attachment):
        return NOT_AN_IMAGE.format(name=attachment.filename)
    if attachment.size > max_bytes:
        return TOO_LARGE.format(name=attachment.filename, size=attachment.size / MEGABYTE, limit=max_bytes / MEGABYTE)
    return None


def first_image(attachments: list[discord.Attachment]) -> discord.Attachment | None:
    """The first image attachment, if any."""
    return next((attachment for attachment in attachments if is_image(attachment)), None)


def button_id(key: str, style: str, strength: float) -> str:
    """The custom id of a style button: ``anime:<source key>:<style>:<strength in percent>``."""
    return f"anime:{key}:{style}:{round(strength * PERCENT)}"


def progress_label(event: JobProgress) -> str | None:
    """The text shown while a job runs, or None for the final events (the result or error replaces it)."""
    if event.stage in (JobStage.DONE, JobStage.FAILED):
        return None
    if event.stage is JobStage.QUEUED and event.position:
        return f"{STAGE_LABELS[event.stage]} (position {event.position})…"
    return f"{STAGE_LABELS[event.stage]}…"


def caption(result: JobResult, styles: list[Style]) -> str:
    """The message text under a result: style, strength, time, the engine's notes, and the licence."""
    titles = {style.name: style.title for style in styles}
    lines = [f"**{titles.get(result.style, result.style)}** · strength {result.strength:.0%} · {result.seconds:.1f} s"]
    lines += [f"-# {note}" for note in result.notes]
    lines.append(LICENCE_NOTE)
    return "\n".join(lines)


def result_filename(result: JobResult) -> str:
    """A file name whose extension matches the result's kind (``anime-shinkai.jpg``)."""
    extension = mimetypes.guess_extension(result.mime) or "." + result.mime.rpartition("/")[2]
    return f"anime-{result.style}{extension}"


def style_view(key: str, styles: list[Style], current: str, strength: float) -> discord.ui.View:
    """One button per installed style; the current one is highlighted and disabled."""
    view = discord.ui.View(timeout=None)
    for style in styles[:MAX_BUTTONS]:
        view.add_item(StyleButton(key, style.name, strength, label=style.title, current=style.name == current))
    return view


# Wiring


def build_client(settings: Settings, service: Service) -> AnimeClient:
    """The Discord client with ``/anime`` (style choices from ``service.styles()``) and the "Animefy" menu."""
    client = AnimeClient(settings, service)
    command = app_commands.Command(name="anime", description="Turn a photo into anime art.", callback=anime)
    app_commands.describe(
        image="The photo to stylize",
        style="The look (default: the server's default style)",
        strength="0 = photo, 1 = full style",
    )(command)
    styles = service.styles()
    if styles:
        choices = [app_commands.Choice(name=style.title, value=style.name) for style in styles[:MAX_CHOICES]]
        app_commands.choices(style=choices)(command)
    client.tree.add_command(command)
    client.tree.add_command(app_commands.ContextMenu(name="Animefy", callback=animefy))
    return client


async def serve(client: AnimeClient) -> None:
    """Log in and stay connected until ``client.close()``; run it as a task beside the other front ends."""
    token = client.settings.discord_token
    if token is None:
        raise ValueError("ANIMEBOT_DISCORD_TOKEN is not set")
    redact_token_in_logs(token.get_secret_value())
    await client.start(token.get_secret_value())
