"""What an admin may do from a chat (``/ban``, ``/unban``, ``/usage``), each written to the audit log.

Front ends check that the person is an admin (``is_admin``) and turn the outcome into words; the actions
themselves, and their audit entries, are the same on every platform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.audit import AdminAction, AuditLog
from bot.bans import BanStore
from bot.budgets import Budgets, Usage, clock_time
from bot.i18n import N_, Text

PERSON_KEY = re.compile(r"^[a-z][a-z0-9-]*:\S+$")  # telegram:123, discord:456, web:10.0.0.1
MENTION = re.compile(r"^<@!?(\d+)>$")  # a Discord mention, as a string option carries it


def person_key(text: str, platform: str) -> str | None:
    """The person key an admin names: a key as it is (``discord:456``), a bare id of ``platform``'s
    (``123`` -> ``telegram:123``), or a Discord mention (``<@456>`` -> ``discord:456``); None when it is none."""
    text = text.strip()
    mention = MENTION.match(text)
    if mention:
        return f"discord:{mention.group(1)}"
    if text.isdigit():
        return f"{platform}:{text}"
    return text if PERSON_KEY.match(text) else None


class BanOutcome(StrEnum):
    """What ``/ban`` did."""

    BANNED = "banned"
    ALREADY = "already"  # banned before: the first ban's record stays
    ADMIN = "admin"  # admins can't be banned (they would lock themselves out)


@dataclass(frozen=True)
class PersonReport:
    """What ``/usage`` tells an admin about a person: their budget today and whether they are banned."""

    usage: Usage
    banned: bool


class AdminActions:
    """The admin commands, on the service's stores; ``admins`` are the person keys of ``ANIMEBOT_ADMIN_IDS``."""

    def __init__(self, bans: BanStore, budgets: Budgets, audit: AuditLog, admins: frozenset[str]) -> None:
        self.bans = bans
        self.budgets = budgets
        self.audit = audit
        self.admins = admins

    def is_admin(self, person: str) -> bool:
        """Whether ``person`` (a key like ``telegram:123``) may use the admin commands."""
        return person in self.admins

    async def ban(self, admin: str, target: str, reason: str = "") -> BanOutcome:
        """Ban ``target`` (not an admin); logged either way."""
        if target in self.admins:
            outcome = BanOutcome.ADMIN
        else:
            outcome = BanOutcome.BANNED if await self.bans.ban(target, admin, reason) else BanOutcome.ALREADY
        await self.audit.record(admin, AdminAction.BAN, target, reason if outcome is BanOutcome.BANNED else "")
        return outcome

    async def unban(self, admin: str, target: str) -> bool:
        """Lift ``target``'s ban; False when there was none. Logged either way."""
        lifted = await self.bans.unban(target)
        await self.audit.record(admin, AdminAction.UNBAN, target)
        return lifted

    async def usage(self, admin: str, target: str) -> PersonReport:
        """``target``'s budget today and ban; the lookup is logged."""
        report = PersonReport(await self.budgets.usage(target), await self.bans.is_banned(target))
        await self.audit.record(admin, AdminAction.USAGE, target)
        return report


# The admin's replies, the same on every platform (each said in the admin's language with ``Translator.say``).
NOT_AN_ADMIN = N_("Sorry, that command is for the bot's admins.")
IS_BANNED = N_("They are banned.")


def ban_reply(outcome: BanOutcome, target: str) -> Text:
    """What ``/ban`` says it did."""
    if outcome is BanOutcome.ADMIN:
        return Text("{person} is an admin and can't be banned.", person=target)
    if outcome is BanOutcome.ALREADY:
        return Text("{person} was banned already.", person=target)
    return Text("{person} is banned: the bot ignores them from now on.", person=target)


def unban_reply(lifted: bool, target: str) -> Text:
    """What ``/unban`` says it did."""
    if lifted:
        return Text("{person} is no longer banned.", person=target)
    return Text("{person} was not banned.", person=target)


def usage_reply(report: PersonReport) -> list[Text]:
    """What ``/usage`` says: the person's use of their budget today, and whether they are banned."""
    usage = report.usage
    if usage.left is None:
        said = Text.plural(
            "{person} has used {count} photo today; no budget applies to them.",
            "{person} has used {count} photos today; no budget applies to them.",
            usage.used,
            person=usage.user,
        )
    else:
        said = Text.plural(
            "{person} has used {count} of {limit} photos today ({left} left); budgets reset at {time}.",
            "{person} has used {count} of {limit} photos today ({left} left); budgets reset at {time}.",
            usage.used,
            person=usage.user,
            limit=usage.limit,
            left=usage.left,
            time=clock_time(usage.resets_at),
        )
    return [said, Text(IS_BANNED)] if report.banned else [said]
