"""Worker processes start without the service's secrets in their environment.

A worker decodes files strangers send. Were a decoder ever exploited, the exploit would get what the process can
read, and a process can always read its own environment (``/proc/self/environ`` keeps the one it started with,
whatever it deletes later). So the bot tokens, the API key, the Redis URL and every other secret setting must
not be in the environment the worker is started with; a worker needs none of them (it gets its engine's options
through its pipe, and keeps ``ANIMEBOT_WEIGHTS_DIR``, the thread counts and the rest).

multiprocessing's spawn gives the child the parent's environment as it is at that moment and takes no other, so
``without_secrets`` takes the secrets out of ``os.environ`` for the moment of the spawn and puts them back.
"""

from __future__ import annotations

import os
import threading
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess

from pydantic import SecretStr

from bot.config import Settings

ENV_PREFIX = "ANIMEBOT_"
# Besides the SecretStr settings: any ANIMEBOT_ variable named like a secret (a future setting, or one of compose's).
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "API_KEY", "REDIS_URL")

_spawning = threading.Lock()  # one spawn at a time takes the secrets out and puts them back


def secret_settings() -> frozenset[str]:
    """The environment variables of the settings typed ``SecretStr``, e.g. ``ANIMEBOT_API_KEY``."""
    return frozenset(
        f"{ENV_PREFIX}{name}".upper()
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *typing.get_args(field.annotation))
    )


def secret_names(names: Iterable[str]) -> list[str]:
    """Which of ``names`` hold secrets (matched case-insensitively, as the settings are read)."""
    settings = secret_settings()
    found = []
    for name in names:
        upper = name.upper()
        if upper in settings or (upper.startswith(ENV_PREFIX) and any(word in upper for word in SECRET_WORDS)):
            found.append(name)
    return found


@contextmanager
def without_secrets() -> Iterator[None]:
    """``os.environ`` without its secrets inside the block: start the worker process there.

    Threads of this process that read a secret variable meanwhile would not find it; only the settings read them,
    once, at start, long before the first worker is spawned.
    """
    with _spawning:
        taken = {name: os.environ.pop(name) for name in secret_names(list(os.environ))}
        try:
            yield
        finally:
            os.environ.update(taken)


def start_without_secrets(process: BaseProcess) -> None:
    """Start a spawned worker ``process`` with none of the service's secrets in its environment."""
    with without_secrets():
        process.start()
