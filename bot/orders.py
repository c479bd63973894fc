"""What a front end asks of the core, and what it gets back: one photo or clip to stylize, and the accepted job.

A front end turns a chat message, a button press or an HTTP form into an ``Order`` and hands it to
``Service.submit``. Everything between the two is the core's: it reads the kept photo behind a button, fills in
what the person did not choose from their settings, works out whether the bytes are a photo or a clip, checks the
upload, refuses a banned person, applies the rate limit, the daily budgets and the queue's admission, and only
then keeps the upload for the re-style buttons.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import N_
from bot.jobs import JobHandle, JobKind, JobRejected, JobRequest
from bot.settings_store import FULL_STRENGTH, ChatSettings

SOURCE_EXPIRED = N_("That photo is no longer in my memory: send the photo again.")


class SourceExpired(JobRejected):
    """The kept photo an order names (a button's) has expired or was forgotten."""


@dataclass(frozen=True)
class Order:
    """One photo or clip a person wants stylized: new bytes (``image``) or the key of a kept one (``source``).

    What is left ``None`` comes from ``chosen`` (the person's or chat's settings), then from the server's defaults.
    ``user`` is who asks, for fairness and rate limits (``"telegram:123"``, ``"web:127.0.0.1"``); ``owner`` is whose
    kept photo a new upload becomes, so that ``/forget`` deletes it (``None``: kept, but no one's). ``keep=False``
    keeps nothing (a one-shot request has no buttons). ``group`` is the group chat or guild it was sent in, whose
    shared daily budget it is charged to too (``"telegram:-100456"``, ``"discord-guild:789"``; ``None``: a private
    chat or the web); ``time_zone`` is the person's IANA zone when the platform says it, for the budget's reset
    time (``None``: UTC).
    """

    user: str
    image: bytes | None = None
    source: str | None = None
    style: str | None = None
    strength: float | None = None  # 0 (the photo) .. 1 (the full style)
    faces: bool | None = None
    output_format: str | None = None
    chosen: ChatSettings | None = None
    owner: str | None = None
    keep: bool = True
    group: str | None = None
    time_zone: str | None = None


@dataclass(frozen=True)
class Accepted:
    """An admitted order: its job, the key its photo is kept under (``""`` when not kept), and what it asked for."""

    handle: JobHandle
    source: str
    request: JobRequest

    @property
    def style(self) -> str:
        """The style's name, normalised (``"Shinkai"`` -> ``"shinkai"``)."""
        return self.request.style

    @property
    def percent(self) -> int:
        """The strength in percent, as the buttons carry it."""
        return round(self.request.strength * FULL_STRENGTH)

    @property
    def kind(self) -> JobKind:
        """A photo or a clip."""
        return self.request.kind
