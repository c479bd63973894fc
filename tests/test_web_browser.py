"""The page in real headless Chromium, against the real server, service and engine.

Each test starts from a fresh page. Screenshots of the main states go to ``test-artifacts/`` (gitignored).
Without Chromium the tests skip, except in CI (CI=true) where they fail.

Over 400 lines on purpose: the page's scenarios share one browser and server.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from conftest import skip_or_fail
from pydantic import SecretStr

from bot.config import Settings
from bot.service import Service
from tests.support_web import (
    EXAMPLES,
    JOB_WAIT_SECONDS,
    REPO,
    SeenRequest,
    heic_bytes,
    image_size,
    jpeg_bytes,
    live_server,
    small_settings,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
JOB_WAIT_MS = JOB_WAIT_SECONDS * 1000
UI_WAIT_MS = 15_000
API_KEY = "sakura-petals-fall"
MAX_FORM_WITHOUT_PHOTO = 1024  # bytes of a job form carrying a source key instead of a photo

# Records every value the progress bar is given (hooking the setter: no update can be coalesced away) and
# every label it shows.
RECORD_PROGRESS = """
window.__progress = [];
window.__labels = [];
const valueProperty = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, "value");
Object.defineProperty(HTMLProgressElement.prototype, "value", {
  get() { return valueProperty.get.call(this); },
  set(value) { valueProperty.set.call(this, value); window.__progress.push(this.value); },
});
new MutationObserver(() => {
  const label = document.getElementById("progress-label");
  const last = window.__labels[window.__labels.length - 1];
  if (label && label.textContent !== last) window.__labels.push(label.textContent);
}).observe(document, { subtree: true, childList: true, characterData: true });
"""

# Builds a File from base64 bytes and hands it to the page the way a person's drag-and-drop or paste does.
DROP_FILE = """
([selector, name, type, data, kind]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  const target = document.querySelector(selector);
  if (kind === "drop") {
    target.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
    target.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  } else {
    target.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true }));
  }
}
"""


@pytest.fixture(scope="module")
def settings(weights_dir: Path) -> Settings:
    """Two workers, so the style thumbnails the page asks for do not hold up the photos under test."""
    return small_settings(weights_dir, workers=2, examples_dir=EXAMPLES)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(settings: Settings) -> AsyncIterator[Service]:
    async with Service(settings) as running:
        yield running


@pytest.fixture(scope="module")
def seen() -> list[SeenRequest]:
    """Every request the module's server received (the browser can't show multipart bodies with files)."""
    return []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def base_url(settings: Settings, service: Service, seen: list[SeenRequest]) -> AsyncIterator[str]:
    async with live_server(settings, service, seen) as url:
        yield url


def upload_sizes(seen: list[SeenRequest], since: int) -> list[int]:
    """Content-Length of each job submitted since ``seen[since]``."""
    return [
        request.content_length or 0
        for request in seen[since:]
        if request.method == "POST" and request.path == "/api/v1/jobs"
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@dataclass
class Visit:
    """A fresh page plus what it did: the job requests it sent and any script errors."""

    page: Any
    job_posts: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def open(self, url: str) -> None:
        await self.page.goto(url)
        await self.page.wait_for_selector(".style-card", timeout=UI_WAIT_MS)

    async def animate(self) -> None:
        await self.page.click("#go")
        await self.page.wait_for_selector("#result-card:not([hidden])", timeout=JOB_WAIT_MS)

    async def compare_position(self) -> float:
        value = await self.page.eval_on_selector("#compare", "el => el.style.getPropertyValue('--pos')")
        return float(value.rstrip("%"))

    async def screenshot(self, name: str) -> None:
        await self.page.screenshot(path=str(ARTIFACTS / name), full_page=True)


async def open_visit(browser: Any, viewport: dict[str, int] = DESKTOP) -> AsyncIterator[Visit]:
    context = await browser.new_context(viewport=viewport, accept_downloads=True)
    page = await context.new_page()
    await page.add_init_script(RECORD_PROGRESS)
    visit = Visit(page)

    def on_request(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/api/v1/jobs"):
            visit.job_posts.append(request)

    page.on("request", on_request)
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    page.on("console", lambda message: visit.errors.append(message.text) if message.type == "error" else None)
    yield visit
    await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def visit(browser: Any) -> AsyncIterator[Visit]:
    async for opened in open_visit(browser):
        yield opened


@pytest.fixture(scope="module")
def portrait(astronaut: np.ndarray) -> bytes:
    return jpeg_bytes(astronaut, 200)


@pytest.fixture(scope="module")
def cup(coffee: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "coffee.jpg"
    path.write_bytes(jpeg_bytes(coffee, 240))
    return path


async def give_file(page: Any, kind: str, name: str, mime: str, data: bytes) -> None:
    """Drop (``kind="drop"``) or paste (``kind="paste"``) a file onto the page."""
    await page.evaluate(DROP_FILE, ["#dropzone", name, mime, base64.b64encode(data).decode(), kind])


# --- the main journey ------------------------------------------------------------------------------------------


async def test_drop_a_photo_follow_real_progress_and_compare(
    visit: Visit, base_url: str, seen: list[SeenRequest], portrait: bytes
) -> None:
    page = visit.page
    start = len(seen)
    await visit.open(base_url)
    await give_file(page, "drop", "me.jpg", "image/jpeg", portrait)
    await page.wait_for_selector("#preview:not([hidden])", timeout=UI_WAIT_MS)
    assert await page.is_enabled("#go")
    await visit.screenshot("01-photo-dropped.png")

    await page.click("#go")
    await page.wait_for_function(
        "() => document.getElementById('progress').value >= 10", timeout=JOB_WAIT_MS
    )  # past the queue: the engine reports its stages
    await visit.screenshot("02-progress.png")
    await page.wait_for_selector("#result-card:not([hidden])", timeout=JOB_WAIT_MS)
    await visit.screenshot("03-result.png")

    values: list[float] = await page.evaluate("window.__progress")
    labels: list[str] = await page.evaluate("window.__labels")
    shown = [value for value in values if value > 0]
    assert shown == sorted(shown), values  # the bar only moves forward
    assert len(set(shown)) >= 4, values  # several real stages, not a jump from 0 to 100
    assert shown[-1] == 100
    assert any("Stylizing" in label for label in labels), labels
    assert any("Finding faces" in label for label in labels), labels
    assert len(upload_sizes(seen, start)) == len(visit.job_posts) == 1
    assert upload_sizes(seen, start)[0] > len(portrait)

    # The before/after slider follows the pointer.
    assert await visit.compare_position() == 50
    box = await page.locator("#compare").bounding_box()
    await page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2, steps=5)
    await page.mouse.up()
    assert abs(await visit.compare_position() - 20) < 2
    await page.focus("#compare-range")
    await page.keyboard.press("ArrowRight")
    assert await visit.compare_position() > 20
    await visit.screenshot("04-compare-moved.png")

    async with page.expect_download() as download_info:
        await page.click("#download")
    download = await download_info.value
    assert download.suggested_filename == "anime-shinkai.jpg"
    saved = await download.path()
    assert image_size(Path(saved).read_bytes()) == (256, 256)
    assert visit.errors == []


async def test_another_style_reuses_the_photo_without_uploading_it_again(
    visit: Visit, base_url: str, seen: list[SeenRequest], cup: Path
) -> None:
    page = visit.page
    start = len(seen)
    await visit.open(base_url)
    await page.uncheck("#faces")
    await page.set_input_files("#file-input", str(cup))  # the file picker
    await visit.animate()
    first = await page.get_attribute("#after", "src")

    await page.click("#again")
    await page.click('.style-card[data-style="hayao"]')
    assert await page.get_attribute('.style-card[data-style="hayao"]', "aria-checked") == "true"
    await page.click("#go")
    await page.wait_for_function(
        "(first) => document.getElementById('after').src !== first", arg=first, timeout=JOB_WAIT_MS
    )
    await page.wait_for_selector("#result-card:not([hidden])", timeout=JOB_WAIT_MS)

    assert len(visit.job_posts) == 2
    upload, restyle = upload_sizes(seen, start)
    assert upload > cup.stat().st_size
    assert restyle < MAX_FORM_WITHOUT_PHOTO  # the source key and the choices only: no second upload
    assert await page.get_attribute("#download", "download") == "anime-hayao.jpg"
    assert visit.errors == []


async def test_an_example_runs_in_one_click(visit: Visit, base_url: str, seen: list[SeenRequest]) -> None:
    page = visit.page
    start = len(seen)
    await visit.open(base_url)
    await page.uncheck("#faces")
    await page.click('.example[data-example="coffee.jpg"]')
    await page.wait_for_selector("#result-card:not([hidden])", timeout=JOB_WAIT_MS)
    assert len(visit.job_posts) == 1
    assert upload_sizes(seen, start)[0] > (EXAMPLES / "coffee.jpg").stat().st_size
    width, height = await page.eval_on_selector("#after", "(image) => [image.naturalWidth, image.naturalHeight]")
    assert (width, height) == (256, 171)  # coffee.jpg is 600x400, stylized at the 256 px working size
    await visit.screenshot("05-example-result.png")


async def test_a_pasted_photo_is_previewed(visit: Visit, base_url: str, portrait: bytes) -> None:
    page = visit.page
    await visit.open(base_url)
    await give_file(page, "paste", "clipboard.png", "image/jpeg", portrait)
    await page.wait_for_selector("#preview:not([hidden])", timeout=UI_WAIT_MS)
    assert await page.eval_on_selector("#preview", "(image) => image.naturalWidth") == 200
    assert visit.job_posts == []  # preview first; nothing is sent until the person asks


async def test_a_heic_photo_without_preview_still_runs(visit: Visit, base_url: str, coffee: np.ndarray) -> None:
    page = visit.page
    await visit.open(base_url)
    await page.uncheck("#faces")
    await give_file(page, "drop", "IMG_0001.HEIC", "image/heic", heic_bytes(coffee, 240))
    note = page.locator("#preview-note")
    await note.wait_for(state="visible", timeout=UI_WAIT_MS)  # Chromium can't draw HEIC
    assert "IMG_0001.HEIC" in await note.inner_text()
    await visit.animate()
    width, height = await page.eval_on_selector("#after", "(image) => [image.naturalWidth, image.naturalHeight]")
    assert (width, height) == (256, 171)


# --- errors ----------------------------------------------------------------------------------------------------


async def test_a_text_file_gets_a_plain_error_and_is_not_sent(visit: Visit, base_url: str, tmp_path: Path) -> None:
    page = visit.page
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: rice, nori, tea\n")
    await visit.open(base_url)
    await page.set_input_files("#file-input", str(notes))
    error = page.locator("#photo-error")
    await error.wait_for(state="visible", timeout=UI_WAIT_MS)
    assert "not a photo" in await error.inner_text()
    assert "text file" in await error.inner_text()
    assert await page.is_disabled("#go")
    assert visit.job_posts == []
    await visit.screenshot("06-error-text-file.png")


async def test_a_broken_photo_gets_the_servers_plain_error(visit: Visit, base_url: str) -> None:
    page = visit.page
    await visit.open(base_url)
    await give_file(page, "drop", "holiday.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 this is not really a JPEG")
    await page.click("#go")
    error = page.locator("#go-error")
    await error.wait_for(state="visible", timeout=UI_WAIT_MS)
    assert "not a photo this bot can read" in await error.inner_text()
    assert await page.is_hidden("#progress-card")
    assert await page.is_enabled("#go")  # the page is ready for another try


async def test_a_busy_server_is_explained(browser: Any, settings: Settings, service: Service, cup: Path) -> None:
    strict = settings.model_copy(update={"rate_limit_per_minute": 1})
    async with live_server(strict, Service(strict, queue=service.queue)) as url:
        async for visit in open_visit(browser):
            await visit.open(url)
            await visit.page.uncheck("#faces")
            await visit.page.set_input_files("#file-input", str(cup))
            await visit.animate()
            await visit.page.click("#go")
            error = visit.page.locator("#go-error")
            await error.wait_for(state="visible", timeout=UI_WAIT_MS)
            assert "Please try again in" in await error.inner_text()


# --- API key, phone, thumbnails --------------------------------------------------------------------------------


async def test_with_an_api_key_the_page_asks_for_it(browser: Any, settings: Settings, service: Service) -> None:
    guarded = settings.model_copy(update={"api_key": SecretStr(API_KEY)})
    async with live_server(guarded, service) as url:
        async for visit in open_visit(browser):
            page = visit.page
            await page.goto(url)
            await page.wait_for_selector("#key-panel:not([hidden])", timeout=UI_WAIT_MS)
            assert await page.locator(".style-card").count() == 0
            await page.fill("#api-key", "wrong-key")
            await page.click("#key-form button")
            await page.wait_for_selector("#key-error:not([hidden])", timeout=UI_WAIT_MS)
            await visit.screenshot("07-api-key-asked.png")
            await page.fill("#api-key", API_KEY)
            await page.click("#key-form button")
            await page.wait_for_selector(".style-card", timeout=UI_WAIT_MS)
            assert await page.is_hidden("#key-panel")
            assert API_KEY not in await page.content()


async def test_on_a_phone_nothing_overflows_and_the_journey_works(browser: Any, base_url: str, cup: Path) -> None:
    async for visit in open_visit(browser, PHONE):
        page = visit.page
        await visit.open(base_url)
        await visit.screenshot("08-phone-start.png")
        await page.uncheck("#faces")
        await page.set_input_files("#file-input", str(cup))
        await visit.animate()
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        await visit.screenshot("09-phone-result.png")


async def test_style_thumbnails_replace_their_placeholders(visit: Visit, base_url: str, service: Service) -> None:
    page = visit.page
    await visit.open(base_url)
    styles = [style.name for style in service.styles()]
    await page.wait_for_function(
        """(count) => [...document.querySelectorAll('.style-card img')]
             .filter((img) => img.naturalWidth === 256).length === count""",
        arg=len(styles),
        timeout=JOB_WAIT_MS * 2,
        polling=1000,
    )
    await visit.screenshot("00-start-with-thumbnails.png")
