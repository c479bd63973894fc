"""Discord in the person's language: replies follow the interaction's locale (the language of their Discord app),
and the slash command's and menu's names and descriptions are localized when they are synced, through
discord.py's ``app_commands.Translator`` and the same gettext catalogues as everything else.

Discord's locales are tags like ``ru``, ``es-ES``, ``es-419``, ``ja``; any of ours in that list is offered.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.i18n import DEFAULT_LANGUAGE, N_, Translator, pick_language, supported

# Command and option names: lower case, no spaces (Discord's rule for slash commands); the msgids carry a
# context prefix so that "anime" the command name and any sentence with the same words stay separate entries.
COMMAND_NAME = N_("command-name:anime")
CONTEXT_MENU_NAME = N_("menu-name:Animefy")
FORGET_NAME = N_("command-name:forget")
SETTINGS_NAME = N_("command-name:settings")
FACES_OPTION = N_("option-name:faces")
IMAGE_OPTION = N_("option-name:image")
STYLE_OPTION = N_("option-name:style")
STRENGTH_OPTION = N_("option-name:strength")
NAME_PREFIXES = ("command-name:", "menu-name:", "option-name:")


def interaction_translator(interaction: discord.Interaction[discord.Client]) -> Translator:
    """Sentences in the language of the person's Discord app (English when it is not one of ours)."""
    return Translator(pick_language(str(interaction.locale)))


class CatalogueTranslator(app_commands.Translator):
    """Localizes command names, descriptions and choices from the gettext catalogues when commands sync."""

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        """The text for ``locale``, or None to keep the default (English, or a locale we have no catalogue for)."""
        language = supported(str(locale.value))
        if language is None or language == DEFAULT_LANGUAGE:
            return None
        msgid = string.extras.get("msgid", string.message)
        translated = Translator(language)(msgid)
        if translated == msgid:
            return None
        return translated


def localized(message: str, msgid: str | None = None) -> app_commands.locale_str:
    """A command text Discord shows in English and the translator localizes (``msgid``: the catalogue entry)."""
    return app_commands.locale_str(message, msgid=msgid or message)


def command_name(msgid: str) -> app_commands.locale_str:
    """A command or option name: its English name is the msgid without its context prefix."""
    english = next((msgid.removeprefix(prefix) for prefix in NAME_PREFIXES if msgid.startswith(prefix)), msgid)
    return localized(english, msgid)
