"""The bot's answers in words: /start, /help, /styles, /style, /stats and the admins' /ban, /unban and /usage,
plain text, and what it can't draw."""

from __future__ import annotations

from telegram import Update

from adapters.telegram.chats import (
    USER_PREFIX,
    answered_elsewhere,
    chat_owner,
    chat_settings,
    is_addressed,
    message_of,
    translator,
    translator_for,
)
from adapters.telegram.context import BotContext
from adapters.telegram.texts import NAME_A_PERSON, NOT_A_PHOTO, SEND_A_PHOTO, privacy_note
from adapters.telegram.uploads import download_limit
from bot.admin_actions import NOT_AN_ADMIN, ban_reply, person_key, unban_reply, usage_reply
from bot.i18n import Translator

BYTES_PER_MB = 2**20


async def on_start(update: Update, context: BotContext) -> None:
    """/start: what the bot does, an example, and what it keeps."""
    service = context.service
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    default = service.styles_by_name().get(service.style_for(settings))
    await message_of(update).reply_text(
        (
            _("I redraw your photos as anime pictures (default look: {style}).", style=default.title)
            if default
            else _("I redraw your photos as anime pictures.")
        )
        + "\n\n"
        + _(
            "Send a photo, or an image as a file to keep full quality, or up to 10 photos at once as an album. "
            "Name a style in the caption to use it, e.g. a photo captioned “hayao”. Buttons under the result switch "
            "style or strength."
        )
        + "\n\n"
        + _(
            "/styles lists the looks, /style NAME sets this chat's default, /settings changes style, strength, "
            "face pass and language. The styles' weights are for non-commercial use only."
        )
        + "\n\n"
        + privacy_note(_, service.settings.source_cache_ttl)
    )


async def on_help(update: Update, context: BotContext) -> None:
    """/help: the commands and limits."""
    _ = await translator(update, context)
    settings = context.service.settings
    await message_of(update).reply_text(
        "\n".join(
            [
                _("Send a photo (or an image file: JPEG, PNG, WebP, HEIC) and I reply with its anime version."),
                _("• caption a photo with a style name to use that style"),
                _("• /styles – the installed styles"),
                _("• /style NAME – this chat's default style"),
                _("• /settings – style, strength, face pass and language"),
                _("• /forget – delete everything I keep about you"),
                _(
                    "• a video, GIF or video note comes back drawn the same way, "
                    "with its sound (the first {seconds} s)",
                    seconds=f"{settings.clip_max_seconds:g}",
                ),
                _("• in groups, mention me in the photo's caption or reply to me"),
                _("Files up to {megabytes} MB.", megabytes=round(download_limit(settings) / BYTES_PER_MB)),
            ]
        )
    )


async def on_styles(update: Update, context: BotContext) -> None:
    """/styles: the installed styles, the chat's current one marked."""
    service = context.service
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    current = service.style_for(settings)
    lines = [
        f"{'✓' if style.name == current else '•'} {style.name} – {style.title}: {_(style.description)}"
        for style in service.styles()
    ]
    await message_of(update).reply_text("\n".join(lines) + "\n\n" + _("Non-commercial use only."))


async def on_stats(update: Update, context: BotContext) -> None:
    """/stats: the pool's numbers, for the people listed in ANIMEBOT_ADMIN_IDS only."""
    service = context.service
    user = update.effective_user
    message = message_of(update)
    if user is None or f"{USER_PREFIX}{user.id}" not in service.settings.admin_ids:
        _ = await translator(update, context)
        await message.reply_text(_("Sorry, /stats is for the bot's admins."))
        return
    lines = [
        f"{name.replace('_', ' ')}: {value:.2f}" if isinstance(value, float) else f"{name.replace('_', ' ')}: {value}"
        for name, value in service.stats().items()
    ]
    await message.reply_text("\n".join(lines))


async def on_style(update: Update, context: BotContext) -> None:
    """/style NAME: remember the chat's default style (kept across restarts, see ``/settings``)."""
    service = context.service
    styles = service.styles_by_name()
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    message = message_of(update)
    wanted = (context.args or [""])[0].lower().replace("-", "_")
    if wanted not in styles:
        current = styles.get(service.style_for(settings))
        await message.reply_text(
            (_("I don't know the style “{style}”.", style=wanted) + " " if wanted else "")
            + (_("This chat uses {style}.", style=current.title) + " " if current else "")
            + _(
                "Choose one of: {styles} (e.g. /style {example}).",
                styles=", ".join(styles),
                example=next(iter(styles), "shinkai"),
            )
        )
        return
    await service.chat_settings.save(chat_owner(update), settings.with_changes(style=wanted))
    await message.reply_text(_("From now on this chat's photos get the {style} look.", style=styles[wanted].title))


async def on_unsupported(update: Update, context: BotContext) -> None:
    """Stickers, voice, audio...: a short reply (in groups only when addressed; in an album, said by the album)."""
    if answered_elsewhere(update, context, image=False):
        return
    _ = await translator(update, context)
    await message_of(update).reply_text(_(NOT_A_PHOTO))


async def on_text(update: Update, context: BotContext) -> None:
    """Plain text: point to what the bot does (in groups only when addressed)."""
    message = message_of(update)
    if is_addressed(message, context.bot):
        _ = await translator(update, context)
        await message.reply_text(_(SEND_A_PHOTO))


async def on_ban(update: Update, context: BotContext) -> None:
    """/ban PERSON [reason]: an admin blocks a person (their id, a key like discord:456, or the author of the
    message this one replies to); the bot then drops their updates."""
    found = await admin_and_target(update, context)
    if found is None:
        return
    admin, target, _ = found
    reason = " ".join((context.args or [])[0 if replied_author(update) else 1 :])
    outcome = await context.service.admin.ban(admin, target, reason)
    await message_of(update).reply_text(_.say(ban_reply(outcome, target)))


async def on_unban(update: Update, context: BotContext) -> None:
    """/unban PERSON: an admin lifts a ban."""
    found = await admin_and_target(update, context)
    if found is None:
        return
    admin, target, _ = found
    lifted = await context.service.admin.unban(admin, target)
    await message_of(update).reply_text(_.say(unban_reply(lifted, target)))


async def on_usage(update: Update, context: BotContext) -> None:
    """/usage PERSON: an admin reads a person's budget today and whether they are banned."""
    found = await admin_and_target(update, context)
    if found is None:
        return
    admin, target, _ = found
    report = await context.service.admin.usage(admin, target)
    await message_of(update).reply_text(" ".join(_.say(line) for line in usage_reply(report)))


def replied_author(update: Update) -> str | None:
    """The person key of the author of the message an update's message replies to (None: no reply, or a bot's)."""
    replied = message_of(update).reply_to_message
    author = replied.from_user if replied is not None else None
    return None if author is None or author.is_bot else f"{USER_PREFIX}{author.id}"


async def admin_and_target(update: Update, context: BotContext) -> tuple[str, str, Translator] | None:
    """For an admin command: (the admin's key, the person named, the admin's translator). Anyone else, or a command
    naming no one, is answered here and gets None."""
    _ = await translator(update, context)
    message = message_of(update)
    user = update.effective_user
    admin = f"{USER_PREFIX}{user.id}" if user is not None else ""
    if not context.service.admin.is_admin(admin):
        await message.reply_text(_.say(NOT_AN_ADMIN))
        return None
    words = context.args or []
    target = replied_author(update) or (person_key(words[0], USER_PREFIX.rstrip(":")) if words else None)
    if target is None:
        await message.reply_text(_(NAME_A_PERSON))
        return None
    return admin, target, _
