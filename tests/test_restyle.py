"""The re-style status line and the "last press wins" rule, without any chat platform."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs import JobProgress, JobStage
from bot.restyle import LatestPress, job_fraction, restyle_status


def test_the_status_names_the_target_look_and_the_whole_jobs_percent() -> None:
    assert restyle_status("Hayao", 100, JobProgress(JobStage.QUEUED, position=0)) == "Re-styling as Hayao…"
    assert restyle_status("Hayao", 100, JobProgress(JobStage.QUEUED, position=2)) == (
        "Re-styling as Hayao… (2nd in the queue)"
    )
    assert restyle_status("Hayao", 100, JobProgress(JobStage.DECODING)) == "Re-styling as Hayao…"
    # Stylizing spans 15% to 90% of the job: a third of it done is 40% of the whole, shown in steps of 10.
    assert restyle_status("Hayao", 100, JobProgress(JobStage.STYLIZING, fraction=1 / 3)) == "Re-styling as Hayao… 40%"
    assert restyle_status("Hayao", 75, JobProgress(JobStage.FINISHING, fraction=0.5)) == (
        "Re-styling as Hayao at 75%… 90%"
    )
    assert restyle_status("Hayao", 0, JobProgress(JobStage.STYLIZING, fraction=1.0)) == "Back to the original… 90%"
    assert all("Reading the photo" not in restyle_status("Shinkai", 100, JobProgress(stage)) for stage in JobStage)


def test_the_jobs_fraction_only_grows_through_the_stages() -> None:
    stages = [JobStage.DECODING, JobStage.FINDING_FACES, JobStage.STYLIZING, JobStage.FINISHING]
    fractions = [job_fraction(JobProgress(stage, fraction=f)) for stage in stages for f in (0.0, 0.5, 1.0)]
    assert fractions == sorted(fractions)
    assert (fractions[0], fractions[-1]) == (0.0, 1.0)
    assert job_fraction(JobProgress(JobStage.DONE, fraction=1.0)) == 1.0


async def test_a_later_press_cancels_the_earlier_work_before_its_own_starts() -> None:
    latest: LatestPress[int] = LatestPress()
    log: list[str] = []
    first_started = asyncio.Event()

    async def first() -> None:
        log.append("first starts")
        first_started.set()
        try:
            await asyncio.sleep(60)
            log.append("first finished")  # never: the second press wins
        finally:
            await asyncio.sleep(0.05)  # a slow clean-up (a status edit in flight) still ends before the next work
            log.append("first cleaned up")

    async def second() -> None:
        log.append("second starts")

    earlier = asyncio.create_task(latest.run(1, first))
    await first_started.wait()
    won = await latest.run(1, second)

    assert won is True
    assert await earlier is False
    assert log == ["first starts", "first cleaned up", "second starts"]
    assert latest.running(1) == 0


async def test_presses_on_other_messages_do_not_interfere_and_errors_reach_the_caller() -> None:
    latest: LatestPress[str] = LatestPress()
    done: list[str] = []

    async def work(name: str) -> None:
        await asyncio.sleep(0.05)
        done.append(name)

    async def broken() -> None:
        raise RuntimeError("edit refused")

    results = await asyncio.gather(latest.run("a", lambda: work("a")), latest.run("b", lambda: work("b")))

    assert results == [True, True] and sorted(done) == ["a", "b"]
    with pytest.raises(RuntimeError, match="edit refused"):
        await latest.run("a", broken)


async def test_three_quick_presses_leave_only_the_last() -> None:
    latest: LatestPress[int] = LatestPress()
    finished: list[int] = []

    async def work(number: int) -> None:
        await asyncio.sleep(0.1)
        finished.append(number)

    results = await asyncio.gather(*(latest.run(7, lambda n=n: work(n)) for n in (1, 2, 3)))

    assert results == [False, False, True]
    assert finished == [3]
