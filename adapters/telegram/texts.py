"""The Telegram front end's sentences that more than one place shows, as English msgids.

Each is shown through the person's ``Translator`` (``_(NOT_A_PHOTO)``); sentences said in one place only are
written where they are said. The sentence for a kept photo that expired is the core's (``bot.orders``).
"""

from __future__ import annotations

from bot.i18n import N_, Translator

SECONDS_PER_MINUTE = 60

NOT_AN_IMAGE = N_("That file isn't an image. Send a photo, or a JPEG, PNG, WebP or HEIC file.")
NOT_A_PHOTO = N_(
    "I turn photos and videos into anime; stickers and voice messages don't work. Send a photo or a video."
)
NOT_A_VIDEO_FILE = N_("That file isn't a video. Send a video, a GIF or a photo.")
SEND_A_PHOTO = N_("Send me a photo and I'll redraw it in anime style. /help shows how.")
NOTHING_TO_CHANGE = N_("That's the picture you're looking at.")
NOT_YOURS = N_("Only the person who sent the photo can restyle it.")
ALBUM_EXPIRED = N_("That album is no longer in my memory: send the photos again.")
SOMETHING_WENT_WRONG = N_("Sorry, something went wrong with that. Please try again.")
TOO_BIG_TO_FETCH = N_("That clip is {size:.1f} MB; the largest clip I can fetch from Telegram is {limit:.0f} MB.")
TOO_BIG_TO_SEND = N_(
    "The anime version came out larger than Telegram lets a bot send (50 MB). Please send a shorter clip."
)
STICKER_BUTTON = N_("🎨 Sticker")
NO_PICTURE = N_("That picture is no longer there: send the photo again.")
NAME_A_PERSON = N_(
    "Name the person: their numeric id, a key like telegram:123 or discord:456, or reply to one of their messages."
)


def privacy_note(_: Translator, source_ttl: float) -> str:
    """What the bot keeps about a person, with how long photos stay (``source_ttl`` seconds)."""
    return _.plural(
        "What I keep: your settings (style, strength, face pass, language) until you send /forget; your photos for "
        "{count} minute, so the buttons under a picture can redraw it; and the name of your sticker pack. Nothing "
        "else. /forget deletes all of it at once.",
        "What I keep: your settings (style, strength, face pass, language) until you send /forget; your photos for "
        "{count} minutes, so the buttons under a picture can redraw it; and the name of your sticker pack. Nothing "
        "else. /forget deletes all of it at once.",
        max(1, round(source_ttl / SECONDS_PER_MINUTE)),
    )
