"""JobStore: the web API's bounded, expiring memory of jobs, fed by each job's progress events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.jobs import JobProgress, JobRejected, JobRequest, JobResult, JobStage, QueueFull
from bot.jobstore import JobStore, WebJob
from bot.pool import BUSY_MESSAGE

REQUEST = JobRequest(user="web:test", image=b"photo", style="shinkai", strength=0.5, faces=False)


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HandDrivenJob:
    """A ``JobHandle`` whose progress and outcome the test hands over, one step at a time."""

    def __init__(self, position: int = 0) -> None:
        self.id = "hand-driven"
        self._position = position
        self._events: asyncio.Queue[JobProgress] = asyncio.Queue()
        self._outcome: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()

    @property
    def position(self) -> int:
        return self._position

    async def progress(self) -> AsyncIterator[JobProgress]:
        while True:
            event = await self._events.get()
            yield event
            if event.stage in (JobStage.DONE, JobStage.FAILED):
                return

    async def result(self) -> JobResult:
        return await self._outcome

    def report(self, stage: JobStage, fraction: float = 0.0, position: int | None = None) -> None:
        self._events.put_nowait(JobProgress(stage, position=position, fraction=fraction))

    def succeed(self) -> None:
        self.report(JobStage.DONE, 1.0)
        self._outcome.set_result(JobResult(b"anime", "image/jpeg", 8, 8, "shinkai", 0.5, 1.25))

    def fail(self, message: str) -> None:
        self.report(JobStage.FAILED)
        self._outcome.set_exception(JobRejected(message))


async def settle() -> None:
    """Let the store's follower tasks read what was handed to them."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_job_follows_its_handle_to_the_result() -> None:
    clock = FakeClock()
    timings: list[tuple[JobStage, float]] = []
    store = JobStore(capacity=4, ttl=60, clock=clock, on_stage_time=lambda stage, s: timings.append((stage, s)))
    handle = HandDrivenJob(position=2)
    job = store.add(handle, REQUEST, source="key")
    assert (job.state, job.progress.position, job.seq) == ("queued", 2, 0)

    handle.report(JobStage.QUEUED, position=1)
    await settle()
    assert (job.progress.position, job.seq) == (1, 1)
    clock.now += 3
    handle.report(JobStage.STYLIZING, 0.4)
    await settle()
    assert (job.state, job.progress.fraction) == ("running", 0.4)
    clock.now += 2
    handle.succeed()
    await settle()
    assert job.state == "done" and job.finished
    assert job.result is not None and job.result.image == b"anime"
    assert job.progress.stage == JobStage.DONE
    assert timings == [(JobStage.QUEUED, 3.0), (JobStage.STYLIZING, 2.0)]
    assert store.get(job.id) is job


async def test_a_failed_job_keeps_its_error() -> None:
    store = JobStore(capacity=4, ttl=60)
    handle = HandDrivenJob()
    job = store.add(handle, REQUEST, source="key")
    handle.fail("That file is not a photo.")
    await job.wait()
    assert job.state == "failed"
    assert job.error is not None and job.error.message == "That file is not a photo."


async def test_changes_skip_to_the_latest_state_and_end_with_the_job() -> None:
    store = JobStore(capacity=4, ttl=60)
    handle = HandDrivenJob()
    job = store.add(handle, REQUEST, source="key")
    for fraction in (0.1, 0.2, 0.3):
        handle.report(JobStage.STYLIZING, fraction)
    await settle()
    seen: list[tuple[int, float]] = []

    async def read() -> None:
        async for seq in job.changes():
            seen.append((seq, job.progress.fraction))

    reader = asyncio.create_task(read())
    await settle()
    handle.succeed()
    await asyncio.wait_for(reader, 1)
    assert seen == [(3, 0.3), (4, 1.0)]  # a late reader starts from the latest state, then sees the end


async def test_finished_jobs_expire_after_the_ttl() -> None:
    clock = FakeClock()
    store = JobStore(capacity=4, ttl=60, clock=clock)
    handle = HandDrivenJob()
    job = store.add(handle, REQUEST, source="key")
    clock.now += 3600
    assert store.get(job.id) is job  # a job is never forgotten while it runs
    handle.succeed()
    await job.wait()
    clock.now += 59
    assert store.get(job.id) is job
    clock.now += 1
    assert store.get(job.id) is None
    assert len(store) == 0


async def test_when_full_the_oldest_finished_job_makes_room() -> None:
    store = JobStore(capacity=3, ttl=60)
    handles = [HandDrivenJob() for _ in range(3)]
    jobs: list[WebJob] = [store.add(handle, REQUEST, source=f"key{index}") for index, handle in enumerate(handles)]
    handles[1].succeed()
    handles[2].succeed()
    await settle()
    newest = store.add(HandDrivenJob(), REQUEST, source="new")
    assert store.get(jobs[0].id) is jobs[0]  # still running: kept
    assert store.get(jobs[1].id) is None  # oldest finished: gone
    assert store.get(jobs[2].id) is jobs[2]
    assert store.get(newest.id) is newest
    assert len(store) == 3
    await store.close()


async def test_a_store_full_of_unfinished_jobs_refuses_a_new_one_and_drops_none() -> None:
    store = JobStore(capacity=2, ttl=60)
    handles = [HandDrivenJob() for _ in range(2)]
    jobs = [store.add(handle, REQUEST, source="k") for handle in handles]
    with pytest.raises(QueueFull) as refused:
        store.ensure_room()
    assert refused.value.message == BUSY_MESSAGE
    late = store.add(HandDrivenJob(), REQUEST, source="k")  # one admitted while there was room: kept too
    assert all(store.get(job.id) is job for job in [*jobs, late])
    handles[0].succeed()
    await jobs[0].wait()  # its follower was never cancelled: whoever waits for it gets the answer
    assert jobs[0].result is not None
    store.ensure_room()  # a finished job can make room again
    await store.close()


async def test_job_ids_are_long_and_random() -> None:
    store = JobStore(capacity=10, ttl=60)
    ids = {store.add(HandDrivenJob(), REQUEST, source="k").id for _ in range(10)}
    assert len(ids) == 10 and all(len(job_id) >= 16 for job_id in ids)
    await store.close()


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        JobStore(capacity=0, ttl=60)


async def test_a_late_reader_still_gets_the_last_event_of_every_stage() -> None:
    store = JobStore(capacity=4, ttl=60, clock=FakeClock())
    handle = HandDrivenJob(position=1)
    job = store.add(handle, REQUEST, source="key")
    for stage, fraction in [
        (JobStage.DECODING, 0.0),
        (JobStage.STYLIZING, 0.0),
        (JobStage.STYLIZING, 0.7),
        (JobStage.FINISHING, 0.0),
        (JobStage.FINISHING, 1.0),
    ]:
        handle.report(stage, fraction)
    handle.succeed()
    await job.wait()

    missed = job.progress_since(-1)
    assert [(p.stage, p.fraction) for _, p in missed] == [
        (JobStage.QUEUED, 0.0),
        (JobStage.DECODING, 0.0),
        (JobStage.STYLIZING, 0.7),
        (JobStage.FINISHING, 1.0),
    ]
    seqs = [seq for seq, _ in missed]
    assert seqs == sorted(set(seqs)) and seqs[-1] < job.seq  # in order, all before the outcome
    assert [p.stage for _, p in job.progress_since(seqs[1])] == [JobStage.STYLIZING, JobStage.FINISHING]
