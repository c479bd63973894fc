"""The one typed settings object, read from ``ANIMEBOT_*`` environment variables and an optional ``.env``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, IPvAnyNetwork, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("animebot"))


def _default_workers() -> int:
    # One single-threaded worker per core, each pinned to its core: on 2 cores that drew 1.8x the photos per second
    # of one worker with 2 threads, at the same median latency (bench/service.py, docs/scaling.md).
    return max(1, len(os.sched_getaffinity(0)))


class Settings(BaseSettings):
    """Every knob of the service; each field is documented in README.md ("Configuration")."""

    # An empty variable counts as unset (compose passes ANIMEBOT_TELEGRAM_TOKEN= when no token is given).
    model_config = SettingsConfigDict(env_prefix="ANIMEBOT_", env_file=".env", extra="ignore", env_ignore_empty=True)

    # Front ends
    telegram_token: SecretStr | None = Field(None, description="Bot token from @BotFather; enables Telegram.")
    telegram_base_url: str = Field(
        "https://api.telegram.org/bot", description="Bot API base URL (local Bot API server)."
    )
    telegram_base_file_url: str = Field("https://api.telegram.org/file/bot", description="Bot API file base URL.")
    telegram_webhook_url: str | None = Field(
        None, description="Public HTTPS URL; when set, webhook mode replaces polling."
    )
    telegram_webhook_port: int = Field(8443, description="Local port the webhook listener binds.")
    telegram_webhook_secret: SecretStr | None = Field(
        None, description="Secret Telegram sends with each webhook update (default: derived from the token)."
    )
    discord_token: SecretStr | None = Field(
        None, description="Bot token from the Discord developer portal; enables Discord."
    )
    host: str = Field("127.0.0.1", description="Address the web UI and API bind.")
    port: int = Field(8080, description="Port of the web UI and API.")
    api_key: SecretStr | None = Field(
        None, description="When set, the HTTP API requires it (header X-API-Key) and /admin opens with it."
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Addresses or networks of the load balancers in front of the web UI and API, whose "
        "X-Forwarded-For is believed (empty: none; each client is then the address it connects from).",
    )

    # Engine
    default_style: str = Field("shinkai", description="Style used when a person names none.")
    precision: Literal["auto", "fp32", "openvino-fp32", "bf16", "int8", "int8-bf16"] = Field(
        "auto",
        description="Generator precision: auto is the fastest path that stays faithful to fp32, measured once per CPU "
        "and model; the others force a path (README).",
    )
    working_size: int = Field(1024, description="Long side (px) images are stylized at.")
    scene_side: int | None = Field(
        512,
        description="Long side (px) the scene generator runs at at most; larger pictures are brought up by a "
        "guided filter (4x faster and leaner at 1024 px). Empty: the generator runs at the full working size.",
    )
    weights_dir: Path | None = Field(None, description="Where installed weights live (default: user cache dir).")
    weights_mirror: Path | None = Field(None, description="Folder to pull weights from instead of the internet.")
    engine_factory: str = Field(
        "animegan:Engine", description="Import path (module:callable) each worker builds its engine with."
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the service keeps its state: source photos behind re-style buttons, people's settings.",
    )
    examples_dir: Path = Field(
        Path(__file__).resolve().parents[1] / "examples", description="Example photos shown in the web gallery."
    )

    # Pool and limits
    workers: int = Field(
        default_factory=_default_workers,
        ge=0,
        description="Worker processes (default: one per core, pinned to it; each owns cores/workers threads); 0 with "
        "redis_url: a pure front end.",
    )
    lend_idle_cores: bool = Field(
        True,
        description="A photo that comes while every pinned worker is idle runs on all their cores (one worker keeps "
        "its models compiled for both, about 160 MB more) until another job comes.",
    )
    queue_size: int = Field(32, description="Jobs waiting beyond the running ones; more get a 'busy' reply.")
    per_user_queued: int = Field(3, description="Jobs one person may have waiting at once.")
    job_timeout: float = Field(120.0, description="Seconds a job may run before it is cancelled.")
    rate_limit_per_minute: int = Field(10, description="Photos one person may send per minute.")
    max_upload_bytes: int = Field(20 * 1024 * 1024, description="Largest accepted upload.")
    max_pixels: int = Field(50_000_000, description="Largest accepted image, in pixels.")
    source_cache_items: int = Field(
        256, description="Source photos kept for re-styling (on disk, or in Redis with redis_url)."
    )
    source_cache_ttl: float = Field(3600.0, description="Seconds a source photo is kept for re-styling.")
    source_cache_bytes: int = Field(
        256 * 1024 * 1024, description="Most bytes of source photos kept (on disk, or in Redis with redis_url)."
    )
    source_cache_per_person_items: int = Field(
        32, ge=1, description="Most source photos kept of one person (their least recently used go first)."
    )
    source_cache_per_person_bytes: int = Field(
        64 * 1024 * 1024, ge=1, description="Most bytes of source photos kept of one person."
    )
    allowed_chats: set[int] = Field(default_factory=set, description="Telegram chat ids allowed (empty: all).")
    allowed_guilds: set[int] = Field(default_factory=set, description="Discord guild ids allowed (empty: all).")
    admin_ids: set[str] = Field(
        default_factory=set,
        description="User keys (e.g. telegram:123) allowed /stats, /ban, /unban and /usage; exempt from budgets.",
    )
    daily_photos: int = Field(
        0, ge=0, description="Photos one person may have drawn per UTC day (a clip: its frames / 1.25); 0: no budget."
    )
    daily_photos_per_group: int = Field(
        0, ge=0, description="Photos one group chat or guild may have drawn per UTC day, shared by all; 0: no budget."
    )
    task_failures: int = Field(
        5,
        ge=1,
        description="Failures in a row of a long-lived task (a chat front end, a Redis loop) before the "
        "process gives up and exits non-zero (see README, Supervision).",
    )
    task_backoff: float = Field(
        1.0, gt=0, description="Seconds before a failed long-lived task is restarted; doubled at each failure in a row."
    )

    # Clips (videos, GIFs, video notes)
    clip_max_seconds: float = Field(20.0, gt=0, description="Longest clip drawn, in seconds; longer ones are cut.")
    clip_max_fps: float = Field(15.0, gt=0, description="Highest frame rate of a clip; faster ones drop frames evenly.")
    clip_side: int = Field(512, ge=64, description="Long side (px) clips are drawn at.")
    clip_chunk_frames: int = Field(12, ge=1, description="Frames per chunk a clip is split into across workers.")
    clip_chunks_in_flight: int = Field(
        default_factory=lambda: max(2, _default_workers()),
        ge=1,
        description="Chunks of one clip queued or running at once (how many workers one clip may use).",
    )

    # Distributed mode (Redis Streams); unset: the embedded in-process pool
    redis_url: SecretStr | None = Field(
        None, description="redis:// URL of a Redis or Valkey server; when set, jobs go through it to worker hosts."
    )
    lease_seconds: float = Field(
        15.0, gt=0, description="Seconds a worker host holds a job without a heartbeat before another host takes it."
    )
    result_ttl: float = Field(
        600.0, gt=0, description="Seconds a finished job's result and progress are kept in Redis."
    )
