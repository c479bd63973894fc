"""The catalogues: every sentence of the code translated in every language, placeholders kept, and the
language picked from what each platform says."""

from __future__ import annotations

import pickle
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALE_DIR, Text, Translator, from_accept_language, pick_language
from bot.limits import retry_message
from bot.pool import person_busy_message

REPO = Path(__file__).resolve().parents[1]
# The same keywords as the extraction command in bot/locale/README.md.
KEYWORDS = {"_": None, "N_": None, "Text": None, "plural": (1, 2), "localized": None, "t": None, "sentence": None}
METHODS = [
    ("**.py", "python"),
    ("**.html", "adapters.web.page_text:extract_page"),
    ("**.js", "javascript"),
    ("manifest.toml", "bot.i18n:extract_manifest"),  # the styles' descriptions (/styles)
]
TRANSLATED = sorted(set(LANGUAGES) - {"en"})


def code_messages() -> dict[str | tuple[str, str], str]:
    """Every msgid the code marks, with where it is."""
    found: dict[str | tuple[str, str], str] = {}
    for folder in ("adapters", "bot", "weights", "animegan"):
        for filename, line, message, _comments, _context in extract_from_dir(
            REPO / folder, METHODS, keywords=KEYWORDS, strip_comment_tags=True
        ):
            key = message if isinstance(message, str) else (message[0], message[1])
            found.setdefault(key, f"{folder}/{filename}:{line}")
    return found


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


@pytest.fixture(scope="module")
def messages() -> dict[str | tuple[str, str], str]:
    found = code_messages()
    assert len(found) > 100  # the extraction itself works
    return found


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_of_the_code_has_a_translation(language: str, messages: dict) -> None:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "animebot.po").open("rb") as source:
        catalogue = read_po(source, locale=language)
    missing = []
    for msgid, where in messages.items():
        entry = catalogue.get(msgid if isinstance(msgid, str) else msgid[0])
        strings = () if entry is None else entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if entry is None or entry.fuzzy or not strings or not all(strings):
            missing.append(f"{where}: {msgid!r}")
    assert not missing, f"{len(missing)} untranslated in {language}:\n" + "\n".join(missing)


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_every_placeholder(language: str) -> None:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "animebot.po").open("rb") as source:
        catalogue = read_po(source, locale=language)
    wrong = []
    for entry in catalogue:
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        expected = set().union(*map(placeholders, ids))
        wrong += [f"{ids[0]!r} -> {text!r}" for text in strings if text and placeholders(text) - expected]
        # Each form of a plural may drop {count} (a language's "one" form may say it in words), nothing else.
        wrong += [f"{ids[0]!r} -> {text!r}" for text in strings if text and expected - placeholders(text) - {"count"}]
    assert not wrong, "\n".join(wrong)


def test_errors_made_in_bot_are_said_in_the_persons_language() -> None:
    refusal = pickle.loads(pickle.dumps(retry_message(10, 2.5)))  # as it crosses from a worker process
    assert str(refusal) == "You have sent 10 photos in the last minute. Please try again in 3 seconds."
    russian = Translator("ru").say(refusal)
    assert "10" in russian and "3 секунды" in russian
    assert Translator("ja").say(person_busy_message(2)).startswith("すでに 2 枚")
    # Russian has three plural forms: 1 and 21 take the first, 3 the second, 5 the third.
    forms = [Translator("ru").say(person_busy_message(n)).split(" в очереди")[0] for n in (1, 21, 3, 5)]
    assert forms == ["У вас уже 1 фото", "У вас уже 21 фото", "У вас уже 3 фото", "У вас уже 5 фото"]
    assert [Translator("ru").say(retry_message(10, n)).rsplit(" ", 1)[1] for n in (1, 21, 3, 5)] == [
        "секунду.",
        "секунду.",
        "секунды.",
        "секунд.",
    ]
    assert Translator("es").say("The bot is busy right now. Please try again in a minute.").startswith("El bot")
    assert Translator("es").say("no such message") == "no such message"
    assert Translator("en").say(Text("Style: {style}", style="Hayao")) == "Style: Hayao"


def test_the_engines_refusals_are_said_in_the_persons_language() -> None:
    """The engine knows no languages; its sentences are msgids of the catalogues, so a front end can say them."""
    from animegan.clip import ClipLimits, scan
    from animegan.errors import AnimeganError
    from animegan.images import decode_image

    for refuse in (
        lambda: decode_image(b""),
        lambda: decode_image(b"not an image at all"),
        lambda: scan(b"", ClipLimits()),
        lambda: scan(b"\x00\x00\x00\x18ftypmp42", ClipLimits()),
    ):
        with pytest.raises(AnimeganError) as refusal:
            refuse()
        english = refusal.value.message
        for language in TRANSLATED:
            said = Translator(language).say(english)
            assert said != english and said == Translator(language)(english), (language, english)


def test_language_is_picked_from_platform_tags() -> None:
    assert pick_language(None, "ru") == "ru"
    assert pick_language("ja", "ru") == "ja"  # the person's choice first
    assert pick_language(None, "pt-BR") == "en"
    assert pick_language("es-419") == "es"
    assert from_accept_language("de-DE,de;q=0.9,ja;q=0.8,en;q=0.5") == "ja"
    assert from_accept_language("fr, es;q=0.1, ru;q=0.4") == "ru"
    assert from_accept_language("ru;q=0, es") == "es"
    assert from_accept_language(None) == "en"
