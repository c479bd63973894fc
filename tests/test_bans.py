"""Bans and the audit log on one box (issue 22, point 2), and how the web page's API answers a banned client and a
spent daily budget: SQLite stores kept across restarts, a banned person told once a day, the audit log bounded
and free of photos and tokens, 403 and 429 with the sentence in the client's language and time zone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from adapters.web import create_app
from bot.audit import AdminAction, SqliteAuditLog
from bot.bans import Banned, SqliteBans
from bot.budgets import SECONDS_PER_DAY
from bot.orders import Order
from bot.service import Service
from tests.support_clip_engine import NEGATIVE_ENGINE
from tests.support_pool import FakeClock
from tests.support_web import jpeg_bytes, small_settings

WEB_CLIENT = "web:127.0.0.1"  # who the test client is to the API


def job_form(photo: bytes) -> FormData:
    form = FormData()
    form.add_field("image", photo, filename="photo.jpg", content_type="image/jpeg")
    return form


async def test_bans_survive_a_restart_and_a_banned_person_is_told_once_a_day(tmp_path: Path) -> None:
    clock = FakeClock(now=200 * SECONDS_PER_DAY + 10)
    bans = SqliteBans.in_folder(tmp_path, clock)
    try:
        assert await bans.ban("telegram:7", "telegram:1", "spam")
        assert not await bans.ban("telegram:7", "telegram:2"), "a second ban keeps the first record"
        told = [await bans.should_tell("telegram:7") for _ in range(3)]
        assert not await bans.should_tell("telegram:8"), "someone not banned is never told"
        clock.advance(SECONDS_PER_DAY)
        told_next_day = await bans.should_tell("telegram:7")
    finally:
        await bans.close()
    reopened = SqliteBans.in_folder(tmp_path, clock)
    try:
        listed = await reopened.list()
        still = await reopened.is_banned("telegram:7")
        lifted = await reopened.unban("telegram:7")
        lifted_again = await reopened.unban("telegram:7")
        after = await reopened.is_banned("telegram:7")
    finally:
        await reopened.close()
    assert told == [True, False, False] and told_next_day
    assert [(ban.target, ban.admin, ban.reason) for ban in listed] == [("telegram:7", "telegram:1", "spam")]
    assert listed[0].since == datetime.fromtimestamp(200 * SECONDS_PER_DAY + 10, UTC)
    assert still and lifted and not lifted_again and not after


async def test_the_audit_log_keeps_the_newest_entries_only(tmp_path: Path) -> None:
    log = SqliteAuditLog(tmp_path / "audit.sqlite3", FakeClock(now=1_700_000_000.0), max_entries=5)
    try:
        for number in range(8):
            await log.record("telegram:1", AdminAction.USAGE, f"telegram:{number}")
        recent = await log.recent(10)
    finally:
        await log.close()
    assert [entry.target for entry in recent] == [f"telegram:{number}" for number in (7, 6, 5, 4, 3)]
    assert all(entry.action is AdminAction.USAGE and entry.admin == "telegram:1" for entry in recent)


async def test_admin_actions_are_audited_with_no_photo_and_no_token(weights_dir: Path, tmp_path: Path) -> None:
    token = "123456:SECRET-TOKEN-never-logged"
    settings = small_settings(
        weights_dir, engine_factory=NEGATIVE_ENGINE, data_dir=tmp_path, admin_ids={"telegram:1"}, telegram_token=token
    )
    photo = jpeg_bytes(np.full((64, 64, 3), 200, np.uint8))
    async with Service(settings) as service:
        done = await service.submit(Order(user="telegram:9", image=photo, style="shinkai", owner="telegram:9"))
        await done.handle.result()
        assert await service.admin.ban("telegram:1", "telegram:1") == "admin", "an admin can't be banned"
        assert await service.admin.ban("telegram:1", "telegram:9", "flooding") == "banned"
        with pytest.raises(Banned):
            await service.submit(Order(user="telegram:9", source=done.source))
        report = await service.admin.usage("telegram:1", "telegram:9")
        assert await service.admin.unban("telegram:1", "telegram:9")
        entries = await service.audit.recent(10)
    assert (report.usage.used, report.banned) == (1, True)
    assert [(entry.action, entry.target, entry.detail) for entry in entries] == [
        (AdminAction.UNBAN, "telegram:9", ""),
        (AdminAction.USAGE, "telegram:9", ""),
        (AdminAction.BAN, "telegram:9", "flooding"),
        (AdminAction.BAN, "telegram:1", ""),
    ]
    stored = (tmp_path / "audit.sqlite3").read_bytes() + (tmp_path / "bans.sqlite3").read_bytes()
    for companion in ("audit.sqlite3-wal", "bans.sqlite3-wal"):
        if (tmp_path / companion).exists():
            stored += (tmp_path / companion).read_bytes()
    assert b"SECRET-TOKEN" not in stored and photo[:64] not in stored


async def test_the_api_answers_a_spent_budget_with_429_and_a_banned_client_with_403(
    weights_dir: Path, tmp_path: Path
) -> None:
    settings = small_settings(
        weights_dir, engine_factory=NEGATIVE_ENGINE, data_dir=tmp_path, daily_photos=1, admin_ids={"telegram:1"}
    )
    photo = jpeg_bytes(np.full((64, 64, 3), 120, np.uint8))
    headers = {"Accept-Language": "ja", "X-Time-Zone": "Asia/Tokyo"}
    async with Service(settings) as service, TestClient(TestServer(create_app(settings, service))) as client:
        first = await client.post("/api/v1/jobs", data=job_form(photo))
        assert first.status == 202, await first.text()
        spent = await client.post("/api/v1/jobs", data=job_form(photo), headers=headers)
        spent_body = await spent.json()
        await service.admin.ban("telegram:1", WEB_CLIENT)
        banned = await client.post("/api/v1/jobs", data=job_form(photo))
        banned_body = await banned.json()
        async with asyncio.timeout(60):
            await client.get((await first.json())["events_url"])
    assert spent.status == 429 and spent_body["error"] == "daily_budget_used"
    assert 0 < int(spent.headers["Retry-After"]) <= SECONDS_PER_DAY
    assert spent_body["message"].startswith("今日の残りはありません") and "09:00 JST" in spent_body["message"]
    assert banned.status == 403 and banned_body["error"] == "banned"
    assert banned_body["message"] == "An admin of this bot has blocked you, so it no longer answers you."
