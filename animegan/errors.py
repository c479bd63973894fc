"""Typed errors of the engine: each carries the plain sentence a person is shown."""

from __future__ import annotations


def sentence(text: str) -> str:
    """Mark ``text`` as a sentence people read. It is returned as it is: the engine knows no languages, and a
    front end translates it by this English text (the chat bot's gettext catalogues extract these marks)."""
    return text


class AnimeganError(Exception):
    """Base class; ``message`` is safe to show to the person who sent the photo."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedImage(AnimeganError):
    """The bytes are not an image we can read (empty, truncated, unknown format...)."""


class UnsupportedClip(AnimeganError):
    """The bytes are not a clip we can read (empty, truncated, no video stream...)."""


class ImageTooLarge(AnimeganError):
    """The image (or a clip's frames) has more pixels (or bytes) than allowed."""


class UnknownStyle(AnimeganError):
    """No style of that name exists."""


class WeightsMissing(AnimeganError):
    """The style exists but its weight file is not installed; the message says how to install it."""


class WeightsCorrupt(AnimeganError):
    """A weight file is present but its sha256 does not match the manifest."""
