"""The page with several photos at once, and in Japanese and Russian, in real headless Chromium against the real
server, service and engine (fixtures from ``test_web_browser``). Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import skip_or_fail
from PIL import Image

from bot.i18n import Translator
from tests.support_web import JOB_WAIT_SECONDS, jpeg_bytes
from tests.test_web_browser import (  # noqa: F401 - fixtures
    ARTIFACTS,
    DESKTOP,
    UI_WAIT_MS,
    base_url,
    browser,
    open_visit,
    seen,
    service,
    settings,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow, pytest.mark.browser]

BATCH_WAIT_MS = 3 * JOB_WAIT_SECONDS * 1000
CARDS_READY = """
() => [...document.querySelectorAll('.batch-card img')].every((img) => img.complete && img.naturalWidth > 0)
  && [...document.querySelectorAll('.batch-card a[download$=".webp"]')].every((a) => a.href)
"""


async def test_three_photos_chosen_at_once_give_three_result_cards(
    browser: Any, base_url: str, coffee: np.ndarray, astronaut: np.ndarray, tmp_path: Path
) -> None:
    files = []
    for name, pixels, side in (
        ("cup.jpg", coffee, 240),
        ("astronaut.jpg", astronaut, 200),
        ("wide.jpg", coffee[:200], 260),
    ):
        path = tmp_path / name
        path.write_bytes(jpeg_bytes(pixels, side))
        files.append(str(path))
    async for visit in open_visit(browser, DESKTOP):
        await visit.open(base_url)
        await visit.page.set_input_files("#file-input", files)
        assert await visit.page.text_content("#go") == "Animate my photos"
        await visit.page.click("#go")
        # (The page's CSP forbids eval, so no wait_for_function: selectors, then a short poll.)
        await visit.page.wait_for_selector(".batch-card:nth-child(3)", timeout=BATCH_WAIT_MS)
        await visit.page.wait_for_selector("#go:not([disabled])", timeout=UI_WAIT_MS)
        for _ in range(50):
            if await visit.page.evaluate(CARDS_READY):
                break
            await asyncio.sleep(0.2)
        captions = await visit.page.eval_on_selector_all(".batch-card figcaption", "els => els.map(e => e.textContent)")
        sizes = await visit.page.eval_on_selector_all(
            ".batch-card img", "els => els.map(e => [e.naturalWidth, e.naturalHeight])"
        )
        async with visit.page.expect_download() as download_info:
            await visit.page.click('.batch-card a[download$=".webp"]')
        download = await download_info.value
        sticker = Image.open(await download.path())
        sticker.load()
        await visit.screenshot("batch-three-photos.png")
        assert len(visit.job_posts) == 3
        assert not visit.errors, visit.errors
    assert captions == ["cup.jpg", "astronaut.jpg", "wide.jpg"]
    assert len({tuple(size) for size in sizes}) >= 2  # three different pictures, in their own shapes
    assert sticker.format == "WEBP" and max(sticker.size) == 512
    assert download.suggested_filename == "cup-sticker.webp"


def has_cjk_font() -> bool:
    listed = subprocess.run(["fc-list", ":lang=ja"], capture_output=True, text=True, check=False).stdout
    return bool(listed.strip())


@pytest.mark.parametrize(("locale", "language"), [("ja-JP", "ja"), ("ru-RU", "ru")])
async def test_the_page_speaks_the_browsers_language(browser: Any, base_url: str, locale: str, language: str) -> None:
    if language == "ja" and not has_cjk_font():
        skip_or_fail("no Japanese font: CJK text would show as boxes (apt-get install fonts-noto-cjk)")
    _ = Translator(language)
    context = await browser.new_context(viewport=DESKTOP, locale=locale)  # sends Accept-Language
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(base_url)
        await page.wait_for_selector(".style-card", timeout=UI_WAIT_MS)
        await page.wait_for_selector(".example", timeout=UI_WAIT_MS)
        await page.screenshot(path=str(ARTIFACTS / f"page-{language}.png"), full_page=True)
        lang = await page.get_attribute("html", "lang")
        title = await page.title()
        heading = await page.text_content("#photo-title")
        go = await page.text_content("#go")
        drop = await page.text_content("#drop-help strong")
        body = await page.inner_text("body")
    finally:
        await context.close()
    assert lang == language
    assert title == _("AnimeBot: your photo as an anime still") != "AnimeBot: your photo as an anime still"
    assert heading is not None and heading.endswith(_("Your photo"))
    assert go == _("Animate my photo")  # set by the script, through t()
    assert drop == _("Drop a photo or a short video here")
    for english in (
        "Drop a photo or a short video here",
        "Style strength",
        "Enhance faces",
        "No photo at hand",
        "Photo credits",
    ):
        assert english not in body
    assert not errors, errors
