"""Load test of the distributed mode: one front end, two worker hosts and Redis on this machine, against the
in-process pool on the same cores.

N photos from M people go through a ``RedisQueue`` (the front end's queue) to two ``animebot worker`` processes,
each pinned to its own core with one worker process; midway one host is SIGKILLed (with its worker) and its job is
taken over by the other host. Then the same photos go through an in-process pool of two workers, one thread each.
Prints throughput, latency p50/p95 (submitted -> answered), peak memory, and lost / duplicated answers.

    python bench/load_cluster.py --photos 100 --users 10 --size 512 --mirror ../shared/weights
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from animegan.weights import pull
from bot.cluster.frontend import RedisQueue
from bot.config import Settings
from bot.jobs import JobError, JobHandle, JobRequest, QueueFull
from bot.pool import InferencePool, PoolConfig
from tests.support_redis import RedisServer, redis_server_binary

DEFAULT_MIRROR = REPO.parent / "shared" / "weights"
RETRY_SECONDS = 0.2
MIB = 1024 * 1024
Submit = Callable[[JobRequest], Awaitable[JobHandle]]


def photo(seed: int, side: int) -> bytes:
    """A photo-like JPEG: smooth colour fields plus noise, different per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    base = np.stack([x, y, (x + y) / 2], axis=-1) * rng.uniform(80, 200, 3)
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def rss_mib(pids: list[int]) -> float:
    """Resident memory of these processes and all their descendants, in MiB."""
    total = 0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (OSError, StopIteration):
            continue
        todo.extend(int(child) for child in children)
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):  # the thread ended meanwhile
                todo.extend(int(child) for child in (task / "children").read_text().split())
    return total / 1024


async def push(submit: Submit, photos: list[bytes], users: int) -> tuple[float, list[float], Counter[str]]:
    """Send ``photos`` from ``users`` people (each waits when told the queue is busy); the wall time, each
    photo's latency, and how many answers each photo got."""
    answers: Counter[str] = Counter()
    latencies: list[float] = []

    async def person(user: int) -> None:
        async def one(n: int) -> None:
            request = JobRequest(user=f"bench:{user}", image=photos[n], style="shinkai", faces=False)
            while True:
                try:
                    handle = await submit(request)
                    break
                except QueueFull:
                    await asyncio.sleep(RETRY_SECONDS)
            began = time.monotonic()
            try:
                await handle.result()
            except JobError as error:
                print(f"photo {n}: {error.message}")
            latencies.append(time.monotonic() - began)
            answers[f"{user}:{n}"] += 1

        await asyncio.gather(*(one(n) for n in range(user, len(photos), users)))

    started = time.monotonic()
    await asyncio.gather(*(person(user) for user in range(users)))
    return time.monotonic() - started, latencies, answers


def report(name: str, seconds: float, latencies: list[float], answers: Counter[str], photos: int, mib: float) -> float:
    lost = photos - len(answers)
    duplicated = sum(count - 1 for count in answers.values())
    per_minute = photos / seconds * 60
    cuts = statistics.quantiles(latencies, n=20)
    median = statistics.median(latencies)
    print(
        f"{name:>12}: {photos} photos in {seconds:.1f} s = {per_minute:.1f}/min; latency p50 {median:.1f} s,"
        f" p95 {cuts[18]:.1f} s; peak memory {mib:.0f} MiB; lost {lost}, duplicated {duplicated}"
    )
    return per_minute


async def sample_memory(pids: Callable[[], list[int]], peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mib(pids()))
        await asyncio.sleep(0.25)


async def cluster(args: argparse.Namespace, settings: Settings, folder: Path, photos: list[bytes]) -> float:
    server = RedisServer(redis_server_binary() or "redis-server", folder)
    server.start()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "ANIMEBOT_REDIS_URL": server.url,
        "ANIMEBOT_WORKERS": "1",
        "ANIMEBOT_WORKING_SIZE": str(args.size),
        "ANIMEBOT_WEIGHTS_DIR": str(settings.weights_dir),
        "ANIMEBOT_LEASE_SECONDS": str(args.lease),
    }

    def start_host(core: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["taskset", "-c", str(core % (os.cpu_count() or 1)), sys.executable, "-m", "bot.cli", "worker"],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    hosts = [start_host(core) for core in range(2)]
    queue = RedisQueue(settings.model_copy(update={"redis_url": SecretStr(server.url), "workers": 0}))
    await queue.start()
    peak, stop = [0.0], asyncio.Event()
    sampler = asyncio.create_task(
        sample_memory(lambda: [host.pid for host in hosts if host.poll() is None], peak, stop)
    )
    try:
        while queue.stats().get("workers_alive", 0) < 2:
            await asyncio.sleep(0.2)

        async def kill_one_midway() -> None:
            while int(queue.stats().get("jobs_done", 0)) < args.photos // 2:
                await asyncio.sleep(0.1)
            os.killpg(hosts[0].pid, signal.SIGKILL)
            hosts[0].wait()
            print(
                f"     cluster: SIGKILLed worker host {hosts[0].pid} after {args.photos // 2} answers; restarted it,"
                " as compose's restart policy or Kubernetes would"
            )
            hosts[0] = start_host(0)

        killer = asyncio.create_task(kill_one_midway())
        seconds, latencies, answers = await push(queue.submit, photos, args.users)
        await killer
    finally:
        stop.set()
        await sampler
        await queue.stop(grace=5)
        for host in hosts:
            if host.poll() is None:
                host.send_signal(signal.SIGTERM)
            host.wait()
        server.stop()
    return report("cluster", seconds, latencies, answers, args.photos, peak[0])


async def in_process(args: argparse.Namespace, settings: Settings, photos: list[bytes]) -> float:
    config = PoolConfig.from_settings(settings.model_copy(update={"workers": 2}), cores=2)
    pool = InferencePool(config)
    await pool.start()
    peak, stop = [0.0], asyncio.Event()
    sampler = asyncio.create_task(sample_memory(lambda: [os.getpid()], peak, stop))
    try:
        seconds, latencies, answers = await push(pool.submit, photos, args.users)
    finally:
        stop.set()
        await sampler
        await pool.stop()
    return report("in-process", seconds, latencies, answers, args.photos, peak[0])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--size", type=int, default=512, help="working size (px)")
    parser.add_argument("--photo-side", type=int, default=640, help="side of the generated photos (px)")
    parser.add_argument("--lease", type=float, default=5.0, help="lease seconds of the worker hosts")
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights = folder / "weights"
        pull(["shinkai"], weights, mirror=args.mirror, progress=False)
        settings = Settings(
            _env_file=None,
            weights_dir=weights,
            working_size=args.size,
            workers=2,
            job_timeout=300,
            rate_limit_per_minute=0,
            queue_size=32,
            per_user_queued=3,
        )
        print(f"{args.photos} photos from {args.users} people at {args.size} px, 2 cores")
        photos = [photo(n, args.photo_side) for n in range(args.photos)]
        distributed = await cluster(args, settings, folder, photos)
        embedded = await in_process(args, settings, photos)
        print(f"  cluster throughput is {distributed / embedded:.0%} of the in-process pool's")


if __name__ == "__main__":
    asyncio.run(main())
