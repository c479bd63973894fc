"""The service every front end talks to: settings, styles, the job queue, the source cache, limits and stats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from animegan.errors import AnimeganError
from animegan.manifest import Style, find_style, installed_styles
from bot.admin_actions import AdminActions
from bot.audit import AuditLog, SqliteAuditLog
from bot.bans import Banned, BanStore, SqliteBans
from bot.budgets import Budgets, BudgetStore, Charge, SqliteBudgetStore, photo_equivalents
from bot.cache import Clock, SourceStore
from bot.clips import ClipJob, ClipSettings, looks_like_clip
from bot.config import Settings
from bot.disk_cache import DiskSourceCache
from bot.i18n import N_, Text
from bot.jobs import (
    JobError,
    JobHandle,
    JobKind,
    JobQueue,
    JobRejected,
    JobRequest,
    JobResult,
    PersonQueueFull,
    RateLimited,
)
from bot.limits import AccessList, RateLimiter
from bot.orders import SOURCE_EXPIRED, Accepted, Order, SourceExpired
from bot.overview import QueueReadings
from bot.pool import InferencePool, PoolConfig
from bot.settings_store import FULL_STRENGTH, ChatSettings, SettingsStore, SqliteSettingsStore
from bot.supervision import Supervisor

if TYPE_CHECKING:
    from bot.cluster.shared import RedisSources

BYTES_PER_MB = 1024 * 1024
FIRST_CHARGE = 1  # photo equivalents a photo costs, and a clip on admission (the rest once its frames are known)
STRENGTH_RANGE = (0.0, 1.0)
STRENGTH_MESSAGE = N_("The strength must be between 0 (the photo as it is) and 1 (the full style).")


class ManagedQueue(JobQueue, QueueReadings, Protocol):
    """A ``JobQueue`` the service starts, stops and reports on (the in-process pool, or a Redis queue), with the
    readings behind the wait estimates and the admin page (``bot/overview.py``)."""

    async def start(self) -> None:
        """Get ready to run jobs."""
        ...

    async def stop(self) -> None:
        """Finish or answer every accepted job, then release resources."""
        ...

    def stats(self) -> dict[str, int | float]:
        """Numbers for /stats and metrics."""
        ...


def default_queue(settings: Settings) -> ManagedQueue:
    """The in-process pool of ``settings.workers`` processes (the embedded mode)."""
    if settings.workers < 1:
        raise ValueError("ANIMEBOT_WORKERS=0 makes a pure front end, which needs ANIMEBOT_REDIS_URL (see README)")
    return InferencePool(PoolConfig.from_settings(settings))


def too_large_message(size: int, limit: int) -> str:
    """The plain sentence for an upload over ``limit`` bytes."""
    return Text(
        "That file is {size:.1f} MB; the limit is {limit:.0f} MB. Please send a smaller photo.",
        size=size / BYTES_PER_MB,
        limit=limit / BYTES_PER_MB,
    )


def not_installed_message(style: Style) -> str:
    """The plain sentence for a style whose weights this server lacks."""
    return Text("The {style} style is not installed on this bot. Please choose another style.", style=style.title)


class Service:
    """What adapters and the web server share: one per process, built from ``Settings``.

    Args:
        settings: every knob.
        queue: where jobs run (default: with ``settings.redis_url`` Redis Streams to worker hosts, and then
            source photos and rate limits in Redis too; else an ``InferencePool`` of ``settings.workers`` processes).
        sources: where source photos are kept for re-styling (default: with ``settings.redis_url`` in Redis, for
            every front end; else a ``DiskSourceCache`` in ``settings.data_dir``, which the service closes when it
            stops).
        clock: seconds for the source cache and the rate limit (injectable for tests; default: wall-clock time
            for the photos on disk, which outlive the process, and monotonic time for the rate limit).
        chat_settings: where people's settings and records are kept (default: Redis with ``settings.redis_url``,
            else ``settings.sqlite3`` in ``settings.data_dir``).

    The daily budgets (``budgets``), the bans (``bans``) and the audit log of admin actions (``audit``) are kept in
    Redis with ``settings.redis_url``, else in SQLite files of ``settings.data_dir``; ``admin`` runs the admin
    commands on them.
    """

    def __init__(
        self,
        settings: Settings,
        queue: ManagedQueue | None = None,
        sources: SourceStore | None = None,
        clock: Clock | None = None,
        chat_settings: SettingsStore | None = None,
    ) -> None:
        self.settings = settings
        self.supervisor = Supervisor.from_settings(settings)  # the process's long-lived tasks (bot/supervision.py)
        self.shared: RedisSources | None = None  # in Redis, for every front end
        self._rate_refused_in_redis = 0  # the admission script refuses; this front end counts its own
        if queue is None and settings.redis_url is not None:
            from bot.cluster.shared import front_end

            queue, self.shared = front_end(settings, self.supervisor)
        self._owned_sources: DiskSourceCache | None = None
        if sources is None and self.shared is not None:
            sources = self.shared
        if sources is None:
            sources = self._owned_sources = DiskSourceCache.in_folder(
                settings.data_dir,
                settings.source_cache_items,
                settings.source_cache_ttl,
                max_bytes=settings.source_cache_bytes,
                clock=clock or time.time,
                per_person_items=settings.source_cache_per_person_items,
                per_person_bytes=settings.source_cache_per_person_bytes,
            )
        self.sources: SourceStore = sources
        self.limiter = RateLimiter(settings.rate_limit_per_minute, clock=clock or time.monotonic)
        self.access = AccessList.from_settings(settings)
        self.queue: ManagedQueue = queue if queue is not None else default_queue(settings)
        self.chat_settings: SettingsStore = chat_settings or self._default_settings_store()
        budget_store, self.bans, self.audit = self._default_moderation_stores()
        admins = frozenset(settings.admin_ids)
        self.budgets = Budgets(budget_store, settings.daily_photos, settings.daily_photos_per_group, admins)
        self.admin = AdminActions(self.bans, self.budgets, self.audit, admins)

    def _default_settings_store(self) -> SettingsStore:
        """People's settings in Redis when the front ends share it, else in ``settings.sqlite3`` in the data dir."""
        if self.shared is not None:
            from bot.cluster.settings import RedisSettingsStore

            return RedisSettingsStore(self.shared.client, self.settings.source_cache_ttl)
        return SqliteSettingsStore.in_folder(self.settings.data_dir, self.settings.source_cache_ttl)

    def _default_moderation_stores(self) -> tuple[BudgetStore, BanStore, AuditLog]:
        """Budgets, bans and the audit log in Redis when the front ends share it, else in SQLite in the data dir."""
        if self.shared is not None:
            from bot.cluster.audit import RedisAuditLog
            from bot.cluster.bans import RedisBans
            from bot.cluster.budgets import RedisBudgetStore

            client = self.shared.client
            return RedisBudgetStore(client), RedisBans(client), RedisAuditLog(client)
        folder = self.settings.data_dir
        return SqliteBudgetStore.in_folder(folder), SqliteBans.in_folder(folder), SqliteAuditLog.in_folder(folder)

    async def start(self) -> None:
        """Start the workers (returns once each has built its engine); first the stores' files are opened, so one
        that can't be used (locked by another process, a newer schema) stops the service with its plain error."""
        await self.chat_settings.ready()
        await self.budgets.ready()
        await self.bans.ready()
        await self.audit.ready()
        await self.queue.start()

    async def stop(self) -> None:
        """Stop taking photos, finish or answer every accepted one, then end the workers."""
        await self.queue.stop()
        await self.chat_settings.close()
        await self.budgets.close()
        await self.bans.close()
        await self.audit.close()
        if self._owned_sources is not None:
            await self._owned_sources.close()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    def styles(self) -> list[Style]:
        """The installed styles, ``settings.default_style`` first (else the manifest's default)."""
        styles = installed_styles(self.settings.weights_dir)
        return sorted(styles, key=lambda style: style.name != self.settings.default_style)

    def styles_by_name(self) -> dict[str, Style]:
        """The installed styles by name, ``settings.default_style`` first."""
        return {style.name: style for style in self.styles()}

    def style_for(self, chosen: ChatSettings) -> str:
        """The chosen style when it is installed, else the server's default."""
        installed = {style.name for style in self.styles()}
        return chosen.style if chosen.style in installed else self.settings.default_style

    async def submit(self, order: Order) -> Accepted:
        """Take one photo or clip from a front end: the one path every upload and button press goes through.

        Refuses a banned person, reads the kept photo an order names, fills in what it leaves open from
        ``order.chosen``, tells a clip from a photo, checks it, applies the rate limit, the daily budgets (a clip's
        rest once its frames are known) and the queue's admission, and only then keeps a new upload for the
        buttons: a refused upload is never stored. A kept photo is only ever read for the person it was kept for
        (``order.user``): anyone else is told it expired, so nothing tells a stranger a key exists. Raises
        ``Banned``, ``SourceExpired``, ``JobRejected``, ``RateLimited``, ``BudgetExhausted`` or ``QueueFull``
        (``PersonQueueFull``) with the sentence to show.
        """
        if await self.bans.is_banned(order.user):
            raise Banned
        image = order.image
        if image is None:
            image = await self.find_source(order.source or "", owner=order.user)
            if image is None:
                raise SourceExpired(SOURCE_EXPIRED)
        chosen = order.chosen or ChatSettings()
        request = JobRequest(
            user=order.user,
            image=image,
            style=order.style or self.style_for(chosen),
            strength=chosen.strength / FULL_STRENGTH if order.strength is None else order.strength,
            faces=chosen.faces if order.faces is None else order.faces,
            output_format=order.output_format,
            kind=JobKind.CLIP if looks_like_clip(image) else JobKind.PHOTO,
        )
        handle, request = await self._admit(request, order.group, order.time_zone)
        source = order.source or ""
        if order.image is not None and order.keep:
            source = await self.keep_source(order.image, owner=order.owner, user=order.user)
        return Accepted(handle, source, request)

    async def submit_in_turn(
        self, orders: list[Order], on_done: Callable[[int], Awaitable[None]]
    ) -> list[Accepted | JobError]:
        """Submit every order, the next one only while the person's own queue has room; wait for every outcome.

        A ``PersonQueueFull`` refusal waits for one of the person's running jobs, then tries again, so a big album
        waits its turn instead of being refused; any other refusal (rate limit, busy) is that order's outcome.
        ``on_done(finished)`` is called as jobs finish. Returns, in order, each accepted order (its job finished,
        ``handle.result()`` ready) or the error that ended it.
        """
        outcomes: list[Accepted | JobError | None] = [None] * len(orders)
        running: dict[asyncio.Future[JobResult], tuple[int, Accepted]] = {}
        finished = 0

        async def collect(done: set[asyncio.Future[JobResult]]) -> None:
            nonlocal finished
            for task in done:
                index, accepted = running.pop(task)
                error = task.exception()
                if error is not None and not isinstance(error, JobError):
                    raise error
                outcomes[index] = error if isinstance(error, JobError) else accepted
                finished += 1
                await on_done(finished)

        for index, order in enumerate(orders):
            while outcomes[index] is None:
                try:
                    accepted = await self.submit(order)
                except PersonQueueFull as refusal:
                    if running:
                        done, _pending = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                        await collect(done)
                        continue
                    outcomes[index] = refusal
                except JobError as refusal:
                    outcomes[index] = refusal
                else:
                    running[asyncio.ensure_future(accepted.handle.result())] = (index, accepted)
                    break
        while running:
            done, _pending = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            await collect(done)
        return [outcome for outcome in outcomes if outcome is not None]

    async def enqueue(self, request: JobRequest) -> JobHandle:
        """Queue a job as it is (its kind given, nothing kept): for tests, benchmarks and internal jobs.

        The same checks, rate limit and admission as ``submit``; raises the same errors.
        """
        handle, _request = await self._admit(request)
        return handle

    async def _admit(
        self, request: JobRequest, group: str | None = None, zone: str | None = None
    ) -> tuple[JobHandle, JobRequest]:
        """Check ``request`` (its style normalised: "Shinkai" -> "shinkai", so a bad one costs no queue slot),
        apply the rate limit, the daily budgets (of the person and of ``group``; ``zone`` for the reset time said)
        and the queue's admission; the queued job and the checked request."""
        checked = self._checked(request)
        if self.shared is None:
            self.limiter.check(checked.user)
            await self.budgets.charge(checked.user, group, FIRST_CHARGE, zone)  # checked and spent in one step
            try:
                handle = await self._enqueue(checked, group, zone)
            except JobError:
                await self.budgets.refund(checked.user, group, FIRST_CHARGE)
                raise
            self.limiter.record(checked.user)
            return handle, checked
        # One script checks the shared rate limit and the budgets, admits, and counts the job in both
        # (bot/cluster/lua/admit.lua).
        checked = replace(checked, charge=Charge(self.budgets.lines(checked.user, group), FIRST_CHARGE, zone))
        try:
            handle = await self._enqueue(checked, group, zone)
        except RateLimited:
            self._rate_refused_in_redis += 1
            raise
        return handle, checked

    async def _enqueue(self, request: JobRequest, group: str | None, zone: str | None) -> JobHandle:
        if request.kind is JobKind.CLIP:  # split into steps that run on every worker (bot/clips.py)

            async def charge_frames(frames: int) -> None:
                total = photo_equivalents(frames)
                await self.budgets.charge_rest(request.user, group, total, FIRST_CHARGE, zone)

            return await ClipJob.start(self.queue, request, self.clip_settings(), on_planned=charge_frames)
        return await self.queue.submit(request)

    def clip_settings(self) -> ClipSettings:
        """How clips are cut and split, from the settings."""
        settings = self.settings
        return ClipSettings(
            max_seconds=settings.clip_max_seconds,
            max_fps=settings.clip_max_fps,
            long_side=settings.clip_side,
            chunk_frames=settings.clip_chunk_frames,
            chunks_in_flight=settings.clip_chunks_in_flight,
        )

    async def keep_source(self, image: bytes, owner: str | None = None, user: str | None = None) -> str:
        """Keep a photo for the re-style buttons; returns its short key (see ``SourceCache``).

        It is kept as ``owner``'s (a person's key, like ``telegram:123``; recorded too, so ``forget`` deletes it),
        else as ``user``'s (who sent it: a web client's key): only they can use the key (see ``submit``).
        """
        key = await self.sources.put(image, owner=owner or user)
        if owner is not None:
            await self.chat_settings.own_source(owner, key)
        return key

    async def forget(self, *owners: str) -> int:
        """Delete everything kept about ``owners``: settings, sticker pack records and their source photos.

        Returns how many source photos were deleted. Copies of a broken store file set aside are deleted too (a
        corrupt file can't be trusted to give up one person's rows), and records of failed jobs lose them.
        """
        deleted = 0
        for owner in owners:
            for key in await self.chat_settings.forget(owner):
                await self.sources.delete(key)
                deleted += 1
            deleted += await self.sources.forget(owner)
            if self.shared is not None:
                from bot.cluster.shared import forget_dead_letters

                await forget_dead_letters(self.shared.client, owner)
        return deleted

    async def find_source(self, key: str, owner: str | None = None) -> bytes | None:
        """The photo kept under ``key``, or ``None`` when it expired, never existed, or (with ``owner``, who asks) was
        kept for someone else."""
        return await self.sources.get(key, owner)

    async def sticker(self, image: bytes) -> bytes:
        """``image`` as a 512 px WEBP sticker (in a thread: Pillow work stays off the event loop).

        Raises ``ValueError`` when the bytes are not an image.
        """
        from bot.stickers import sticker_webp  # Pillow: loaded only when a sticker is asked for

        return await asyncio.to_thread(sticker_webp, image)

    def stats(self) -> dict[str, int | float]:
        """The queue's numbers plus people refused by the rate limit and the source photos held, as their store last
        counted them (no I/O: this runs on the event loop; left out with Redis, which would have to be asked)."""
        refused = self.limiter.refused if self.shared is None else self._rate_refused_in_redis
        usage = self.sources.usage()
        held = {} if usage is None else {"sources_cached": usage.photos, "sources_bytes": usage.total_bytes}
        return {**self.queue.stats(), "rate_limited": refused, **held}

    def worker_details(self) -> dict[str, dict[str, str]]:
        """What each local worker process said of itself when ready (its cores, its models' precision paths), by
        process id; empty when jobs run on worker hosts elsewhere."""
        details = getattr(self.queue, "worker_details", None)
        return details() if callable(details) else {}

    def _checked(self, request: JobRequest) -> JobRequest:
        if len(request.image) > self.settings.max_upload_bytes:
            raise JobRejected(too_large_message(len(request.image), self.settings.max_upload_bytes))
        if not STRENGTH_RANGE[0] <= request.strength <= STRENGTH_RANGE[1]:
            raise JobRejected(STRENGTH_MESSAGE)
        try:
            style = find_style(request.style or self.settings.default_style, self.settings.weights_dir)
        except AnimeganError as error:
            raise JobRejected(error.message) from error
        if not style.installed:
            raise JobRejected(not_installed_message(style))
        return replace(request, style=style.name)
