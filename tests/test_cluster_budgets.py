"""Daily budgets, bans and the audit log in cluster mode on a real redis-server (issue 22, points 1 and 2): the
budget is checked and spent in the admission script, so front ends racing each other spend exactly the budget;
bans and the audit log written through one front end are seen by the others. Nobody runs the jobs here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from bot.audit import AdminAction
from bot.bans import Banned
from bot.budgets import BudgetExhausted, BudgetLine, Scope
from bot.cluster.budgets import RedisBudgetStore
from bot.cluster.connection import connect
from bot.jobs import JobError
from bot.orders import Order
from bot.service import Service
from tests.support_redis import RedisServer
from tests.support_web import SMALL_SIDE, jpeg_bytes
from tests.test_cluster_front_ends import front_end_settings

CONCURRENT_SUBMITS = 40
PHOTO = jpeg_bytes(np.zeros((SMALL_SIDE, SMALL_SIDE, 3), np.uint8))


def order(user: str, group: str | None = None) -> Order:
    return Order(user=user, image=PHOTO, style="shinkai", keep=False, group=group)


async def test_concurrent_submits_from_two_front_ends_spend_exactly_the_budget(
    redis_server: RedisServer, weights_dir: Path
) -> None:
    settings = front_end_settings(
        redis_server, weights_dir, daily_photos=3, rate_limit_per_minute=0, queue_size=100, per_user_queued=100
    )
    async with Service(settings) as one, Service(settings) as two:
        services = [one, two] * (CONCURRENT_SUBMITS // 2)
        outcomes = await asyncio.gather(
            *(service.submit(order("web:10.0.0.1")) for service in services), return_exceptions=True
        )
        usage = await two.budgets.usage("web:10.0.0.1")
        top = await one.budgets.top_users(5)
        await one.queue.stop(grace=0)
        await two.queue.stop(grace=0)
    admitted = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, JobError)]
    assert len(admitted) + len(refused) == CONCURRENT_SUBMITS, outcomes
    assert all(isinstance(refusal, BudgetExhausted) for refusal in refused), refused
    assert len(admitted) == 3, f"{len(admitted)} of {CONCURRENT_SUBMITS} concurrent photos admitted on a budget of 3"
    assert (usage.used, usage.left) == (3, 0)
    assert [(row.user, row.used) for row in top] == [("web:10.0.0.1", 3)]
    assert refused[0].message == "You have no photos left today (your budget is 3 a day); it resets at 00:00 UTC."


async def test_a_group_budget_is_shared_across_front_ends(redis_server: RedisServer, weights_dir: Path) -> None:
    settings = front_end_settings(
        redis_server, weights_dir, daily_photos=10, daily_photos_per_group=2, queue_size=100, per_user_queued=100
    )
    group = "discord-guild:77"
    async with Service(settings) as one, Service(settings) as two:
        await one.submit(order("discord:1", group))
        await two.submit(order("discord:2", group))
        try:
            await one.submit(order("discord:3", group))
        except BudgetExhausted as refusal:
            message = refusal.message
        else:
            message = ""
        await two.submit(order("discord:3"))  # admitted: outside the guild only their own budget applies
        await one.queue.stop(grace=0)
        await two.queue.stop(grace=0)
    assert message == "This chat has no photos left today (its budget is 2 a day); it resets at 00:00 UTC."


async def test_the_budget_script_spends_all_or_nothing(redis_server: RedisServer) -> None:
    client = connect(redis_server.url)
    store = RedisBudgetStore(client)
    person, group = BudgetLine(Scope.PERSON, "web:1", 3), BudgetLine(Scope.GROUP, "g", 4)
    try:
        assert await store.spend([person, group], 2) is None
        refused = await store.spend([person, group], 2)
        assert refused is not None and (refused.line, refused.left) == (person, 1)
        assert await store.used(Scope.GROUP, "g") == 2, "nothing of a refused charge is spent"
        await store.refund([person, group], 5)
        assert await store.used(Scope.PERSON, "web:1") == 0
        assert await store.top(Scope.PERSON, 5) == []
    finally:
        await client.aclose()


async def test_bans_and_the_audit_log_are_shared_by_every_front_end(
    redis_server: RedisServer, weights_dir: Path
) -> None:
    settings = front_end_settings(redis_server, weights_dir, admin_ids={"telegram:1"})
    async with Service(settings) as one, Service(settings) as two:
        await one.admin.ban("telegram:1", "web:10.0.0.9", "spam")
        try:
            await two.submit(order("web:10.0.0.9"))
        except Banned:
            refused = True
        else:
            refused = False
        told = [await two.bans.should_tell("web:10.0.0.9") for _ in range(2)]
        bans = await two.bans.list()
        report = await two.admin.usage("telegram:1", "web:10.0.0.9")
        await two.admin.unban("telegram:1", "web:10.0.0.9")
        still = await one.bans.is_banned("web:10.0.0.9")
        entries = await one.audit.recent(10)
        await one.queue.stop(grace=0)
        await two.queue.stop(grace=0)
    assert refused
    assert told == [True, False], "a banned person is answered once a day"
    assert [(ban.target, ban.admin, ban.reason) for ban in bans] == [("web:10.0.0.9", "telegram:1", "spam")]
    assert report.banned
    assert not still
    assert [(entry.admin, entry.action, entry.target) for entry in entries] == [
        ("telegram:1", AdminAction.UNBAN, "web:10.0.0.9"),
        ("telegram:1", AdminAction.USAGE, "web:10.0.0.9"),
        ("telegram:1", AdminAction.BAN, "web:10.0.0.9"),
    ]


async def test_an_upload_while_redis_is_away_is_answered_busy_not_failed_by_the_ban_check(
    redis_server: RedisServer, weights_dir: Path
) -> None:
    # The chaos test found it: the ban check, the first Redis call of every upload, raised the lost connection as a
    # server error (500) instead of the "try again" every other step gives while Redis restarts.
    settings = front_end_settings(redis_server, weights_dir)
    async with Service(settings) as front_end:
        redis_server.kill()
        try:
            await front_end.submit(order("web:10.0.0.7"))
        except JobError as error:
            refusal: JobError | None = error
        else:
            refusal = None
        banned = await front_end.bans.is_banned("web:10.0.0.7")
        await front_end.queue.stop(grace=0)
    assert refusal is not None and "try again" in refusal.message.lower()
    assert banned is False
