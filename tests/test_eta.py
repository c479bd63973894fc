"""The queue wait estimate (bot/eta.py): its arithmetic by hand, its words in every language, and, under a steady
load on a real pool whose engine takes a known time per job, estimates within 50 % of the real waits."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from adapters.discord.progress import progress_label
from adapters.telegram.status import status_text
from adapters.web.api import progress_view
from bot.eta import RECENT_SECONDS, RecentJobs, estimate_wait, estimate_waits, wait_phrase
from bot.i18n import LANGUAGES, Translator
from bot.jobs import JobProgress, JobStage
from bot.pool import InferencePool, PoolConfig, PoolJob
from tests.support_pool import SCRIPTED_ENGINE, FakeClock, report_of, scripted

JOB_SECONDS = 0.6  # what the scripted engine sleeps per job
WORKERS = 2
BACKLOG = 6  # jobs sent at once before the steady stream starts
STREAM = 16  # then one job every JOB_SECONDS / WORKERS: arrivals match capacity, so the queue stays about as long
TOLERANCE = 0.5


def test_each_job_ahead_goes_to_the_slot_free_first() -> None:
    # Two slots: one job has run 0.25 s of a 1 s mean (free at 0.75), the other slot is idle (free now).
    assert estimate_waits(4, 2, [0.25], 1.0) == [0.0, 0.75, 1.0, 1.75]
    assert estimate_wait(3, 2, [0.25], 1.0) == 1.0
    # A job past the mean is taken as about to end; an unknown elapsed time as half done.
    assert estimate_waits(2, 1, [5.0], 2.0) == [0.0, 2.0]
    assert estimate_waits(2, 1, [None], 2.0) == [1.0, 3.0]
    # On average position x mean / workers, as the README says.
    assert estimate_wait(9, 3, [None, None, None], 3.0) == pytest.approx(9 * 3.0 / 3 - 3.0 / 2)
    assert estimate_waits(3, 0, [], 1.0) == [0.0, 0.0, 0.0]


def test_recent_jobs_keep_the_mean_of_the_latest_and_a_count_per_minute() -> None:
    clock = FakeClock(now=6000.0)
    recent = RecentJobs(clock)
    assert recent.mean_seconds() is None
    for seconds in (1.0, 2.0, 3.0):
        recent.record(seconds)
    assert recent.mean_seconds() == pytest.approx(2.0)
    clock.advance(120)
    recent.count(5)
    minutes = recent.per_minute()
    assert len(minutes) == 60 and minutes[-1] == 5 and minutes[-3] == 3 and sum(minutes) == 8
    clock.advance(RECENT_SECONDS + 1)
    assert recent.mean_seconds() is None  # too old to say anything about now
    clock.advance(3600)
    assert sum(recent.per_minute()) == 0


def test_waits_are_said_in_steps_people_read() -> None:
    assert str(wait_phrase(0.2)) == "5 s"
    assert str(wait_phrase(11)) == "15 s"
    assert str(wait_phrase(61)) == "2 min"


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_language_tells_the_wait_with_the_position(language: str) -> None:
    _ = Translator(language)
    queued = JobProgress(JobStage.QUEUED, position=3, wait_seconds=42.0)
    forty_five = _("{seconds} s", seconds=45)
    for text in (status_text(queued, _), progress_label(queued, _)):
        assert text is not None and "3" in text and forty_five in text
        if language != "en":
            assert "wait" not in text  # translated, not the English sentence
    unknown = JobProgress(JobStage.QUEUED, position=3)
    assert forty_five not in status_text(unknown, _) and "3" in status_text(unknown, _)


def test_the_api_job_status_carries_the_estimate() -> None:
    view = progress_view(JobProgress(JobStage.QUEUED, position=2, wait_seconds=12.345)).model_dump(mode="json")
    assert view["position"] == 2 and view["wait_seconds"] == 12.3
    assert progress_view(JobProgress(JobStage.STYLIZING, fraction=0.5)).model_dump()["wait_seconds"] is None


@pytest.mark.asyncio
async def test_under_a_steady_load_the_estimate_is_within_half_of_the_real_wait() -> None:
    pool = InferencePool(
        PoolConfig(workers=WORKERS, queue_size=64, per_user_queued=64, engine_factory=SCRIPTED_ENGINE, job_timeout=30)
    )
    await pool.start()
    try:
        warm = [await pool.submit(scripted(f"warm{n}", sleep=JOB_SECONDS)) for n in range(WORKERS)]
        await asyncio.gather(*(job.result() for job in warm))
        assert pool.mean_seconds() == pytest.approx(JOB_SECONDS, rel=0.5)

        sent: list[tuple[PoolJob, float]] = []
        for n in range(BACKLOG + STREAM):
            if n >= BACKLOG:
                await asyncio.sleep(JOB_SECONDS / WORKERS)
            sent.append((await pool.submit(scripted(f"person{n}", sleep=JOB_SECONDS)), time.time()))
        results = await asyncio.gather(*(job.result() for job, _ in sent))
    finally:
        await pool.stop()

    pairs = []
    for (job, submitted), result in zip(sent, results, strict=True):
        first = next(event for event in job.events)
        if first.stage is not JobStage.QUEUED:
            continue  # went straight to an idle worker: no wait to estimate
        assert first.wait_seconds is not None
        real = report_of(result.image)["start"] - submitted
        pairs.append((first.position, first.wait_seconds, real))
    errors = [abs(estimate - real) / real for _, estimate, real in pairs]
    print("\nposition  estimate  real wait  error")
    for (position, estimate, real), error in zip(pairs, errors, strict=True):
        print(f"{position:8}  {estimate:7.2f}s  {real:8.2f}s  {error:5.0%}")
    print(f"{len(pairs)} waits, median error {statistics.median(errors):.0%}, worst {max(errors):.0%}")
    assert len(pairs) >= BACKLOG + STREAM - WORKERS - 2  # the load kept a queue
    assert max(errors) <= TOLERANCE
