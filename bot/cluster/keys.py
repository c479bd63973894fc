"""Names of everything the distributed queue keeps in Redis, under one prefix (``animebot`` by default)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "animebot"
GROUP = "workers"  # the consumer group of worker hosts on the job stream


@dataclass(frozen=True)
class Keys:
    """Key names; the Lua scripts in ``lua/`` build the same names from ``prefix`` (see ``common.lua``)."""

    prefix: str = DEFAULT_PREFIX

    @property
    def stream(self) -> str:
        """Jobs handed to worker hosts; an entry is pending (leased) while a host runs it."""
        return f"{self.prefix}:stream"

    @property
    def dead(self) -> str:
        """Dead letters: jobs that failed on every attempt."""
        return f"{self.prefix}:dead"

    @property
    def counters(self) -> str:
        """Hash of counters: waiting, accepted, refused, done, rejected, failed, timed_out, dead."""
        return f"{self.prefix}:counters"

    @property
    def turn(self) -> str:
        """List of people with jobs waiting, in round-robin order."""
        return f"{self.prefix}:turn"

    @property
    def wake(self) -> str:
        """List of tokens that wake idle worker slots when a job arrives."""
        return f"{self.prefix}:wake"

    @property
    def hosts(self) -> str:
        """Sorted set of live worker hosts, scored by when their heartbeat expires."""
        return f"{self.prefix}:hosts"

    @property
    def host_slots(self) -> str:
        """Hash: worker host -> its number of worker processes."""
        return f"{self.prefix}:host_slots"

    def host_report(self, host: str) -> str:
        """Hash of what a worker host says about itself at each heartbeat (``bot/cluster/hosts.py``)."""
        return f"{self.prefix}:host_report:{host}"

    def waiting(self, user: str) -> str:
        """List of one person's waiting job ids, oldest first."""
        return f"{self.prefix}:waiting:{user}"

    def job(self, job_id: str) -> str:
        """Hash of a job's request and attempt count, until it is answered."""
        return f"{self.prefix}:job:{job_id}"

    def events(self, job_id: str) -> str:
        """Stream of a job's progress events, ending with ``done`` or ``failed``."""
        return f"{self.prefix}:events:{job_id}"

    def result(self, job_id: str) -> str:
        """Hash of a job's outcome, kept ``result_ttl`` seconds."""
        return f"{self.prefix}:result:{job_id}"

    def fence(self, job_id: str) -> str:
        """The completion fence: set once, by whoever answers the job."""
        return f"{self.prefix}:fence:{job_id}"

    def source(self, key: str) -> str:
        """A source photo kept for re-styling."""
        return f"{self.prefix}:source:{key}"

    def rate(self, user: str) -> str:
        """Sorted set of one person's recent photo times, for the rate limit."""
        return f"{self.prefix}:rate:{user}"
