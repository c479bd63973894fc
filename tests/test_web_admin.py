"""``/admin`` in real headless Chromium against the real server: refused without a key, a form for the key, a
session cookie that is not the key, and live numbers from a short load of jobs, on one box and in the cluster
layout (a real redis-server and a worker host process). Screenshots go to ``test-artifacts/``.

The jobs run on the scripted engine (tests/support_pool.py), whose time per job is known, so the load is short.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from conftest import skip_or_fail

from adapters.web.admin import COOKIE, session_token
from bot.jobs import JobHandle, JobRequest
from bot.service import Service
from tests.support_cluster import HostProcess, cluster_settings
from tests.support_pool import SCRIPTED_ENGINE, script
from tests.support_redis import RedisServer
from tests.support_web import REPO, live_server, small_settings

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = REPO / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
UI_WAIT_MS = 15_000
API_KEY = "plum-blossom-key"
JOB_SECONDS = 0.5
LOAD_JOBS = 12
PEOPLE = 4


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    return CHROMIUM


@pytest_asyncio.fixture
async def browser(chromium_path: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


def scripted_job(user: str, seconds: float = JOB_SECONDS) -> JobRequest:
    return JobRequest(user=user, image=script(sleep=seconds), style="shinkai")


async def load(service: Service, jobs: int = LOAD_JOBS) -> list[JobHandle]:
    """``jobs`` scripted jobs from ``PEOPLE`` people, queued at once."""
    return [await service.enqueue(scripted_job(f"telegram:{100 + n % PEOPLE}")) for n in range(jobs)]


async def moderate(service: Service) -> None:
    """An admin bans one person and looks up another: the bans and the audit log have something to show."""
    await service.admin.ban("telegram:1", "telegram:103", "flooding the queue")
    await service.admin.usage("telegram:1", "telegram:100")


async def sign_in(browser: Any, url: str, key: str) -> tuple[Any, Any, int]:
    """A fresh page that opened /admin and sent ``key`` through the form; (context, page, status of the answer)."""
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    first = await page.goto(f"{url}/admin")
    assert first is not None and first.status == 403  # no cookie yet: the form, refused
    await page.fill("#admin-key", key)
    async with page.expect_navigation() as navigation:
        await page.click("button[type=submit]")
    answer = await navigation.value
    assert not errors, errors
    return context, page, answer.status


async def shown(page: Any, selector: str, predicate: str) -> None:
    await page.wait_for_function(
        f"() => {{ const el = document.querySelector({selector!r}); return el && ({predicate}); }}", timeout=UI_WAIT_MS
    )


# --- no key at all ------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_without_a_configured_key_every_admin_address_is_403(weights_dir: Path) -> None:
    settings = small_settings(weights_dir, engine_factory=SCRIPTED_ENGINE, workers=1)
    async with Service(settings) as service, live_server(settings, service) as url, aiohttp.ClientSession() as http:
        for method, path in (("GET", "/admin"), ("GET", "/admin/overview.json"), ("POST", "/admin/login")):
            async with http.request(method, f"{url}{path}", data={"key": ""}) as response:
                assert response.status == 403, path
        async with http.get(f"{url}/admin/overview.json", headers={"X-API-Key": "anything"}) as response:
            assert response.status == 403


# --- one box ------------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_one_box_admin_page_in_chromium(weights_dir: Path, browser: Any) -> None:
    settings = small_settings(
        weights_dir, engine_factory=SCRIPTED_ENGINE, workers=2, api_key=API_KEY, per_user_queued=LOAD_JOBS
    )
    async with Service(settings) as service, live_server(settings, service) as url:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/admin/overview.json") as response:
                assert response.status == 403
            async with http.get(f"{url}/admin/overview.json", cookies={COOKIE: "forged"}) as response:
                assert response.status == 403

        warm = await load(service, 2)  # a mean service time to estimate waits from
        await asyncio.gather(*(handle.result() for handle in warm))

        context, page, status = await sign_in(browser, url, "not-the-key")
        assert status == 403
        assert "not accepted" in await page.inner_text("#sign-in-message")
        assert await context.cookies() == []
        await page.screenshot(path=str(ARTIFACTS / "admin-wrong-key.png"), full_page=True)
        await context.close()

        handles = await load(service)
        await moderate(service)
        context, page, status = await sign_in(browser, url, API_KEY)
        assert status == 200
        cookies = await context.cookies()
        assert [cookie["name"] for cookie in cookies] == [COOKIE]
        cookie = cookies[0]
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
        assert cookie["value"] == session_token(API_KEY) and API_KEY not in cookie["value"]
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it

        await shown(page, "#queue-depth", "Number(el.textContent) > 0")
        await shown(page, "#wait", "/\\d+(\\.\\d)? s|min/.test(el.textContent)")
        assert await page.locator("#workers tr").count() == 2
        await shown(page, "#bans", "el.textContent.includes('telegram:103') && el.textContent.includes('flooding')")
        await shown(page, "#audit", "el.textContent.includes('ban') && el.textContent.includes('telegram:100')")
        await shown(page, "#top-users", "el.textContent.includes('telegram:100')")
        await page.screenshot(path=str(ARTIFACTS / "admin-one-box-busy.png"), full_page=True)

        await asyncio.gather(*(handle.result() for handle in handles))
        await shown(page, "#queue-depth", "el.textContent === '0'")
        await shown(page, "#outcomes", f"el.textContent.startsWith('{LOAD_JOBS + 2} /')")
        assert await page.locator("#throughput rect.bar").count() == 60
        bars = await page.eval_on_selector_all(
            "#throughput rect.bar", "bars => bars.map(b => Number(b.getAttribute('height')))"
        )
        assert max(bars) > 0
        done = await page.eval_on_selector_all(
            "#workers tr td:nth-child(4)", "cells => cells.map(c => Number(c.textContent))"
        )
        assert sum(done) == LOAD_JOBS + 2
        await page.screenshot(path=str(ARTIFACTS / "admin-one-box-done.png"), full_page=True)

        data = await (await page.request.get(f"{url}/admin/overview.json")).json()
        assert data["queue"]["mode"] == "embedded" and data["queue"]["counts"]["done"] == LOAD_JOBS + 2
        assert sum(data["queue"]["per_minute"]) == LOAD_JOBS + 2
        assert data["queue"]["mean_seconds"] == pytest.approx(JOB_SECONDS, rel=0.5)
        await context.close()


# --- the cluster --------------------------------------------------------------------------------------------------


@pytest.fixture
def worker_host(redis_server: RedisServer, tmp_path: Path) -> Iterator[HostProcess]:
    host = HostProcess(redis_server.url, tmp_path / "host.log", ANIMEBOT_WORKERS="2")
    try:
        host.wait_serving(redis_server.client())
        yield host
    finally:
        host.terminate()
        try:
            host.wait(30)
        finally:
            host.close()


@pytest.mark.asyncio
async def test_cluster_admin_page_in_chromium(
    redis_server: RedisServer, worker_host: HostProcess, weights_dir: Path, browser: Any
) -> None:
    settings = cluster_settings(
        redis_server.url, workers=0, api_key=API_KEY, weights_dir=weights_dir, per_user_queued=LOAD_JOBS, queue_size=32
    )
    async with Service(settings) as service, live_server(settings, service) as url:
        warm = await load(service, 2)
        await asyncio.gather(*(handle.result() for handle in warm))
        handles = await load(service)
        await moderate(service)
        context, page, status = await sign_in(browser, url, API_KEY)
        assert status == 200
        await shown(page, "#bans", "el.textContent.includes('telegram:103')")
        await shown(page, "#audit", "el.textContent.includes('telegram:100')")
        await shown(page, "#mode", "el.textContent.includes('cluster: 1 worker host')")
        await shown(page, "#workers tr td", f"el.textContent.includes(':{worker_host.pid}:')")
        await shown(page, "#wait", "/\\d+(\\.\\d)? s|min/.test(el.textContent)")
        await page.screenshot(path=str(ARTIFACTS / "admin-cluster-busy.png"), full_page=True)
        await asyncio.gather(*(handle.result() for handle in handles))
        await shown(page, "#outcomes", f"el.textContent.startsWith('{LOAD_JOBS + 2} /')")
        await shown(page, "#workers tr td:nth-child(4)", f"el.textContent === '{LOAD_JOBS + 2}'")
        await page.screenshot(path=str(ARTIFACTS / "admin-cluster-done.png"), full_page=True)
        data = await (await page.request.get(f"{url}/admin/overview.json")).json()
        queue = data["queue"]
        assert queue["mode"] == "cluster" and queue["worker_hosts"] == 1 and queue["workers_alive"] == 2
        assert queue["workers"][0]["alive"] and queue["workers"][0]["slots"] == 2
        assert queue["mean_seconds"] == pytest.approx(JOB_SECONDS, rel=0.5)
        await context.close()
