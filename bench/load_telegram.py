"""Load test of the Telegram path: N photos from M fake people, through the fake Bot API server, into a real service.

Everything is real except Telegram itself: python-telegram-bot polls ``tests/fake_telegram.py`` on 127.0.0.1, the
adapter downloads each photo, the service queues it fairly, worker processes run the real engine, and the reply
is uploaded back. Prints throughput, latency (photo sent -> stylized photo received), peak memory of every process,
and lost / duplicated replies (both must be 0).

    python bench/load_telegram.py --photos 40 --users 8 --workers 2 --mirror ../shared/weights
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from pydantic import SecretStr

from adapters.telegram import build_application, running
from animegan.manifest import installed_styles, load_manifest
from animegan.weights import pull
from bot.config import Settings
from bot.jobs import STAGE_LABELS
from bot.service import Service
from tests.fake_telegram import FakeTelegram, FakeUser

DEFAULT_MIRROR = REPO.parent / "shared" / "weights"
SAMPLE_SECONDS = 0.25
STATUS_PREFIXES = ("In the queue", "Starting", *STAGE_LABELS.values())  # a status line, not an answer yet
FIRST_USER_ID = 50_000
KIB = 1024
MIB = 1024 * 1024


# ---- memory -------------------------------------------------------------------------------------------------------


def _proc_children(pid: int) -> list[int]:
    """Every descendant of ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields resume after the last ")".
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def _proc_status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_tree() -> list[int]:
    """This process and every process it started (the pool's workers)."""
    return [os.getpid(), *_proc_children(os.getpid())]


def private_bytes(pid: int) -> int:
    """Private anonymous memory (``RssAnon``) of ``pid`` now, 0 if it is gone: what a process really costs (its
    RSS also counts shared libraries and page cache, which swing with what else runs)."""
    return _proc_status_kib(pid, "RssAnon") * KIB


@dataclass
class MemorySampler:
    """Samples the private memory of the whole process tree; keeps the peak of the sum and each process's peak."""

    peak_total: int = 0
    peak_by_pid: dict[int, int] = field(default_factory=dict)

    def sample(self) -> None:
        sizes = {pid: private_bytes(pid) for pid in process_tree()}
        self.peak_total = max(self.peak_total, sum(sizes.values()))
        for pid, size in sizes.items():
            self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), size)

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_SECONDS)


# ---- the run ------------------------------------------------------------------------------------------------------


def test_photo(long_side: int) -> bytes:
    """A real photo (scikit-image's coffee, CC0) if available, else a smooth gradient, as JPEG."""
    try:
        from skimage import data

        pixels = data.coffee()  # type: ignore[no-untyped-call]  # scikit-image's loaders carry no annotations
    except ImportError:
        rows, columns = np.mgrid[0:400, 0:600]
        pixels = np.dstack([columns * 255 // 599, rows * 255 // 399, np.full_like(rows, 128)]).astype(np.uint8)
    image = Image.fromarray(pixels)
    image.thumbnail((long_side, long_side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def prepare_weights(weights_dir: Path | None, mirror: Path | None, scratch: Path) -> Path | None:
    """The weights folder to use: pulled from ``mirror`` into ``scratch`` when none is installed."""
    if weights_dir is not None or installed_styles(None):
        return weights_dir
    if mirror is None or not (mirror / "SHA256SUMS").is_file():
        sys.exit("no weights installed: pass --weights-dir, or --mirror with the weight files")
    folder = scratch / "weights"
    pull(
        [name for name, model in load_manifest().models.items() if model.sha256], folder, mirror=mirror, progress=False
    )
    os.environ["ANIMEBOT_WEIGHTS_DIR"] = str(folder)  # the spawned workers read it too
    return folder


async def run(args: argparse.Namespace, scratch: Path) -> int:
    weights_dir = prepare_weights(args.weights_dir, args.mirror, scratch)
    workers = {"workers": args.workers} if args.workers else {}
    settings = Settings(
        _env_file=None,
        weights_dir=weights_dir,
        working_size=args.size,
        # A load test measures the pipeline, not the limits: everyone's photos are accepted.
        queue_size=max(args.photos, 1),
        per_user_queued=max(args.photos, 1),
        rate_limit_per_minute=0,
        **workers,
    )
    photo = test_photo(args.size)
    sampler = MemorySampler()
    sampling = asyncio.create_task(sampler.run())
    started = time.monotonic()
    async with Service(settings) as service, FakeTelegram() as telegram:
        print(
            f"service up in {time.monotonic() - started:.1f} s: {settings.workers} worker(s), "
            f"photo {len(photo) / KIB:.0f} KiB, long side {args.size}px"
        )
        bot_settings = settings.model_copy(
            update={
                "telegram_token": SecretStr(telegram.token),
                "telegram_base_url": telegram.base_url,
                "telegram_base_file_url": telegram.base_file_url,
            }
        )
        people = [FakeUser(FIRST_USER_ID + i, f"user{i}") for i in range(args.users)]
        async with running(build_application(bot_settings, service), bot_settings):
            sent: dict[tuple[int, int], float] = {}
            first_sent = time.monotonic()
            for number in range(args.photos):
                person = people[number % len(people)]
                message = telegram.send_photo(person, telegram.private_chat(person), photo)
                sent[(person.id, message["message_id"])] = time.monotonic()
                if args.rate:
                    await asyncio.sleep(1.0 / args.rate)

            def answered() -> set[tuple[int, int]]:
                keys = set()
                for (chat_id, _), message in telegram.messages.items():
                    source = message.get("reply_to_message", {}).get("message_id")
                    is_answer = "photo" in message or (
                        "text" in message and not message["text"].startswith(STATUS_PREFIXES)
                    )
                    if source is not None and message.get("from", {}).get("id") == telegram.bot_user.id and is_answer:
                        keys.add((chat_id, source))
                return keys

            try:
                await telegram.wait_until(lambda: sent.keys() <= answered(), args.timeout)
            except TimeoutError:
                print(f"timed out after {args.timeout:.0f} s")
            await asyncio.sleep(1.0)  # late duplicates would arrive now
            sampler.sample()
        stats = service.stats()
    sampling.cancel()

    photo_replies = Counter(
        (c.chat_id, int(c.params["reply_parameters"]["message_id"])) for c in telegram.calls_to("sendPhoto")
    )
    latencies = sorted(
        call.at - sent[key]
        for call in telegram.calls_to("sendPhoto")
        if (key := (call.chat_id, int(call.params["reply_parameters"]["message_id"]))) in sent
    )
    answered_keys = {key for key in sent if photo_replies[key] or key in answered()}
    lost = len(sent) - len(answered_keys)
    duplicated = sum(count - 1 for count in photo_replies.values() if count > 1)
    refused = len(answered_keys) - sum(1 for key in sent if photo_replies[key])
    last = max((c.at for c in telegram.calls_to("sendPhoto")), default=first_sent)
    elapsed = max(last - first_sent, 1e-9)

    print(f"photos {len(sent)} from {args.users} users: {len(latencies)} stylized, {refused} refused with a message")
    print(f"throughput {len(latencies) / elapsed:.2f} photos/s over {elapsed:.1f} s")
    if latencies:
        p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        print(f"latency p50 {statistics.median(latencies):.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s")
    print(
        f"peak private memory (RssAnon), all processes at once (sampled every {SAMPLE_SECONDS} s): "
        f"{sampler.peak_total / MIB:.0f} MiB"
    )
    for pid, peak in sorted(sampler.peak_by_pid.items()):
        print(f"  pid {pid}{' (this process)' if pid == os.getpid() else ''}: {peak / MIB:.0f} MiB")
    print(f"lost replies {lost}, duplicated replies {duplicated}")
    print(f"service stats: {stats}")
    print(f"Bot API calls refused by the fake server: {len(telegram.refused())}")
    return 0 if lost == 0 and duplicated == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=20, help="photos to send (default 20)")
    parser.add_argument("--users", type=int, default=4, help="people sending them, round-robin (default 4)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: half the cores)")
    parser.add_argument("--size", type=int, default=512, help="long side of the photos and working size (default 512)")
    parser.add_argument("--rate", type=float, default=0.0, help="photos per second to send (default 0: all at once)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every reply")
    parser.add_argument(
        "--weights-dir", type=Path, default=None, help="installed weights (default: ANIMEBOT_WEIGHTS_DIR)"
    )
    parser.add_argument(
        "--mirror",
        type=Path,
        default=DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None,
        help="folder to pull weights from when none are installed",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="animebot-bench-") as scratch:
        return asyncio.run(run(args, Path(scratch)))


if __name__ == "__main__":
    sys.exit(main())
