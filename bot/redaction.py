"""Secrets never reach a log: every log record of the process is scrubbed of the bot tokens and API key."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable

PLAIN_LOG_ARGS = (str, int, float, bool, type(None))


class TokenRedactor(logging.Filter):
    """Replaces bot tokens in a record's message, arguments, exception and stack text (httpx logs URLs with them)."""

    REPLACEMENT = "<redacted>"

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        for token in tokens:
            self.add(token)

    def add(self, token: str) -> None:
        """Redact ``token`` too; for a Telegram token ``ID:SECRET`` the part after the colon is the secret."""
        self.secrets.add(token.partition(":")[2] or token)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced."""
        for secret in self.secrets:
            text = text.replace(secret, self.REPLACEMENT)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # bad format arguments: logging reports them later; never raise here
            record.msg = self.redact(str(record.msg))
            record.args = tuple(self.redact(str(arg)) for arg in _as_tuple(record.args))
        else:
            # Arguments that can change after the call (PTB logs a result dict, then fills in its file URL with the
            # token) are frozen into the message now; plain scalars keep the record's template intact.
            mutable = any(not isinstance(arg, PLAIN_LOG_ARGS) for arg in _as_tuple(record.args))
            if mutable or any(secret in message for secret in self.secrets):
                record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _as_tuple(args: object) -> tuple[object, ...]:
    if args is None:
        return ()
    if isinstance(args, tuple):
        return args
    return (args,)


_REDACTOR = TokenRedactor()


def redact_token_in_logs(token: str) -> TokenRedactor:
    """Pass every log record of this process through a ``TokenRedactor`` that knows ``token``.

    A record factory (not a handler filter) so records are clean before any handler sees them, whatever handlers
    are added later (the CLI's, pytest's). Installed once per process; later calls only add tokens.
    """
    _REDACTOR.add(token)
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts_tokens", False):

        def redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = factory(*args, **kwargs)
            _REDACTOR.filter(record)
            return record

        redacting_factory.redacts_tokens = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(redacting_factory)
    return _REDACTOR
