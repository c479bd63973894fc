"""The Discord front end wired together: the commands, their options and the result's buttons on one client.

The only module that imports the handlers; everything below it imports nothing above itself.
"""

from __future__ import annotations

from typing import Any

from discord import app_commands

from adapters.discord.admin import ban, unban, usage
from adapters.discord.client import AnimeClient
from adapters.discord.commands import anime, animefy, forget
from adapters.discord.i18n import (
    COMMAND_NAME,
    CONTEXT_MENU_NAME,
    FACES_OPTION,
    FORGET_NAME,
    IMAGE_OPTION,
    SETTINGS_NAME,
    STRENGTH_OPTION,
    STYLE_OPTION,
    command_name,
    localized,
)
from adapters.discord.result import StyleButton
from adapters.discord.settings import show_settings
from adapters.discord.stickers import StickerButton
from bot.config import Settings
from bot.service import Service

MAX_CHOICES = 25  # Discord allows 25 choices on a slash command option

SlashCommand = app_commands.Command[Any, ..., None]


def build_client(settings: Settings, service: Service) -> AnimeClient:
    """The Discord client with ``/anime``, ``/settings`` (style choices from ``service.styles()``), ``/forget``,
    the admins' ``/ban``, ``/unban`` and ``/usage``, the "Animefy" menu and the result's buttons."""
    client = AnimeClient(settings, service, buttons=(StyleButton, StickerButton))
    stylize, choose = anime_command(), settings_command()
    styles = service.styles()
    if styles:
        choices = [app_commands.Choice(name=style.title, value=style.name) for style in styles[:MAX_CHOICES]]
        app_commands.choices(style=choices)(stylize)
        app_commands.choices(style=choices)(choose)
    client.tree.add_command(stylize)
    client.tree.add_command(choose)
    client.tree.add_command(app_commands.ContextMenu(name=command_name(CONTEXT_MENU_NAME), callback=animefy))
    client.tree.add_command(
        app_commands.Command(
            name=command_name(FORGET_NAME),
            description=localized("Delete everything the bot keeps about you."),
            callback=forget,
        )
    )
    for command in admin_commands():
        client.tree.add_command(command)
    return client


def admin_commands() -> list[SlashCommand]:
    """``/ban``, ``/unban`` and ``/usage`` for the bot's admins (anyone else is refused; names stay English)."""
    person = localized("The person: a mention, their id, or a key like telegram:123")
    commands: list[SlashCommand] = [
        app_commands.Command(name="ban", description=localized("Admins: block a person from the bot."), callback=ban),
        app_commands.Command(name="unban", description=localized("Admins: lift a person's ban."), callback=unban),
        app_commands.Command(
            name="usage", description=localized("Admins: a person's daily budget and ban."), callback=usage
        ),
    ]
    for command in commands:
        app_commands.describe(person=person)(command)
    app_commands.describe(reason=localized("Why (kept in the audit log)"))(commands[0])
    return commands


def anime_command() -> SlashCommand:
    """``/anime``: up to four photos, videos or GIFs, with an optional style and strength."""
    command: SlashCommand = app_commands.Command(
        name=command_name(COMMAND_NAME),
        description=localized("Turn photos, videos or GIFs into anime art."),
        callback=anime,
    )
    app_commands.rename(
        image=command_name(IMAGE_OPTION), style=command_name(STYLE_OPTION), strength=command_name(STRENGTH_OPTION)
    )(command)
    app_commands.describe(
        image=localized("The photo, video or GIF to stylize"),
        style=localized("The look (default: the server's default style)"),
        strength=localized("0 = photo, 1 = full style"),
        image2=localized("Another photo"),
        image3=localized("Another photo"),
        image4=localized("Another photo"),
    )(command)
    return command


def settings_command() -> SlashCommand:
    """``/settings``: shows the person's settings, changing the ones its options give."""
    command: SlashCommand = app_commands.Command(
        name=command_name(SETTINGS_NAME),
        description=localized("Your style, strength and face pass, kept for you."),
        callback=show_settings,
    )
    app_commands.rename(
        style=command_name(STYLE_OPTION), strength=command_name(STRENGTH_OPTION), faces=command_name(FACES_OPTION)
    )(command)
    app_commands.describe(
        style=localized("Your style from now on"),
        strength=localized("0 = photo, 1 = full style"),
        faces=localized("Stylize faces on their own (face pass)"),
    )(command)
    return command
