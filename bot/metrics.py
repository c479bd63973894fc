"""Prometheus metrics of the service: numbers read from ``service.stats()`` at each scrape, and stage durations.

One ``CollectorRegistry`` per app (not the global one), so several apps can live in one process, as in tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.cluster.refusals import STATS_PREFIX
from bot.jobs import JobStage
from bot.service import Service
from bot.supervision import Supervisor

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160)

# service.stats() key -> (metric name, help)
STAT_GAUGES = {
    "queue_depth": ("animebot_queue_depth", "Jobs waiting for a worker."),
    "running": ("animebot_jobs_running", "Jobs being stylized now."),
    "workers": ("animebot_workers", "Worker processes configured."),
    "workers_alive": ("animebot_workers_alive", "Worker processes up and ready."),
    "mean_seconds": ("animebot_job_mean_seconds", "Mean seconds a finished job spent in a worker."),
    "mean_wait_seconds": ("animebot_job_mean_wait_seconds", "Mean seconds a job waited in the queue."),
    "oldest_wait_seconds": (
        "animebot_queue_oldest_wait_seconds",
        "Seconds the oldest job still waiting has waited (in the cluster: of this front end's jobs).",
    ),
    "worker_hosts": ("animebot_worker_hosts", "Worker hosts alive (cluster only: heartbeats in Redis)."),
    "redis_connected": ("animebot_redis_connected", "1 while Redis answers, 0 while it is unreachable (cluster only)."),
    "sources_cached": ("animebot_source_photos", "Source photos kept for re-styling."),
    "sources_bytes": ("animebot_source_photo_bytes", "Bytes of source photos kept for re-styling."),
}
# service.stats() key -> outcome label of animebot_jobs_total
STAT_OUTCOMES = {
    "jobs_done": "done",
    "jobs_rejected": "rejected",
    "jobs_failed": "failed",
    "jobs_timed_out": "timed_out",
    "jobs_refused": "refused_busy",
    "rate_limited": "refused_rate_limit",
}


class ServiceCollector(Collector):
    """Prometheus metrics read from ``service.stats()`` at each scrape."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        """One sample per known number in the service's stats."""
        stats = self._service.stats()
        for key, (name, help_text) in STAT_GAUGES.items():
            if key in stats:
                yield GaugeMetricFamily(name, help_text, value=stats[key])
        outcomes = CounterMetricFamily("animebot_jobs", "Jobs by outcome.", labels=["outcome"])
        for key, outcome in STAT_OUTCOMES.items():
            if key in stats:
                outcomes.add_metric([outcome], stats[key])
        yield outcomes
        if "jobs_accepted" in stats:
            yield CounterMetricFamily(
                "animebot_jobs_accepted", "Jobs accepted into the queue.", value=stats["jobs_accepted"]
            )
        if "restarts" in stats:
            yield CounterMetricFamily("animebot_worker_restarts", "Worker processes replaced.", value=stats["restarts"])
        if "jobs_dead" in stats:
            yield CounterMetricFamily(
                "animebot_dead_letters",
                "Jobs dead-lettered after failing on every attempt (cluster only, counted in Redis for all hosts).",
                value=stats["jobs_dead"],
            )
        yield from refusal_metrics(stats)
        yield from task_metrics(self._service.supervisor)


def refusal_metrics(stats: Mapping[str, int | float]) -> Iterator[Metric]:
    """``animebot_redis_refusals_total{reason=...}``: writes Redis refused (``bot/cluster/refusals.py``), when the
    stats have them (the cluster layout)."""
    counts = {key.removeprefix(STATS_PREFIX): value for key, value in stats.items() if key.startswith(STATS_PREFIX)}
    if not counts:
        return
    refusals = CounterMetricFamily(
        "animebot_redis_refusals",
        "Writes Redis refused (out of memory, read-only replica, failed snapshot...), by reason.",
        labels=["reason"],
    )
    for reason, count in sorted(counts.items()):
        refusals.add_metric([reason], count)
    yield refusals


def task_metrics(supervisor: Supervisor) -> Iterator[Metric]:
    """``animebot_task_up`` and ``animebot_task_restarts_total`` of every supervised task (``bot/supervision.py``)."""
    up = GaugeMetricFamily("animebot_task_up", "1 while a long-lived task is up, 0 while it is down.", labels=["task"])
    restarts = CounterMetricFamily(
        "animebot_task_restarts", "Unexpected failures of a long-lived task (each one restarted).", labels=["task"]
    )
    for name, state in sorted(supervisor.tasks.items()):
        up.add_metric([name], int(state.up))
        restarts.add_metric([name], state.restarts)
    yield up
    yield restarts


@dataclass(frozen=True)
class Metrics:
    """This app's Prometheus registry and the stage-duration histogram fed by the API's job store."""

    registry: CollectorRegistry
    stage_seconds: Histogram

    @classmethod
    def create(cls, service: Service) -> Metrics:
        """A fresh registry (one per app, so several apps can live in one process, as in tests)."""
        registry = CollectorRegistry()
        registry.register(ServiceCollector(service))
        stage_seconds = Histogram(
            "animebot_stage_seconds",
            "Seconds web jobs spent in each stage (queued, decoding, finding_faces, stylizing, finishing).",
            ["stage"],
            registry=registry,
            buckets=STAGE_BUCKETS,
        )
        return cls(registry, stage_seconds)

    def time_stage(self, stage: JobStage, seconds: float) -> None:
        """Record the seconds a job spent in ``stage``."""
        self.stage_seconds.labels(stage.value).observe(seconds)
