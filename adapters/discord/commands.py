"""Discord ``/anime``, the "Animefy" message menu and ``/forget``; ``/settings`` is in ``settings``, the result's
buttons in ``result``.

Each handler reads the interaction, answers Discord within its 3-second window (an ephemeral refusal or a
deferral), hands one ``Order`` per photo to the core and turns the result into a message. Every refusal is
private: the public "thinking…" placeholder is deleted and the sentence sent as an ephemeral follow-up.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from adapters.discord.checks import person_key, refusal_text
from adapters.discord.client import AnimeClient
from adapters.discord.i18n import interaction_translator
from adapters.discord.orders import submit_order
from adapters.discord.progress import follow, progress_label
from adapters.discord.result import show_result
from adapters.discord.texts import DOWNLOAD_FAILED, NO_IMAGE, NOT_AN_IMAGE, STARTING, TOO_LARGE
from bot.i18n import ENGLISH, Translator
from bot.jobs import JobError

_log = logging.getLogger(__name__)

MEGABYTE = 1024 * 1024

# Where one photo's progress and result go (a message's ``edit``), and how its placeholder is taken back.
Edit = Callable[..., Awaitable[Any]]
Remove = Callable[[], Awaitable[Any]]


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
    """Turn every image of a message into anime art in the person's /settings (else the default style)."""
    images = [attachment for attachment in message.attachments if is_image(attachment)]
    if not images:
        _ = interaction_translator(interaction)
        await interaction.response.send_message(_(NO_IMAGE), ephemeral=True)
        return
    await stylize_attachments(interaction, images)


async def forget(interaction: discord.Interaction[AnimeClient]) -> None:
    """Delete the photos kept for the person's buttons (and any other record about them), privately."""
    _ = interaction_translator(interaction)
    photos = await interaction.client.service.forget(person_key(interaction.user.id))
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
    limit = interaction.client.settings.max_upload_bytes
    problems = [attachment_problem(attachment, limit, _) for attachment in attachments]
    usable = [attachment for attachment, problem in zip(attachments, problems, strict=True) if problem is None]
    refusals = "\n".join(problem for problem in problems if problem)
    if not usable:
        await interaction.response.send_message(refusals, ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    if refusals:
        await interaction.followup.send(refusals, ephemeral=True)
    for index, attachment in enumerate(usable):
        if index == 0:
            edit: Edit = interaction.edit_original_response
            remove: Remove = interaction.delete_original_response
        else:
            placeholder = await interaction.followup.send(_(STARTING), wait=True)
            edit, remove = placeholder.edit, placeholder.delete
        await stylize_one(interaction, attachment, style, strength, edit, remove, _)


async def stylize_one(
    interaction: discord.Interaction[AnimeClient],
    attachment: discord.Attachment,
    style: str | None,
    strength: float | None,
    edit: Edit,
    remove: Remove,
    _: Translator,
) -> None:
    """Download one attachment, order it, show its progress and then its result with ``edit``; a refusal takes
    the placeholder back (``remove``) and is said privately."""
    try:
        image = await attachment.read()
    except discord.HTTPException:
        _log.warning("Downloading a Discord attachment failed", exc_info=True)
        await fail(interaction, _(DOWNLOAD_FAILED), remove)
        return
    try:
        accepted = await submit_order(interaction, image=image, style=style, strength=strength)
        result = await follow(accepted.handle, lambda event: progress_label(event, _), lambda text: edit(content=text))
    except JobError as error:
        await fail(interaction, refusal_text(error, _), remove)
        return
    await show_result(interaction, result, accepted.source, accepted.percent, edit=edit)


async def fail(interaction: discord.Interaction[AnimeClient], message: str, remove: Remove) -> None:
    """Take back the public placeholder (and any progress in it) and tell the person why, privately."""
    await remove()
    await interaction.followup.send(message, ephemeral=True)


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
