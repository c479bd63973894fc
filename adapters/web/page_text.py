"""The web page in the visitor's language.

``index.html`` marks each sentence as ``{{ English text }}`` (the msgid) and has three slots the server fills:
``{% language %}`` (the ``lang`` attribute), ``{% texts %}`` (the catalogue as JSON, for ``app.js``'s ``t()``) and
``{% languages %}`` (links to the page in every language). The language comes from ``?lang=`` when given, else
the browser's ``Accept-Language``. ``extract_page`` lets ``pybabel extract`` find the page's sentences.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bot.i18n import LANGUAGES, catalogue, from_accept_language, supported

MARKER = re.compile(r"\{\{\s*(.+?)\s*\}\}", re.DOTALL)


def page_language(query_language: str | None, accept_language: str | None) -> str:
    """``?lang=`` when it names a language we have, else the best one the browser accepts."""
    return supported(query_language) or from_accept_language(accept_language)


@functools.cache
def render_page(template_path: Path, language: str) -> str:
    """``index.html`` with every marked sentence in ``language`` and the slots filled (cached per language)."""
    template = template_path.read_text(encoding="utf-8")
    translations = catalogue(language)

    def sentence(match: re.Match[str]) -> str:
        return html.escape(translations.gettext(match.group(1)), quote=True)

    # Every msgid of the catalogue, so the script can say the server's sentences (stage labels...) too.
    texts = {msgid: translated for msgid, translated in _messages(language).items() if translated != msgid}
    # "</" cannot end the JSON block early once "<" is escaped.
    texts_json = json.dumps(texts, ensure_ascii=False).replace("<", "\\u003c")
    links = " · ".join(
        f'<a href="/?lang={code}" hreflang="{code}" lang="{code}"'
        + (' aria-current="true"' if code == language else "")
        + f">{html.escape(name)}</a>"
        for code, name in LANGUAGES.items()
    )
    page = MARKER.sub(sentence, template)
    return page.replace("{% language %}", language).replace("{% texts %}", texts_json).replace("{% languages %}", links)


def _messages(language: str) -> dict[str, str]:
    translations = catalogue(language)
    catalog: dict[Any, str] = getattr(translations, "_catalog", {})
    return {key: value for key, value in catalog.items() if isinstance(key, str) and key}


def extract_page(
    fileobj: IO[bytes], keywords: object, comment_tags: object, options: dict[str, Any]
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Babel extractor for ``index.html``: each ``{{ sentence }}`` with its line number."""
    text = fileobj.read().decode(options.get("encoding", "utf-8"))
    for match in MARKER.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, None, match.group(1), []
