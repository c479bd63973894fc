"""Languages: every sentence a person reads comes from a gettext catalogue (``bot/locale/<lang>/LC_MESSAGES``).

The ``.po`` files are the source (kept in git, edited with Babel's tools, see ``bot/locale/README.md``); they are
compiled in memory the first time a language is used, so a fresh clone, the wheel and the container need no
build step and can never run with a stale ``.mo``.

Code marks sentences three ways, all found by ``pybabel extract`` (keywords in ``babel.cfg``):

- ``_("Send me a photo")`` / ``_.plural("one photo", "{count} photos", count)`` where a ``Translator`` is at hand;
- ``N_("...")`` for constants translated later, where they are shown;
- ``Text("You have {n} waiting", n=3)`` for sentences made in ``bot/`` (errors): an English ``str`` that also
  remembers its msgid and parameters, so a front end can say it in the person's language with ``say``.
"""

from __future__ import annotations

import functools
import gettext
import io
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "animebot"
LOCALE_DIR = Path(__file__).with_name("locale")
DEFAULT_LANGUAGE = "en"
# Language code -> its own name (what the settings buttons show).
LANGUAGES: dict[str, str] = {"en": "English", "ru": "Русский", "es": "Español", "ja": "日本語"}
LANGUAGE_TAG = re.compile(r"^\s*([A-Za-z]{1,8})(?:[-_][A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


def N_(message: str) -> str:  # the conventional name of gettext's marker
    """Mark ``message`` for the catalogue without translating it (it is translated where it is shown)."""
    return message


class Text(str):
    """An English sentence (the ``str`` itself) that remembers its msgid and parameters.

    Made in ``bot/`` where no language is known (``QueueFull(Text("..."))``); ``say`` renders it in the person's
    language. Anything that treats it as a plain ``str`` gets the English sentence.
    """

    msgid: str
    plural_id: str | None
    plural_count: int | None  # not ``count``: that would hide ``str.count``
    params: dict[str, Any]

    def __new__(cls, msgid: str, /, **params: Any) -> Text:
        text = super().__new__(cls, msgid.format(**params))
        text.msgid, text.plural_id, text.plural_count, text.params = msgid, None, None, params
        return text

    @classmethod
    def plural(cls, singular: str, plural: str, count: int, /, **params: Any) -> Text:
        """A sentence with a count: ``Text.plural("{count} photo", "{count} photos", n)``."""
        params = {"count": count, **params}
        text = cls(singular if count == 1 else plural, **params)
        text.msgid, text.plural_id, text.plural_count = singular, plural, count
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (worker -> pool): keep the msgid, not just the English.
        return (_rebuild_text, (self.msgid, self.plural_id, self.plural_count, self.params))


def _rebuild_text(msgid: str, plural_id: str | None, count: int | None, params: dict[str, Any]) -> Text:
    if plural_id is not None and count is not None:
        return Text.plural(msgid, plural_id, count, **{k: v for k, v in params.items() if k != "count"})
    return Text(msgid, **params)


@functools.cache
def catalogue(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language`` (English, or a language without a catalogue: the msgids)."""
    po_file = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == DEFAULT_LANGUAGE or not po_file.is_file():
        return gettext.NullTranslations()
    with po_file.open("rb") as source:
        messages = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, messages)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class Translator:
    """Sentences in one language: ``_ = Translator("ja")``, then ``_("Hello, {name}", name=...)``."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._catalogue = catalogue(self.language)

    def __call__(self, message: str, /, **params: Any) -> str:
        """``message`` in this language, with ``params`` filled in."""
        translated = self._catalogue.gettext(message)
        return translated.format(**params) if params else translated

    def plural(self, singular: str, plural: str, count: int, /, **params: Any) -> str:
        """The form of a sentence that fits ``count`` (``{count}`` is filled in too)."""
        return self._catalogue.ngettext(singular, plural, count).format(count=count, **params)

    def say(self, message: str) -> str:
        """A sentence made elsewhere (an error's message) in this language: ``Text`` by its msgid, a plain
        string when it is a msgid itself, else as it is."""
        if isinstance(message, Text):
            if message.plural_id is not None and message.plural_count is not None:
                params = {k: v for k, v in message.params.items() if k != "count"}
                return self.plural(message.msgid, message.plural_id, message.plural_count, **params)
            return self(message.msgid, **message.params)
        return self._catalogue.gettext(message)


ENGLISH = Translator(DEFAULT_LANGUAGE)


def supported(code: str | None) -> str | None:
    """The supported language of a tag like ``ru``, ``es-419``, ``ja_JP`` or ``pt-br`` (None: not supported)."""
    if not code:
        return None
    primary = re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower()
    return primary if primary in LANGUAGES else None


def pick_language(*candidates: str | None) -> str:
    """The first supported language among ``candidates`` (the person's choice first, then the platform's)."""
    return next((found for found in map(supported, candidates) if found), DEFAULT_LANGUAGE)


def from_accept_language(header: str | None) -> str:
    """The best supported language of an HTTP ``Accept-Language`` header, by its q-values."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        match = LANGUAGE_TAG.match(part)
        if match is None or match.group(1) == "*":
            continue
        weight = float(match.group(2)) if match.group(2) else 1.0
        ranked.append((-weight, index, match.group(1)))
    return pick_language(*(tag for negative_weight, _, tag in sorted(ranked) if negative_weight < 0))


def extract_manifest(
    fileobj: IO[bytes], keywords: object, comment_tags: object, options: dict[str, Any]
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Babel extractor for ``weights/manifest.toml``: each style's ``description`` (shown by ``/styles``)."""
    styles = tomllib.loads(fileobj.read().decode("utf-8")).get("styles", {})
    for style in styles.values():
        if style.get("description"):
            yield 0, None, style["description"], []
