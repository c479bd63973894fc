"""The sentences the Discord front end says to people, marked for the catalogues and translated when said.

The ones a reply builds in place (a caption, the /settings summary, /forget's count) stay beside the code that
fills them in; these are the fixed ones, shared by several modules or checked by the tests.
"""

from __future__ import annotations

from bot.i18n import N_

# Checks that every interaction passes
NOT_ALLOWED = N_("This bot is not enabled here.")
CRASHED = N_("Something went wrong on my side. Please try again in a moment.")
NOT_YOURS = N_("Only the person who sent this photo can re-style it: use /anime with your own photo.")

# Attachments of /anime and "Animefy"
NO_IMAGE = N_("That message has no image or video attached: pick a message with a photo, a video or a GIF.")
NOT_AN_IMAGE = N_("“{name}” is not an image or a video: attach a photo (JPEG, PNG, WebP...), a video or a GIF.")
TOO_LARGE = N_("“{name}” is {size:.1f} MB; the largest photo I take is {limit:.1f} MB.")
DOWNLOAD_FAILED = N_("I could not download that photo from Discord: send the photo again.")
STARTING = N_("Starting…")

# The result message and its buttons
SOURCE_EXPIRED = N_("I no longer have that photo: send the photo again.")
LICENCE_NOTE = N_("AnimeGAN weights: non-commercial use only.")
STICKER_LABEL = N_("Sticker")
NO_PICTURE = N_("That picture is no longer there: send the photo again.")

# The admins' commands
NAME_A_PERSON = N_("Name the person: a mention, their numeric id, or a key like discord:456 or telegram:123.")
