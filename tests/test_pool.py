"""The inference pool: fairness, bounds, faults, progress and shutdown, on real spawned worker processes.

Most tests use ``ScriptedEngine`` (tests/support_pool.py) so a job can sleep, crash or hang on demand; one runs
the real engine on a real photo. Pools are shared per module (a spawned worker costs a fraction of a second).
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from bot.config import Settings
from bot.fairness import FairQueue
from bot.jobs import (
    JobError,
    JobFailed,
    JobRejected,
    JobRequest,
    JobResult,
    JobStage,
    JobTimedOut,
    PersonQueueFull,
    QueueFull,
)
from bot.pool import (
    BUSY_MESSAGE,
    CRASH_MESSAGE,
    SHUTDOWN_MESSAGE,
    InferencePool,
    PoolConfig,
    PoolJob,
    WorkerStartError,
    person_busy_message,
)
from tests.support_pool import SCRIPTED_ENGINE, ScriptedEngine, eventually, max_overlap, report_of, scripted

on_module_loop = pytest.mark.asyncio(loop_scope="module")

TWO_WORKERS_TIMEOUT = 2.0
FAKE_CORES = 4  # two workers on four cores: each should be told to use two threads


def scripted_settings(**overrides: Any) -> Settings:
    """Settings for a pool of scripted engines, ignoring any .env or ANIMEBOT_* of the machine."""
    return Settings(_env_file=None, engine_factory=SCRIPTED_ENGINE, **overrides)  # type: ignore[call-arg]


def outcome_stages(handle: PoolJob) -> list[JobStage]:
    """The terminal stages a job reported: exactly one for a job with one outcome."""
    return [event.stage for event in handle.events if event.stage in (JobStage.DONE, JobStage.FAILED)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def two_pool() -> AsyncIterator[InferencePool]:
    settings = scripted_settings(workers=2, queue_size=8, per_user_queued=3, job_timeout=TWO_WORKERS_TIMEOUT)
    pool = InferencePool(PoolConfig.from_settings(settings, cores=FAKE_CORES))
    await pool.start()
    yield pool
    await pool.stop(grace=0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def one_pool() -> AsyncIterator[InferencePool]:
    pool = InferencePool(PoolConfig.from_settings(scripted_settings(workers=1, queue_size=6, per_user_queued=5)))
    await pool.start()
    yield pool
    await pool.stop(grace=0)


# --- pure parts ---


def test_fair_queue_takes_one_job_per_person_in_turn() -> None:
    queue: FairQueue[str] = FairQueue()
    for item in ("a1", "a2", "a3"):
        queue.push("a", item)
    queue.push("b", "b1")
    queue.push("c", "c1")
    queue.push("c", "c2")
    queue.push_urgent("retry")

    planned = queue.order()
    popped = [queue.pop() for _ in range(len(planned))]

    assert planned == ["retry", "a1", "b1", "c1", "a2", "c2", "a3"]
    assert popped == planned
    assert len(queue) == 0
    with pytest.raises(IndexError):
        queue.pop()


def test_fair_queue_newcomer_waits_one_turn_not_the_whole_backlog() -> None:
    queue: FairQueue[str] = FairQueue()
    for item in ("a1", "a2", "a3", "a4"):
        queue.push("a", item)
    assert queue.pop() == "a1"
    queue.push("b", "b1")

    assert queue.order() == ["a2", "b1", "a3", "a4"]
    assert queue.waiting("a") == 3
    assert queue.waiting("b") == 1
    assert queue.clear() == ["a2", "b1", "a3", "a4"]
    assert len(queue) == 0


@pytest.mark.parametrize(("workers", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (2, 8, 4), (3, 2, 1)])
def test_each_worker_owns_its_share_of_the_cores(workers: int, cores: int, threads: int) -> None:
    settings = Settings(_env_file=None, workers=workers, working_size=512, precision="fp32")  # type: ignore[call-arg]
    config = PoolConfig.from_settings(settings, cores=cores)

    assert config.threads == threads
    assert config.engine_options["threads"] == threads
    assert config.engine_options["working_size"] == 512
    assert config.engine_options["precision"] == "fp32"
    assert config.engine_factory == "animegan:Engine"


# --- concurrency, faults, outcomes (two workers) ---


@on_module_loop
async def test_both_workers_busy_but_never_more_jobs_than_workers(two_pool: InferencePool) -> None:
    handles = [await two_pool.submit(scripted(f"busy{i}", sleep=0.3)) for i in range(6)]
    peak_running = 0
    while not all(handle.done for handle in handles):
        peak_running = max(peak_running, int(two_pool.stats()["running"]))
        await asyncio.sleep(0.01)
    reports = [report_of((await handle.result()).image) for handle in handles]

    assert max_overlap([(report["start"], report["end"]) for report in reports]) == 2
    assert peak_running == 2
    assert {report["pid"] for report in reports} == set(two_pool.worker_pids())
    assert {(report["threads"], report["omp_threads"]) for report in reports} == {(2, "2")}


@on_module_loop
async def test_killed_worker_job_is_retried_and_pool_refills(two_pool: InferencePool, tmp_path: Path) -> None:
    restarts = two_pool.stats()["restarts"]
    marker = tmp_path / "hang.pid"
    handle = await two_pool.submit(scripted("victim", hang_once=str(marker)))
    await eventually(lambda: marker.exists() and marker.read_text() != "")
    victim = int(marker.read_text())

    os.kill(victim, signal.SIGKILL)
    result = await handle.result()

    assert report_of(result.image)["pid"] != victim
    assert handle.attempts == 2
    await eventually(lambda: two_pool.stats()["workers_alive"] == 2)
    assert victim not in two_pool.worker_pids()
    assert two_pool.stats()["restarts"] == restarts + 1
    assert outcome_stages(handle) == [JobStage.DONE]


@on_module_loop
async def test_job_that_crashes_twice_fails_with_a_plain_message(two_pool: InferencePool) -> None:
    before = two_pool.stats()
    handle = await two_pool.submit(scripted("crasher", crash=True))

    with pytest.raises(JobFailed) as failure:
        await handle.result()

    assert failure.value.message == CRASH_MESSAGE
    assert handle.attempts == 2
    await eventually(lambda: two_pool.stats()["workers_alive"] == 2)
    after = two_pool.stats()
    assert after["restarts"] == before["restarts"] + 2
    assert after["jobs_failed"] == before["jobs_failed"] + 1


@on_module_loop
async def test_job_past_its_timeout_is_cancelled_and_worker_replaced(two_pool: InferencePool) -> None:
    pids = set(two_pool.worker_pids())
    began = time.monotonic()
    handle = await two_pool.submit(scripted("sleeper", sleep=30))

    with pytest.raises(JobTimedOut):
        await handle.result()

    assert time.monotonic() - began >= TWO_WORKERS_TIMEOUT  # not cancelled before its time (however busy the box)
    assert handle.attempts == 1
    await eventually(lambda: two_pool.stats()["workers_alive"] == 2)
    assert len(set(two_pool.worker_pids()) - pids) == 1
    after = await (await two_pool.submit(scripted("after-timeout"))).result()
    assert report_of(after.image)["pid"] in two_pool.worker_pids()


@on_module_loop
async def test_engine_errors_are_answered_without_retry_or_restart(two_pool: InferencePool) -> None:
    restarts = two_pool.stats()["restarts"]
    rejected = await two_pool.submit(scripted("bad-photo", reject="That file is not a photo I can read."))
    broken = await two_pool.submit(scripted("bug", **{"raise": "boom"}))

    with pytest.raises(JobRejected) as rejection:
        await rejected.result()
    with pytest.raises(JobFailed) as failure:
        await broken.result()

    assert rejection.value.message == "That file is not a photo I can read."
    assert failure.value.message == CRASH_MESSAGE
    assert (rejected.attempts, broken.attempts) == (1, 1)
    assert two_pool.stats()["restarts"] == restarts


@on_module_loop
async def test_flood_every_accepted_job_ends_in_exactly_one_outcome(two_pool: InferencePool) -> None:
    before = two_pool.stats()
    kinds: list[dict[str, Any]] = [{"sleep": 0.02}, {"reject": "Not a photo."}, {"raise": "bug"}, {"sleep": 0.05}]
    accepted, refused = [], 0

    async def offer(index: int, steps: dict[str, Any]) -> None:
        nonlocal refused
        try:
            accepted.append(await two_pool.submit(scripted(f"flood{index % 7}", **steps)))
        except QueueFull:
            refused += 1

    for index in range(20):  # a burst with no pause: the bound must refuse some
        await offer(index, kinds[index % len(kinds)])
    await offer(20, {"crash": True})
    for index in range(21, 40):
        await offer(index, kinds[index % len(kinds)])
        await asyncio.sleep(0.005)
    outcomes = await asyncio.gather(*(handle.result() for handle in accepted), return_exceptions=True)

    after = two_pool.stats()
    assert refused > 0
    assert after["jobs_refused"] - before["jobs_refused"] == refused
    assert after["jobs_accepted"] - before["jobs_accepted"] == len(accepted) == 40 - refused
    finished = sum(after[key] - before[key] for key in ("jobs_done", "jobs_rejected", "jobs_failed", "jobs_timed_out"))
    assert finished == len(accepted)
    for handle, outcome in zip(accepted, outcomes, strict=True):
        assert isinstance(outcome, JobResult | JobError)
        expected = JobStage.DONE if isinstance(outcome, JobResult) else JobStage.FAILED
        assert outcome_stages(handle) == [expected]
        assert handle.events[-1].stage == expected
    await eventually(lambda: two_pool.stats()["workers_alive"] == 2)
    assert two_pool.stats()["queue_depth"] == 0


# --- queueing, fairness, progress (one worker) ---


@on_module_loop
async def test_queue_bound_and_per_person_cap_refuse_with_busy(one_pool: InferencePool, tmp_path: Path) -> None:
    release = tmp_path / "release"
    blocker = await one_pool.submit(scripted("blocker", until=str(release)))  # runs until released below
    greedy = [await one_pool.submit(scripted("greedy")) for _ in range(5)]
    with pytest.raises(PersonQueueFull) as per_person:
        await one_pool.submit(scripted("greedy"))
    other = await one_pool.submit(scripted("other"))
    with pytest.raises(QueueFull) as whole_queue:
        await one_pool.submit(scripted("late"))

    assert blocker.position == 0
    assert one_pool.stats()["queue_depth"] == 6
    assert per_person.value.message == person_busy_message(5)
    assert whole_queue.value.message == BUSY_MESSAGE
    assert not isinstance(whole_queue.value, PersonQueueFull)  # a full server, not this person's own limit
    release.touch()
    results = await asyncio.gather(*(handle.result() for handle in [blocker, *greedy, other]))
    assert all(isinstance(result, JobResult) for result in results)


@on_module_loop
async def test_one_photo_is_not_starved_by_twenty(one_pool: InferencePool) -> None:
    first = [await one_pool.submit(scripted("A", sleep=0.05)) for _ in range(6)]
    second = await one_pool.submit(scripted("B", sleep=0.05))
    finished: list[str] = []

    async def note(name: str, handle: PoolJob) -> None:
        await handle.result()
        finished.append(name)

    assert second.position == 2  # behind A's next photo only, not behind all five
    await asyncio.gather(note("B", second), *(note(f"A{index}", handle) for index, handle in enumerate(first)))

    assert finished.index("B") < min(finished.index(f"A{index}") for index in range(2, 6))


@on_module_loop
async def test_progress_reports_queue_positions_then_stages_in_order(one_pool: InferencePool) -> None:
    blocker = await one_pool.submit(scripted("ahead", sleep=0.2))
    queued = [await one_pool.submit(scripted("watcher")) for _ in range(3)]
    last = queued[-1]

    assert last.position == 3
    events = [event async for event in last.progress()]

    stages = [event.stage for event in events]
    positions = [event.position for event in events if event.stage == JobStage.QUEUED]
    assert positions == [3, 2, 1]
    assert stages[len(positions) :] == [
        JobStage.DECODING,
        JobStage.FINDING_FACES,
        JobStage.STYLIZING,
        JobStage.FINISHING,
        JobStage.DONE,
    ]
    assert last.position == 0
    replay = [event async for event in last.progress()]
    assert replay == events
    await asyncio.gather(blocker.result(), *(handle.result() for handle in queued))


# --- lifecycle ---


@on_module_loop
async def test_shutdown_drains_then_answers_what_is_left() -> None:
    pool = InferencePool(PoolConfig.from_settings(scripted_settings(workers=1, queue_size=8, per_user_queued=4)))
    await pool.start()
    pids = pool.worker_pids()
    quick = [await pool.submit(scripted(f"quick{index}", sleep=0.1)) for index in range(3)]
    stuck = await pool.submit(scripted("stuck", sleep=30))
    behind = await pool.submit(scripted("behind"))

    await asyncio.gather(pool.stop(grace=1.5), pool.stop())  # a second stop waits for the first

    for handle in quick:
        assert isinstance(await handle.result(), JobResult)
    for handle in (stuck, behind):
        with pytest.raises(JobFailed) as failure:
            await handle.result()
        assert failure.value.message == SHUTDOWN_MESSAGE
    with pytest.raises(QueueFull):
        await pool.submit(scripted("too-late"))
    assert pool.stats()["workers_alive"] == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@on_module_loop
async def test_a_factory_that_cannot_build_an_engine_fails_start() -> None:
    missing = f"{ScriptedEngine.__module__}:NoSuchEngine"
    pool = InferencePool(PoolConfig(workers=1, engine_factory=missing))

    with pytest.raises(WorkerStartError, match="NoSuchEngine"):
        await pool.start()


@pytest.mark.slow
@on_module_loop
async def test_real_engine_stylizes_a_real_photo(weights_dir: Path, astronaut: np.ndarray) -> None:
    photo = io.BytesIO()
    Image.fromarray(astronaut).resize((192, 192)).save(photo, format="JPEG")
    settings = Settings(_env_file=None, workers=1, weights_dir=weights_dir, working_size=256)  # type: ignore[call-arg]
    pool = InferencePool(PoolConfig.from_settings(settings))
    try:
        await pool.start()
    except WorkerStartError as error:
        cannot_import = any(name in str(error) for name in ("ImportError", "ModuleNotFoundError"))
        if not cannot_import:
            raise
        pytest.skip(f"the real engine does not import yet: {str(error).splitlines()[-1]}")
    try:
        # faces=False: the face detector and face model would add seconds and are the engine's own tests' business
        photo_job = JobRequest(user="real", image=photo.getvalue(), style="shinkai", faces=False)
        handle = await pool.submit(photo_job)
        garbage = await pool.submit(JobRequest(user="real", image=b"not an image at all", style="shinkai"))
        result = await handle.result()
        with pytest.raises(JobRejected) as rejection:
            await garbage.result()
    finally:
        await pool.stop(grace=0)

    picture = Image.open(io.BytesIO(result.image))
    picture.load()
    assert result.mime == "image/jpeg"
    assert picture.size == (result.width, result.height)
    assert min(picture.size) >= 192
    assert JobStage.STYLIZING in [event.stage for event in handle.events]
    assert rejection.value.message


async def test_workers_that_go_round_the_cores_each_run_alone_on_one() -> None:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("pinning two workers needs two cores")
    pool = InferencePool(PoolConfig.from_settings(scripted_settings(workers=len(cores))))
    await pool.start()
    try:
        masks = sorted(tuple(sorted(os.sched_getaffinity(pid))) for pid in pool.worker_pids())
        details = pool.worker_details()
        (victim, *_) = pool.worker_pids()
        os.kill(victim, signal.SIGKILL)
        await eventually(lambda: len(pool.worker_pids()) == len(cores) and victim not in pool.worker_pids())
        after = sorted(tuple(sorted(os.sched_getaffinity(pid))) for pid in pool.worker_pids())
    finally:
        await pool.stop(grace=0)
    assert masks == after == [(core,) for core in cores]  # a replacement takes the core its predecessor had
    assert sorted(detail["cores"] for detail in details.values()) == sorted(str(core) for core in cores)


def test_workers_are_not_pinned_when_they_would_share_cores() -> None:
    config = PoolConfig.from_settings(scripted_settings(workers=3))
    if len(config.cores) >= 3:
        pytest.skip("this machine has a core for each of three workers")
    assert config.core_blocks() == []


async def _lending_pool(**overrides: Any) -> tuple[InferencePool, list[int]]:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("lending a lone job the idle cores needs two cores")
    pool = InferencePool(PoolConfig.from_settings(scripted_settings(workers=len(cores), **overrides)))
    await pool.start()
    return pool, cores


async def test_a_lone_photo_runs_on_every_core_until_other_jobs_come_then_each_runs_on_one() -> None:
    pool, cores = await _lending_pool()
    try:
        alone = await pool.submit(scripted("alone", sleep=1.5, steps=10))
        await eventually(lambda: pool.stats()["running"] == 1)
        meanwhile = [await pool.submit(scripted(f"later{i}", sleep=0.3)) for i in range(len(cores))]
        first = report_of((await alone.result()).image)
        after = [report_of((await handle.result()).image) for handle in meanwhile]
        again = report_of((await (await pool.submit(scripted("alone again", sleep=0.1))).result()).image)
    finally:
        await pool.stop(grace=0)
    assert first["cores_at_start"] == again["cores_at_start"] == again["cores"] == cores
    assert first["threads_at_start"] == again["threads_at_start"] == again["threads_in_use"] == len(cores)
    assert len(first["cores"]) == 1 and first["threads_in_use"] == 1  # it gave the lent cores back midway...
    assert min(report["start"] for report in after) < first["end"]  # ...so the others did not wait for its end
    intervals = [(report["start"], report["end"]) for report in [first, *after]]
    assert max_overlap(intervals) == len(cores)  # and never more jobs than cores
    assert all(len(report["cores"]) == 1 for report in after)  # one core each, the other workers' own
    assert {*first["cores"], *(core for report in after for core in report["cores"])} == set(cores)
    assert {report["threads_in_use"] for report in after} == {1}


async def test_a_worker_lent_to_a_lone_job_that_dies_is_replaced_and_runs_jobs_after_it() -> None:
    pool, cores = await _lending_pool()
    try:
        alone = await pool.submit(scripted("alone", sleep=3.0))
        await eventually(lambda: pool.stats()["running"] == 1)
        running_pid = next(pid for pid in pool.worker_pids() if os.sched_getaffinity(pid) == set(cores))
        victim = next(pid for pid in pool.worker_pids() if pid != running_pid)
        os.kill(victim, signal.SIGKILL)
        await eventually(lambda: victim not in pool.worker_pids() and len(pool.worker_pids()) == len(cores))
        meanwhile = await pool.submit(scripted("meanwhile", sleep=0.0))
        first = report_of((await alone.result()).image)
        waited = report_of((await meanwhile.result()).image)
        burst = [await pool.submit(scripted(f"after{i}", sleep=0.4)) for i in range(len(cores) * 2)]
        reports = [report_of((await handle.result()).image) for handle in burst]
    finally:
        await pool.stop(grace=0)
    assert waited["start"] >= first["slept"]  # the replacement joined the lent workers, not the idle ones
    assert victim not in {report["pid"] for report in reports}
    assert max_overlap([(report["start"], report["end"]) for report in reports]) == len(cores)


async def test_without_lending_a_lone_photo_stays_on_its_worker_core() -> None:
    pool, _ = await _lending_pool(lend_idle_cores=False)
    try:
        report = report_of((await (await pool.submit(scripted("alone", sleep=0.0))).result()).image)
    finally:
        await pool.stop(grace=0)
    assert len(report["cores"]) == 1
    assert report["threads_in_use"] == 1
