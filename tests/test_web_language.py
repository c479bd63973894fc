"""The page and the API's error sentences in the client's language (``Accept-Language``, or ``?lang=``)."""

from __future__ import annotations

import json
import re

from bot.config import Settings
from bot.i18n import Translator
from bot.service import Service
from tests.test_web_api import error_of, job_form, photo, service, serving, settings  # noqa: F401 - fixtures

TEXTS = re.compile(r'<script type="application/json" id="texts">(.*?)</script>', re.DOTALL)


async def test_api_errors_follow_accept_language(settings: Settings, service: Service, photo: bytes) -> None:
    small = settings.model_copy(update={"max_upload_bytes": len(photo) - 1})
    async with serving(small, service) as client:
        russian = await error_of(
            await client.post("/api/v1/jobs", data=job_form(photo), headers={"Accept-Language": "ru-RU,ru;q=0.9"}), 413
        )
        english = await error_of(await client.post("/api/v1/jobs", data=job_form(photo)), 413)
    assert english["message"].startswith("That file is") and "MB" in english["message"]
    assert russian["message"].startswith("Файл весит") and "МБ" in russian["message"]
    assert russian["error"] == english["error"] == "too_large"  # codes stay the same for programs


async def test_page_is_rendered_in_the_browsers_language_or_the_chosen_one(
    settings: Settings, service: Service
) -> None:
    async with serving(settings, service) as client:
        japanese = await (await client.get("/", headers={"Accept-Language": "de;q=0.9, ja;q=0.8"})).text()
        response = await client.get("/?lang=es", headers={"Accept-Language": "ja"})
        spanish = await response.text()
        english = await (await client.get("/", headers={"Accept-Language": "fr"})).text()
    _ = Translator("ja")
    assert '<html lang="ja">' in japanese and _("Animate my photo") in japanese
    assert "{{" not in japanese and "{%" not in japanese
    texts = json.loads(TEXTS.search(japanese).group(1))
    assert texts["Queued"] == _("Queued") != "Queued"  # the script's sentences and the server's stage labels
    assert '<html lang="es">' in spanish and Translator("es")("Drop a photo or a short video here") in spanish
    assert response.headers["Content-Language"] == "es" and "Accept-Language" in response.headers["Vary"]
    assert '<html lang="en">' in english and "Drop a photo or a short video here" in english
    assert json.loads(TEXTS.search(english).group(1)) == {}
