"""Chaos on the compose-like layout, as real processes on 127.0.0.1: one redis-server (password, ``maxmemory``,
``noeviction``, AOF), two pure front ends (``animebot serve``, ANIMEBOT_WORKERS=0) and two worker hosts
(``animebot worker``: photos and clips through the real code, a negative for the network, photos slowed a little).

Clients send photos and clips to the front ends round-robin, as a load balancer would (a job is followed on the
front end that took it, as the README's session affinity says; a front end that is down is skipped), in waves, while
faults are injected one after the other, each healed before the next: Redis killed and started again on its AOF,
Redis refusing writes (``maxmemory 1``), Redis read-only (a replica of a primary that is not there), a worker host
SIGKILLed (and a new one started), a front end SIGTERMed (it drains and exits 0). Asserted: every job accepted got
exactly one final answer, every refusal or failure is a JSON error with a sentence, and Redis is left with nothing
pending. Each step waits for an event (readiness, a host's heartbeat, Redis' own count of refused writes), never
for a clock; the timeouts only bound a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import redis
from PIL import Image

from tests.support_clip_engine import PHOTO_DELAY_ENV, SLOW_PHOTOS_NEGATIVE_ENGINE
from tests.support_clips import example, make_mp4, pan_frames
from tests.support_cluster import REPO, TEST_LEASE_SECONDS, HostProcess, assert_nothing_pending, counters
from tests.support_redis import RedisServer, free_port, redis_server_binary

PASSWORD = "chaos-test-password"
MAXMEMORY = "256mb"
WAVES = 6  # one before the faults, one during each of the five (the last: the front end SIGTERMed)
PHOTOS_PER_WAVE = 8
CLIP_WAVES = (0, 1, 3, 4)  # a clip in these waves: across a Redis restart and a host's death
PHOTO_SECONDS = 0.5
CLIENTS = 8  # requests in flight at once
EVENT_TIMEOUT = 90.0  # a generous bound on each awaited event: a hang fails, a slow machine does not
JOB_TIMEOUT = 60.0
ANSWER_TIMEOUT = 150.0  # a job's whole life, refusals and retries included
RETRY_SECONDS = 0.3
POLL_SECONDS = 0.1
REFUSAL_STATUSES = (429, 503)  # never queued: the client tries again
HOST_ENV = {
    "ANIMEBOT_ENGINE_FACTORY": SLOW_PHOTOS_NEGATIVE_ENGINE,
    PHOTO_DELAY_ENV: str(PHOTO_SECONDS),
    "ANIMEBOT_JOB_TIMEOUT": str(JOB_TIMEOUT),
    "ANIMEBOT_WORKING_SIZE": "256",
}


def serve_env(redis_url: str, port: int) -> dict[str, str]:
    """A pure front end on 127.0.0.1:``port``, trusting the "load balancer" (the test, on 127.0.0.1)."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("ANIMEBOT_TELEGRAM", "ANIMEBOT_DISCORD"))
    }
    return {
        **environment,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "ANIMEBOT_REDIS_URL": redis_url,
        "ANIMEBOT_WORKERS": "0",
        "ANIMEBOT_HOST": "127.0.0.1",
        "ANIMEBOT_PORT": str(port),
        "ANIMEBOT_LEASE_SECONDS": str(TEST_LEASE_SECONDS),
        "ANIMEBOT_JOB_TIMEOUT": str(JOB_TIMEOUT),
        "ANIMEBOT_QUEUE_SIZE": "16",
        "ANIMEBOT_RATE_LIMIT_PER_MINUTE": "0",
        "ANIMEBOT_TRUSTED_PROXIES": '["127.0.0.1"]',
        "ANIMEBOT_CLIP_CHUNK_FRAMES": "4",
    }


class FrontEndProcess:
    """``animebot serve`` as a pure front end, its output in ``log``."""

    def __init__(self, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.leaving = False  # SIGTERMed: the balancer sends it no new job (as Kubernetes drops a stopping endpoint)
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve"],
                cwd=REPO,
                env=serve_env(redis_url, self.port),
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    async def ready(self, session: aiohttp.ClientSession) -> bool:
        """True when ``/readyz`` answers 200."""
        assert self.process.poll() is None, f"front end exited: {self.output()}"
        try:
            async with session.get(f"{self.base}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@dataclass
class Tally:
    """What the clients saw."""

    sent: int = 0
    accepted: int = 0
    answered: int = 0
    results: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # accepted, answered with a JSON error: by code
    refused: Counter[str] = field(default_factory=Counter)  # never queued, a JSON error: by code
    unreachable: int = 0  # a front end that was down: the client went to the other
    gave_up: int = 0  # never accepted within ANSWER_TIMEOUT (each try refused with a sentence)
    problems: list[str] = field(default_factory=list)  # lost, duplicated, or an answer without a sentence
    faults: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    mime: str
    answer_mime: str
    one_shot: bool  # POST /stylize (the answer in the same request), else POST /jobs then GET /jobs/{id}


def is_sentence_error(body: object) -> bool:
    """A JSON error ``{"error", "message"}`` whose message is a plain sentence."""
    if not isinstance(body, dict) or set(body) != {"error", "message"}:
        return False
    message = body["message"]
    return (
        isinstance(body["error"], str)
        and isinstance(message, str)
        and len(message.split()) >= 3
        and message.rstrip().endswith((".", "!", "?"))
        and "Traceback" not in message
    )


class LoadBalancer:
    """Round-robin over the front ends still up, one job after another; a job is followed where it was taken."""

    def __init__(self, front_ends: list[FrontEndProcess], tally: Tally, session: aiohttp.ClientSession) -> None:
        self.front_ends = front_ends
        self.tally = tally
        self.session = session
        self._turn = itertools.count()
        self._clients = asyncio.Semaphore(CLIENTS)

    def next_front_ends(self) -> list[FrontEndProcess]:
        first = next(self._turn)
        turn = [self.front_ends[(first + n) % len(self.front_ends)] for n in range(len(self.front_ends))]
        return [front_end for front_end in turn if not front_end.leaving] or turn

    async def send(self, index: int, upload: Upload) -> None:
        """One person's upload, once one of the ``CLIENTS`` is free."""
        async with self._clients:
            await self.send_now(index, upload)

    async def send_now(self, index: int, upload: Upload) -> None:
        """One person's upload, until answered (or, never accepted, refused with a sentence until the timeout)."""
        self.tally.sent += 1
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            for front_end in self.next_front_ends():
                outcome = await self._try(index, upload, front_end)
                if outcome != "unreachable":
                    break
            if outcome == "answered":
                return
            await asyncio.sleep(RETRY_SECONDS)
        self.tally.gave_up += 1

    async def _try(self, index: int, upload: Upload, front_end: FrontEndProcess) -> str:
        form = aiohttp.FormData()
        form.add_field("image", upload.data, filename=upload.name, content_type=upload.mime)
        form.add_field("faces", "false")
        headers = {"X-Forwarded-For": f"10.0.{index // 250}.{index % 250 + 1}"}
        path = "/api/v1/stylize" if upload.one_shot else "/api/v1/jobs"
        try:
            async with self.session.post(f"{front_end.base}{path}", data=form, headers=headers) as response:
                status, body = response.status, await response.read()
                content_type = response.content_type
        except (aiohttp.ClientConnectorError, aiohttp.ClientOSError):  # refused, or reset before the request was read
            self.tally.unreachable += 1
            return "unreachable"
        except aiohttp.ClientConnectionError as error:  # the request was sent: was it accepted? A server must not do it
            self.tally.problems.append(
                f"{upload.name}: the connection broke after sending to {front_end.port} ({error!r})"
            )
            return "answered"
        if status in REFUSAL_STATUSES:
            return self._refused(upload, status, body)
        self.tally.accepted += 1
        if upload.one_shot:
            self._answer(upload, status, content_type, body)
            return "answered"
        if status != 202:
            self.tally.problems.append(f"{upload.name}: POST /jobs answered {status}: {body[:300]!r}")
            return "answered"
        job = json.loads(body)
        await self._follow(upload, front_end, job["status_url"])
        return "answered"

    def _refused(self, upload: Upload, status: int, body: bytes) -> str:
        try:
            error = json.loads(body)
        except ValueError:
            error = None
        if not is_sentence_error(error):
            self.tally.problems.append(f"{upload.name}: refused ({status}) without a sentence: {body[:300]!r}")
            return "answered"
        self.tally.refused[error["error"]] += 1
        return "refused"

    def _answer(self, upload: Upload, status: int, content_type: str, body: bytes) -> None:
        """The one final answer of an accepted job: its result, or a JSON error with a sentence."""
        self.tally.answered += 1
        if status == 200 and content_type == upload.answer_mime and body:
            self.tally.results += 1
            return
        try:
            error = json.loads(body)
        except ValueError:
            error = None
        if status >= 400 and is_sentence_error(error):
            self.tally.failed[error["error"]] += 1
            return
        self.tally.problems.append(f"{upload.name}: answered {status} {content_type}: {body[:300]!r}")

    async def _follow(self, upload: Upload, front_end: FrontEndProcess, status_url: str) -> None:
        """GET the job on the front end that took it until it is done or failed, then its result."""
        async with asyncio.timeout(ANSWER_TIMEOUT):
            while True:
                try:
                    async with self.session.get(f"{front_end.base}{status_url}") as response:
                        job = await response.json()
                    if job.get("state") == "failed":
                        self._answer(upload, 500, "application/json", json.dumps(job["error"]).encode())
                        return
                    if job.get("state") == "done":
                        async with self.session.get(f"{front_end.base}{job['result_url']}") as response:
                            self._answer(upload, response.status, response.content_type, await response.read())
                        return
                except aiohttp.ClientConnectionError as error:
                    if front_end.process.poll() is not None:
                        self.tally.problems.append(f"{upload.name}: lost: its front end went away ({error!r})")
                        return
                await asyncio.sleep(POLL_SECONDS)


def uploads(wave: int) -> list[Upload]:
    """A wave: tiny photos (half one-shot, half followed) and maybe a tiny clip (followed)."""
    photo = io.BytesIO()
    Image.fromarray(example()).resize((96, 72)).save(photo, "JPEG")
    photos = [
        Upload(f"wave{wave}-photo{n}", photo.getvalue(), "image/jpeg", "image/jpeg", one_shot=n % 2 == 1)
        for n in range(PHOTOS_PER_WAVE)
    ]
    if wave not in CLIP_WAVES:
        return photos
    clip = make_mp4(pan_frames(example(), (96, 72), 8), 8, 8, audio_seconds=1.0)
    return [*photos[:4], Upload(f"wave{wave}-clip", clip, "video/mp4", "video/mp4", one_shot=False), *photos[4:]]


def error_count(client: redis.Redis, code: str) -> int:
    """How many commands Redis refused with ``code`` (INFO errorstats) since it started."""
    stats = client.info("errorstats")
    return int(stats.get(f"errorstat_{code}", {}).get("count", 0))


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = EVENT_TIMEOUT) -> None:
    """Wait until the async ``check()`` holds; fails naming ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def chaos_redis(tmp_path: Path) -> Iterator[RedisServer]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(binary, folder, password=PASSWORD, maxmemory=MAXMEMORY)
    server.start()
    yield server
    server.kill()


async def test_load_survives_redis_restarts_refusals_a_dead_host_and_a_stopped_front_end(
    chaos_redis: RedisServer, weights_dir: Path, tmp_path: Path
) -> None:
    began = time.monotonic()
    hosts = [HostProcess(chaos_redis.url, tmp_path / f"host{n}.log", **HOST_ENV) for n in range(2)]
    front_ends: list[FrontEndProcess] = []
    tally = Tally()
    try:
        consumers = [host.wait_serving(chaos_redis.client()) for host in hosts]
        front_ends = [FrontEndProcess(chaos_redis.url, tmp_path / f"front{n}.log") for n in range(2)]
        # No keep-alive: a request on a connection the server was closing could not be told from a lost one.
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=ANSWER_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for front_end in front_ends:
                await eventually(lambda f=front_end: f.ready(session), "a front end to be ready", 180)
            balancer = LoadBalancer(front_ends, tally, session)
            sending: list[asyncio.Task[None]] = []
            index = itertools.count()

            def send_one_more(upload: Upload) -> None:
                sending.append(asyncio.create_task(balancer.send_now(next(index), upload)))

            chaos = Chaos(chaos_redis, hosts, consumers, front_ends, tally, session, tmp_path, send_one_more)
            for wave in range(WAVES):
                this_wave = [asyncio.create_task(balancer.send(next(index), upload)) for upload in uploads(wave)]
                sending += this_wave
                if wave < len(chaos.faults):
                    await eventually(lambda w=this_wave: chaos.in_flight(w), f"wave {wave} under way")
                    await chaos.faults[wave]()
            async with asyncio.timeout(ANSWER_TIMEOUT + EVENT_TIMEOUT):
                await asyncio.gather(*sending)
        for front_end in front_ends:
            if front_end.process.poll() is None:
                front_end.process.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(front_end.process.wait, 60) == 0, front_end.output()
        for host in chaos.hosts:
            if host.process.poll() is None:
                host.terminate()
                assert await asyncio.to_thread(host.wait) == 0, host.output()
    finally:
        for front_end in front_ends:
            front_end.close()
        for host in hosts:
            host.close()

    client = chaos_redis.client()
    cluster = counters(client)
    outcomes = sum(cluster.get(name, 0) for name in ("done", "rejected", "failed", "timed_out"))
    figures = {
        "seconds": round(time.monotonic() - began, 1),
        "sent": tally.sent,
        "accepted": tally.accepted,
        "refusals_with_a_sentence": dict(tally.refused),
        "front_end_down_tries": tally.unreachable,
        "never_accepted": tally.gave_up,
        "answered": tally.answered,
        "results": tally.results,
        "failed_with_a_sentence": dict(tally.failed),
        "faults": tally.faults,
        "redis_steps_accepted": cluster.get("accepted", 0),
        "redis_outcomes": outcomes,
        "redis_counters": cluster,
    }
    print("chaos figures:", json.dumps(figures))
    print("problems:", *tally.problems, sep="\n  ")
    assert tally.problems == []
    assert len(tally.faults) == 5
    assert tally.answered == tally.accepted  # nothing lost: every accepted job answered once
    assert tally.sent == tally.accepted + tally.gave_up
    assert cluster.get("accepted", 0) == outcomes  # every step admitted in Redis got exactly one outcome
    assert_nothing_pending(client)


class Chaos:
    """The faults, in order; each one healed (and the healing seen) before it returns."""

    def __init__(
        self,
        server: RedisServer,
        hosts: list[HostProcess],
        consumers: list[str],
        front_ends: list[FrontEndProcess],
        tally: Tally,
        session: aiohttp.ClientSession,
        folder: Path,
        send: Callable[[Upload], None],
    ) -> None:
        self.server = server
        self.hosts = list(hosts)
        self.consumers = consumers
        self.front_ends = front_ends
        self.tally = tally
        self.session = session
        self.folder = folder
        self.send = send
        self.faults = [
            self.restart_redis,
            self.redis_out_of_memory,
            self.redis_read_only,
            self.kill_a_host,
            self.stop_a_front_end,
        ]

    def in_flight(self, wave: list[asyncio.Task[None]]) -> Awaitable[bool]:
        async def check() -> bool:
            return self.tally.accepted > 0 and sum(task.done() for task in wave) < len(wave) // 2

        return check()

    async def healed(self) -> None:
        """Every front end still running is ready and every host's heartbeat is in Redis."""
        for front_end in self.front_ends:
            if front_end.process.poll() is None or front_end.process.returncode is None:
                await eventually(lambda f=front_end: f.ready(self.session), "a front end ready again")
        client = self.server.client()

        async def heartbeats() -> bool:
            members = await asyncio.to_thread(client.zrange, "animebot:hosts", 0, -1)
            pids = {member.decode().split(":")[1] for member in members}
            return all(str(host.pid) in pids for host in self.hosts)

        await eventually(heartbeats, "every worker host's heartbeat")

    async def restart_redis(self) -> None:
        self.server.kill()
        await asyncio.to_thread(self.server.start)
        self.tally.faults.append("Redis killed and started again on its AOF")
        await self.healed()

    async def refusing(self, code: str, refuse: list[list[str]], heal: list[list[str]], what: str) -> None:
        client = self.server.client()
        before = error_count(client, code)
        for command in refuse:
            client.execute_command(*command)

        async def refused() -> bool:
            return await asyncio.to_thread(error_count, client, code) > before

        await eventually(refused, f"Redis to refuse writes with {code}")
        # One more photo while Redis refuses: its person is told "busy" (a sentence), and it is sent again later.
        refusals = self.tally.refused.total()
        self.send(uploads(0)[1])

        async def told_busy() -> bool:
            return self.tally.refused.total() > refusals

        await eventually(told_busy, "a client to be refused with a sentence")
        for command in heal:
            client.execute_command(*command)
        self.tally.faults.append(what)
        await self.healed()

    async def redis_out_of_memory(self) -> None:
        await self.refusing(
            "OOM",
            [["CONFIG", "SET", "maxmemory", "1"]],
            [["CONFIG", "SET", "maxmemory", MAXMEMORY]],
            "Redis out of memory (maxmemory 1, noeviction)",
        )

    async def redis_read_only(self) -> None:
        await self.refusing(
            "READONLY",
            [["CONFIG", "SET", "replica-read-only", "yes"], ["REPLICAOF", "127.0.0.1", str(free_port())]],
            [["REPLICAOF", "NO", "ONE"]],
            "Redis read-only (a replica of a primary that is not there)",
        )

    async def kill_a_host(self) -> None:
        victim = self.hosts[0]
        client = self.server.client()

        async def running_a_job() -> bool:
            pending = await asyncio.to_thread(client.xpending_range, "animebot:stream", "workers", "-", "+", 50)
            return any(entry["consumer"].decode() == self.consumers[0] for entry in pending)

        with contextlib.suppress(AssertionError):  # most often it is; if not, it dies idle
            await eventually(running_a_job, "the first host to run a job", 20)
        victim.signal_all(signal.SIGKILL)
        replacement = HostProcess(self.server.url, self.folder / "host-replacement.log", **HOST_ENV)
        self.hosts[0] = replacement
        await asyncio.to_thread(replacement.wait_serving, client)
        self.tally.faults.append("a worker host SIGKILLed (a new one started)")
        await self.healed()

    async def stop_a_front_end(self) -> None:
        leaving = self.front_ends[1]
        leaving.leaving = True
        leaving.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(leaving.process.wait, JOB_TIMEOUT + EVENT_TIMEOUT)
        assert code == 0, leaving.output()
        self.tally.faults.append("a front end SIGTERMed (drained, exit 0)")
