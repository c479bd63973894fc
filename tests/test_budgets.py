"""Daily budgets on one box (issue 22, point 1): photo equivalents, the refusal in the person's language and time
zone, admins exempt, a shared group budget, refunds when the queue says no, SQLite across restarts, and
concurrent submits spending exactly the budget."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.budgets import (
    SECONDS_PER_DAY,
    BudgetExhausted,
    BudgetLine,
    Scope,
    SqliteBudgetStore,
    clock_time,
    next_reset,
    photo_equivalents,
)
from bot.config import Settings
from bot.i18n import Translator
from bot.jobs import JobError, JobKind, JobRequest, QueueFull
from bot.orders import Order
from bot.service import Service
from tests.support_clip_engine import LOGGING_NEGATIVE_ENGINE
from tests.support_clips import example, make_mp4, pan_frames
from tests.support_pool import SCRIPTED_ENGINE, FakeClock, script

PERSON = "telegram:41"


def budget_settings(weights_dir: Path, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "engine_factory": SCRIPTED_ENGINE,
        "workers": 1,
        "weights_dir": weights_dir,
        "data_dir": data_dir,
        "daily_photos": 2,
        "rate_limit_per_minute": 100,
        "queue_size": 50,
        "per_user_queued": 50,
    }
    return Settings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]


def photo_order(user: str = PERSON, **fields: Any) -> Order:
    return Order(user=user, image=script(), style="shinkai", owner=user, **fields)


def test_a_clip_costs_its_frames_in_photo_equivalents() -> None:
    assert [photo_equivalents(frames) for frames in (0, 1, 2, 5, 6, 150, 300)] == [1, 1, 2, 4, 5, 120, 240]


def test_budgets_reset_at_midnight_utc_said_in_the_persons_zone() -> None:
    evening = datetime(2025, 3, 9, 22, 30, tzinfo=UTC).timestamp()
    assert next_reset(evening) == datetime(2025, 3, 10, tzinfo=UTC)
    assert next_reset(datetime(2025, 3, 10, tzinfo=UTC).timestamp()) == datetime(2025, 3, 11, tzinfo=UTC)
    midnight = datetime(2025, 3, 10, tzinfo=UTC)
    assert clock_time(midnight) == "00:00 UTC"
    assert clock_time(midnight, "Asia/Tokyo") == "09:00 JST"
    assert clock_time(midnight, "Not/AZone") == "00:00 UTC"


async def test_the_store_refuses_past_the_limit_counts_admins_and_forgets_yesterday(tmp_path: Path) -> None:
    clock = FakeClock(now=100 * SECONDS_PER_DAY + 60)
    store = SqliteBudgetStore.in_folder(tmp_path, clock)
    person, group = BudgetLine(Scope.PERSON, "web:1", 3), BudgetLine(Scope.GROUP, "telegram:-5", 4)
    admin = BudgetLine(Scope.PERSON, "telegram:1", 0)
    try:
        assert await store.spend([person, group], 2) is None
        refused = await store.spend([person, group], 2)
        assert refused is not None and (refused.line, refused.left) == (person, 1)
        assert await store.used(Scope.PERSON, "web:1") == 2, "a refused charge spends nothing"
        assert await store.spend([person, group], 1) is None
        overdrawn = await store.spend([BudgetLine(Scope.PERSON, "web:2", 3), group], 2)
        assert overdrawn is not None and (overdrawn.line, overdrawn.left) == (group, 1)
        assert await store.spend([admin], 50) is None, "a limit of 0 counts and never refuses"
        assert await store.top(Scope.PERSON, 5) == [("telegram:1", 50), ("web:1", 3)]
        clock.advance(SECONDS_PER_DAY)
        assert await store.used(Scope.PERSON, "web:1") == 0, "a new UTC day starts afresh"
        assert await store.spend([person], 3) is None
    finally:
        await store.close()


async def test_a_person_gets_their_budget_then_one_sentence_in_their_language(
    weights_dir: Path, tmp_path: Path
) -> None:
    async with Service(budget_settings(weights_dir, tmp_path)) as service:
        accepted = [await service.submit(photo_order()) for _ in range(2)]
        with pytest.raises(BudgetExhausted) as refusal:
            await service.submit(photo_order())
        with pytest.raises(BudgetExhausted) as in_tokyo:
            await service.submit(photo_order(time_zone="Asia/Tokyo"))
        for done in accepted:
            await done.handle.result()
        usage = await service.budgets.usage(PERSON)
        top = await service.budgets.top_users(10)
        kept = [key for key in (done.source for done in accepted) if await service.find_source(key, owner=PERSON)]
        held = service.stats()["sources_cached"]
    assert refusal.value.message == ("You have no photos left today (your budget is 2 a day); it resets at 00:00 UTC.")
    assert in_tokyo.value.message.endswith("it resets at 09:00 JST.")
    russian = Translator("ru").say(refusal.value.message)
    assert russian != refusal.value.message and "00:00 UTC" in russian
    assert 0 < refusal.value.retry_after <= SECONDS_PER_DAY
    assert (usage.used, usage.limit, usage.left) == (2, 2, 0)
    assert [(row.user, row.used) for row in top] == [(PERSON, 2)]
    assert len(kept) == held == 2, "a refused upload is never stored"


async def test_admins_are_exempt_and_their_use_is_still_counted(weights_dir: Path, tmp_path: Path) -> None:
    settings = budget_settings(weights_dir, tmp_path, daily_photos=1, admin_ids={"telegram:1"})
    async with Service(settings) as service:
        for _ in range(3):
            await (await service.submit(photo_order("telegram:1"))).handle.result()
        usage = await service.budgets.usage("telegram:1")
    assert (usage.used, usage.limit, usage.left) == (3, 0, None)


async def test_a_group_shares_one_budget_between_its_members(weights_dir: Path, tmp_path: Path) -> None:
    settings = budget_settings(weights_dir, tmp_path, daily_photos=5, daily_photos_per_group=2)
    group = "telegram:-100777"
    async with Service(settings) as service:
        await service.submit(photo_order("telegram:1", group=group))
        await service.submit(photo_order("telegram:2", group=group))
        with pytest.raises(BudgetExhausted) as refusal:
            await service.submit(photo_order("telegram:3", group=group))
        alone = await service.submit(photo_order("telegram:3"))  # in a private chat, their own budget still has room
        await alone.handle.result()
    assert (
        refusal.value.message == "This chat has no photos left today (its budget is 2 a day); it resets at 00:00 UTC."
    )


async def test_a_photo_the_queue_refuses_costs_nothing(weights_dir: Path, tmp_path: Path) -> None:
    settings = budget_settings(weights_dir, tmp_path, daily_photos=1, queue_size=0)
    async with Service(settings) as service:
        running = await service.enqueue(JobRequest(user="web:busy", image=script(sleep=0.3), style="shinkai"))
        with pytest.raises(QueueFull):
            await service.submit(photo_order())
        await running.result()
        used_after_refusal = (await service.budgets.usage(PERSON)).used
        await (await service.submit(photo_order())).handle.result()
    assert used_after_refusal == 0


async def test_the_budget_survives_a_restart(weights_dir: Path, tmp_path: Path) -> None:
    settings = budget_settings(weights_dir, tmp_path)
    async with Service(settings) as service:
        for _ in range(2):
            await (await service.submit(photo_order())).handle.result()
    async with Service(settings) as restarted:
        with pytest.raises(BudgetExhausted):
            await restarted.submit(photo_order())


async def test_concurrent_submits_spend_exactly_the_budget(weights_dir: Path, tmp_path: Path) -> None:
    async with Service(budget_settings(weights_dir, tmp_path, daily_photos=3)) as service:
        outcomes = await asyncio.gather(*(service.submit(photo_order()) for _ in range(12)), return_exceptions=True)
        admitted = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        for done in admitted:
            await done.handle.result()
        used = (await service.budgets.usage(PERSON)).used
    refused = [outcome for outcome in outcomes if isinstance(outcome, JobError)]
    assert len(admitted) == 3 and used == 3
    assert len(refused) == 9 and all(isinstance(refusal, BudgetExhausted) for refusal in refused)


async def test_a_clip_is_charged_its_frames_once_they_are_known(weights_dir: Path, tmp_path: Path) -> None:
    clip = make_mp4(pan_frames(example(), (64, 48), 10), 10, 12)  # 10 frames: 8 photo equivalents
    settings = budget_settings(weights_dir, tmp_path, daily_photos=9, engine_factory=LOGGING_NEGATIVE_ENGINE)
    async with Service(settings) as service:
        first = await service.enqueue(JobRequest(PERSON, clip, "shinkai", faces=False, kind=JobKind.CLIP))
        await first.result()
        after_first = (await service.budgets.usage(PERSON)).used
        second = await service.enqueue(JobRequest(PERSON, clip, "shinkai", faces=False, kind=JobKind.CLIP))
        with pytest.raises(BudgetExhausted) as refusal:
            await second.result()
        after_refusal = (await service.budgets.usage(PERSON)).used
    assert after_first == 8
    assert refusal.value.message == (
        "That video counts as 8 photos and you have 1 left today; your budget resets at 00:00 UTC."
    )
    assert after_refusal == 8, "a clip refused once its length is known costs nothing"
