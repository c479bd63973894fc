"""Service benchmark: what `animebot serve` + ``POST /api/v1/stylize`` costs over the bare engine, side by side.

    python bench/service.py [--photos 5] [--rounds 3] [--clients 4] [--workers N]

On the same cores and the same 1024 px face photos (licensed photos of varied shapes from the calibration set, the
way ``bench/engine.py`` picks them), in one run, round after round in turn so a noisy machine moves both sides:

- the bare engine: ``Engine.stylize_bytes`` in processes of its own, in both layouts a box of C cores can take: one
  process with C threads, and C processes pinned to one core each with one thread;
- the service: ``animebot serve`` (the settings' workers, or ``--workers``) and clients posting to
  ``/api/v1/stylize`` from distinct addresses (a trusted proxy's ``X-Forwarded-For``), as people would.

Two numbers, each service / bare: one photo's latency (one client, photos one after another, against the bare
layout that is quicker for one photo) and the throughput of ``--clients`` clients at once (against the bare layout
that is quicker for a stream of photos, fed one photo per process at a time). Targets: latency <= 1.1x,
throughput >= 0.95x. Every process is warmed before timing; bare processes wait idle while the service runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
SIDE = 1024
# One-face and two-face photos of five shapes, all licensed (weights/calibration/SOURCES.md).
FACE_PHOTOS = (
    "portrait_man_talking.jpg",
    "portrait_woman_beach.jpg",
    "people_pool_hall_portrait.jpg",
    "portrait_man_closeup.jpg",
    "group_couple_grand_canyon.jpg",
)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
STARTUP_TIMEOUT = 300.0
LATENCY_TARGET = 1.1
THROUGHPUT_TARGET = 0.95

# A bare engine process: warm up, then for each line of photo paths on stdin print the seconds of each.
BARE_WORKER = """
import json, os, sys, time
from pathlib import Path
core = int(sys.argv[2])
if core >= 0:
    os.sched_setaffinity(0, {core})
from animegan.engine import Engine
engine = Engine(threads=int(sys.argv[1]))
engine.warm_up()
print("ready", flush=True)
for line in sys.stdin:
    seconds = []
    for path in line.split():
        data = Path(path).read_bytes()
        start = time.perf_counter()
        engine.stylize_bytes(data)
        seconds.append(time.perf_counter() - start)
    print(json.dumps(seconds), flush=True)
"""


def face_photos(count: int, folder: Path) -> list[Path]:
    """``count`` face photos of varied shapes at ``SIDE`` px long side, as JPEG files in ``folder``."""
    from bench.photos import calibration_jpeg

    paths = []
    for name in FACE_PHOTOS[:count]:
        path = folder / name
        path.write_bytes(calibration_jpeg(name, SIDE))
        paths.append(path)
    return paths


class BareProcess:
    """One bare engine process (``BARE_WORKER``), driven line by line."""

    def __init__(self, threads: int, core: int | None) -> None:
        env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
        self.process = subprocess.Popen(
            [sys.executable, "-c", BARE_WORKER, str(threads), str(-1 if core is None else core)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        while (line := self.process.stdout.readline()) != "ready\n":
            if not line:
                raise RuntimeError("a bare engine process died while starting")

    def send(self, photos: Sequence[Path]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(" ".join(str(path) for path in photos) + "\n")
        self.process.stdin.flush()

    def receive(self) -> list[float]:
        assert self.process.stdout is not None
        seconds: list[float] = json.loads(self.process.stdout.readline())
        return seconds

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


def bare_stream(processes: Sequence[BareProcess], photos: Sequence[Path]) -> float:
    """Seconds for ``photos`` spread over ``processes`` in turn, all at once (one stream per process)."""
    start = time.perf_counter()
    for index, process in enumerate(processes):
        process.send(photos[index :: len(processes)])
    for process in processes:
        process.receive()
    return time.perf_counter() - start


def bare_latency(process: BareProcess, photos: Sequence[Path]) -> list[float]:
    """Each photo's seconds, one after another in one process."""
    process.send(photos)
    return process.receive()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(workers: int | None, data_dir: Path) -> Iterator[str]:
    """``animebot serve`` on a free port with limits that let the bench's clients in; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "ANIMEBOT_PORT": str(port),
        "ANIMEBOT_DATA_DIR": str(data_dir),
        "ANIMEBOT_TRUSTED_PROXIES": '["127.0.0.1/32"]',
        "ANIMEBOT_RATE_LIMIT_PER_MINUTE": "100000",
        "ANIMEBOT_PER_USER_QUEUED": "1000",
        "ANIMEBOT_QUEUE_SIZE": "1000",
    }
    if workers is not None:
        env["ANIMEBOT_WORKERS"] = str(workers)
    for name in ("ANIMEBOT_TELEGRAM_TOKEN", "ANIMEBOT_DISCORD_TOKEN", "ANIMEBOT_REDIS_URL", "ANIMEBOT_API_KEY"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(url))
        yield url
    finally:
        process.terminate()
        process.wait(120)


async def wait_ready(url: str) -> None:
    import aiohttp

    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("animebot serve did not become ready")


async def post_photos(url: str, client: int, photos: Sequence[bytes]) -> list[float]:
    """Each photo's seconds through ``POST /api/v1/stylize``, one after another, as client number ``client``."""
    import aiohttp

    seconds = []
    headers = {"X-Forwarded-For": f"127.0.1.{client + 1}"}
    async with aiohttp.ClientSession() as session:
        for data in photos:
            form = aiohttp.FormData()
            form.add_field("image", data, filename="photo.jpg", content_type="image/jpeg")
            start = time.perf_counter()
            async with session.post(f"{url}/api/v1/stylize", data=form, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"the service answered {response.status}")
            seconds.append(time.perf_counter() - start)
    return seconds


async def service_stream(url: str, clients: int, photos: Sequence[bytes]) -> float:
    """Seconds for ``clients`` clients at once, each posting its share of ``photos`` one after another."""
    start = time.perf_counter()
    await asyncio.gather(*(post_photos(url, client, photos[client::clients]) for client in range(clients)))
    return time.perf_counter() - start


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=5, help="face photos of different shapes, taken in turn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--stream",
        type=int,
        default=48,
        help="photos per throughput measurement (long: the last photo's tail is ~1 %%)",
    )
    parser.add_argument("--workers", type=int, default=None, help="the service's workers (default: its settings)")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as scratch:
        paths = face_photos(args.photos, Path(scratch))
        datas = [path.read_bytes() for path in paths]
        stream = [paths[index % len(paths)] for index in range(args.stream)]
        stream_bytes = [path.read_bytes() for path in stream]
        layouts = {
            f"1 process x {len(cores)} threads": [BareProcess(len(cores), None)],
            f"{len(cores)} processes x 1 thread, pinned": [BareProcess(1, core) for core in cores],
        }
        for processes in layouts.values():
            for process in processes:
                process.wait_ready()
        latency: dict[str, list[float]] = {name: [] for name in [*layouts, "service"]}
        throughput: dict[str, list[float]] = {name: [] for name in [*layouts, "service"]}
        with serving(args.workers, Path(scratch) / "data") as url:
            asyncio.run(service_stream(url, args.clients, datas))  # every worker has seen every shape once
            for round_number in range(args.rounds):
                for name, processes in layouts.items():
                    latency[name] += bare_latency(processes[0], paths)
                    throughput[name].append(len(stream) / bare_stream(processes, stream))
                latency["service"] += asyncio.run(post_photos(url, 0, datas))
                throughput["service"].append(len(stream) / asyncio.run(service_stream(url, args.clients, stream_bytes)))
                print(f"round {round_number + 1}/{args.rounds} done", flush=True)
        for processes in layouts.values():
            for process in processes:
                process.close()
    report(latency, throughput, args.clients, len(cores))


def report(latency: dict[str, list[float]], throughput: dict[str, list[float]], clients: int, cores: int) -> None:
    print(f"\n{cores} cores; latency in s per photo (median, min, max); throughput in photos/s per round")
    for name in latency:
        print(f"  {name:32} latency {spread(latency[name])}  throughput {spread(throughput[name])}")
    bare = [name for name in latency if name != "service"]
    fastest = min(bare, key=lambda name: statistics.median(latency[name]))
    busiest = max(bare, key=lambda name: statistics.median(throughput[name]))
    latency_ratio = statistics.median(latency["service"]) / statistics.median(latency[fastest])
    throughput_ratio = statistics.median(throughput["service"]) / statistics.median(throughput[busiest])
    per_round = [s / b for s, b in zip(throughput["service"], throughput[busiest], strict=True)]
    print(f"best bare layout for one photo: {fastest}; for a stream: {busiest}")
    print(
        f"latency    service / bare = {latency_ratio:.3f} (target <= {LATENCY_TARGET})"
        f"\nthroughput service / bare = {throughput_ratio:.3f} with {clients} clients "
        f"(per round {', '.join(f'{r:.3f}' for r in per_round)}; target >= {THROUGHPUT_TARGET})"
    )


if __name__ == "__main__":
    main()
