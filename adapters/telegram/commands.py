"""The bot's answers in words: /start, /help, /styles, /style and /stats, plain text, and what it can't draw."""

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
from adapters.telegram.texts import NOT_A_PHOTO, SEND_A_PHOTO, privacy_note
from adapters.telegram.uploads import download_limit

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
