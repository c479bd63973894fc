"""A fake Discord on 127.0.0.1 for tests: real HTTP, a real gateway websocket, payloads shaped like Discord's (API v10).

It serves what discord.py's ``Client`` calls: ``GET /users/@me`` and ``/oauth2/applications/@me`` at login,
``PUT /applications/{id}/commands`` (checked like Discord checks command bodies), the gateway (HELLO, heartbeat
ACKs, IDENTIFY -> READY, then ``INTERACTION_CREATE`` dispatches), interaction callbacks, the interaction webhook
(``/webhooks/{app}/{token}`` follow-ups and ``/messages/@original`` edits and deletes) and attachment downloads
(the CDN). It also refuses what Discord refuses: a callback after the 3-second window ("Unknown interaction"),
a second callback ("already acknowledged"), over-long content, bad components, files over the upload limit,
choices that were never registered. It keeps the messages it holds, so a test can press a button the bot really
sent. Every request is recorded as an ``ApiCall``.

The test drives people: ``upload``, ``user_message``, ``slash_command``, ``message_command``, ``press_button``
build ``INTERACTION_CREATE`` payloads and ``send`` dispatches them. Point discord.py at it by setting
``discord.http.Route.BASE = fake.api_base`` and ``DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)``.

Over 400 lines on purpose: one fake of one platform's protocol (REST, gateway, webhooks, CDN), whose parts
share one state.
"""

from __future__ import annotations

import asyncio
import copy
import io
import itertools
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image, UnidentifiedImageError

JsonDict = dict[str, Any]

API_VERSION = 10
DISCORD_EPOCH_MS = 1_420_070_400_000
SNOWFLAKE_TIME_SHIFT = 22
HEARTBEAT_INTERVAL_MS = 41_250
RESPONSE_WINDOW = 3.0  # seconds Discord gives a bot to answer an interaction
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # a bot's upload limit in an unboosted guild or a DM
CONTENT_LIMIT = 2000
CUSTOM_ID_LIMIT = 100
LABEL_LIMIT = 80
ACTION_ROWS_LIMIT = 5
BUTTONS_PER_ROW = 5
COMMANDS_LIMIT = 100
OPTIONS_LIMIT = 25
CHOICES_LIMIT = 25
NAME_LIMIT = 32
DESCRIPTION_LIMIT = 100
CHAT_INPUT_NAME = re.compile(r"^[-_\w]{1,32}$")
EPHEMERAL = 1 << 6
LOADING = 1 << 7
ALL_PERMISSIONS = str((1 << 53) - 1)

# Gateway opcodes
DISPATCH, HEARTBEAT, IDENTIFY, HELLO, HEARTBEAT_ACK = 0, 1, 2, 10, 11
AUTHENTICATION_FAILED = 4004
# Interaction types and callback types
APPLICATION_COMMAND, MESSAGE_COMPONENT = 2, 3
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE = 4, 5, 6, 7
# Command types, option types, component types, channel types, message types, interaction contexts
CHAT_INPUT, MESSAGE_COMMAND = 1, 3
STRING, INTEGER, BOOLEAN, NUMBER, ATTACHMENT = 3, 4, 5, 10, 11
ACTION_ROW, BUTTON = 1, 2
LINK_BUTTON_STYLE = 5
GUILD_TEXT, DM = 0, 1
DEFAULT_MESSAGE, CHAT_INPUT_MESSAGE, CONTEXT_MENU_MESSAGE = 0, 20, 23
GUILD_CONTEXT, BOT_DM_CONTEXT, PRIVATE_CHANNEL_CONTEXT = 0, 1, 2
GUILD_INSTALL, USER_INSTALL = 0, 1
GROUP_DM = 3
# The locales Discord accepts in name_localizations / description_localizations.
DISCORD_LOCALES = frozenset(
    [
        "id",
        "da",
        "de",
        "en-GB",
        "en-US",
        "es-ES",
        "es-419",
        "fr",
        "hr",
        "it",
        "lt",
        "hu",
        "nl",
        "no",
        "pl",
        "pt-BR",
        "ro",
        "fi",
        "sv-SE",
        "vi",
        "tr",
        "cs",
        "el",
        "bg",
        "ru",
        "uk",
        "hi",
        "th",
        "zh-CN",
        "ja",
        "zh-TW",
        "ko",
    ]
)
# Error codes
UNKNOWN_WEBHOOK, UNKNOWN_MESSAGE, UNKNOWN_INTERACTION = 10015, 10008, 10062
ALREADY_ACKNOWLEDGED, TOO_LARGE, INVALID_FORM_BODY = 40060, 40005, 50035


class DiscordError(Exception):
    """A refusal as Discord sends it: an HTTP status and ``{"message": ..., "code": ...}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(reason: str) -> DiscordError:
    """Discord's answer to a body it does not accept."""
    return DiscordError(400, INVALID_FORM_BODY, f"Invalid Form Body: {reason}")


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ApiCall:
    """One request as the server saw it: the JSON body (or ``payload_json``) and the file parts."""

    method: str
    path: str
    body: JsonDict | list[Any] | None
    files: tuple[Upload, ...]
    at: float
    error: DiscordError | None = None


@dataclass(frozen=True)
class FakeUser:
    """A person (or the bot) as Discord's user object."""

    id: int
    username: str
    bot: bool = False

    def to_json(self) -> JsonDict:
        data: JsonDict = {
            "id": str(self.id),
            "username": self.username,
            "global_name": None if self.bot else self.username.title(),
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class Interaction:
    """What the server remembers of an interaction it dispatched."""

    id: int
    token: str
    type: int
    user: FakeUser
    name: str | None
    command_type: int | None
    channel_id: int
    guild_id: int | None
    message_id: int | None
    sent_at: float
    responded: bool = False
    original_id: int | None = None


@dataclass
class FakeDiscord:
    """The fake server. Use as ``async with FakeDiscord() as discord:``."""

    token: str = field(
        default_factory=lambda: f"{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(5)}.{secrets.token_urlsafe(27)}"
    )
    bot_user: FakeUser = field(
        default_factory=lambda: FakeUser(id=1_300_000_000_000_000_001, username="animegan", bot=True)
    )
    guild_id: int = 1_300_000_000_000_000_100
    channel_id: int = 1_300_000_000_000_000_200
    calls: list[ApiCall] = field(default_factory=list)
    commands: list[JsonDict] = field(default_factory=list)
    messages: dict[int, JsonDict] = field(default_factory=dict)
    identify: JsonDict | None = None
    download_delay: float = 0.0  # seconds the CDN takes to serve an attachment (a slow network)
    port: int = 0

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._sequence = itertools.count(1)
        self._interactions: dict[str, Interaction] = {}
        self._files: dict[str, bytes] = {}
        self._changed = asyncio.Condition()
        self._socket: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self.ready = asyncio.Event()

    @property
    def application_id(self) -> int:
        """A bot's application shares its user's id."""
        return self.bot_user.id

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on 127.0.0.1 at a free port."""
        app = web.Application(client_max_size=4 * ATTACHMENT_SIZE_LIMIT)
        api = f"/api/v{API_VERSION}"
        app.router.add_get(f"{api}/gateway", self._gateway_url)
        app.router.add_get(f"{api}/gateway/bot", self._gateway_url)
        app.router.add_get(f"{api}/users/@me", self._me)
        app.router.add_get(f"{api}/oauth2/applications/@me", self._application)
        app.router.add_put(f"{api}/applications/{{app_id}}/commands", self._put_commands)
        app.router.add_post(f"{api}/interactions/{{interaction_id}}/{{token}}/callback", self._callback)
        app.router.add_post(f"{api}/webhooks/{{app_id}}/{{token}}", self._followup)
        app.router.add_route("*", f"{api}/webhooks/{{app_id}}/{{token}}/messages/{{message_id}}", self._webhook_message)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._download)
        app.router.add_get("/gateway", self._gateway)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Close the gateway and stop serving."""
        if self._socket is not None and not self._socket.closed:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` should be."""
        return f"http://127.0.0.1:{self.port}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` should be."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ---- what people do ----------------------------------------------------------------------------------------

    def upload(self, data: bytes, filename: str, content_type: str | None, *, ephemeral: bool = False) -> JsonDict:
        """Store a file a person attached; returns its attachment object (``content_type`` None: Discord sent none)."""
        attachment_id = self._snowflake()
        url = f"http://127.0.0.1:{self.port}/attachments/{self.channel_id}/{attachment_id}/{filename}"
        self._files[str(attachment_id)] = data
        attachment: JsonDict = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "ephemeral": ephemeral,
        }
        if content_type is not None:
            attachment["content_type"] = content_type
        attachment.update(_image_size(data))
        return attachment

    def user_message(self, user: FakeUser, attachments: list[JsonDict], *, guild_id: int | None = None) -> JsonDict:
        """A message a person posted (the target of a message context menu)."""
        message = self._message(user, "look at this", guild_id=guild_id, attachments=attachments)
        self.messages[int(message["id"])] = message
        return message

    def slash_command(
        self,
        user: FakeUser,
        name: str,
        *,
        guild_id: int | None = None,
        locale: str = "en-US",
        user_install: bool = False,
        group_dm: bool = False,
        **options: Any,
    ) -> JsonDict:
        """A chat-input command as Discord sends it; options are typed from the registered command.

        ``locale`` is the person's app language; ``user_install``: the person installed the app to their account
        and uses it where the bot is not (a server without it when ``guild_id`` is given, else a group DM with
        ``group_dm`` or a DM with a friend).
        """
        command = self._registered(name, CHAT_INPUT)
        specs = {option["name"]: option for option in command.get("options", [])}
        values: list[JsonDict] = []
        resolved: JsonDict = {}
        for option_name, value in options.items():
            spec = specs[option_name]
            choices = [choice["value"] for choice in spec.get("choices", [])]
            if choices and value not in choices:
                raise ValueError(f"Discord only offers {choices} for {option_name}")
            if spec["type"] == ATTACHMENT:
                resolved.setdefault("attachments", {})[value["id"]] = value
                value = value["id"]
            values.append({"name": option_name, "type": spec["type"], "value": value})
        missing = [spec["name"] for spec in specs.values() if spec.get("required") and spec["name"] not in options]
        if missing:
            raise ValueError(f"Discord requires {missing}")
        data = {"id": command["id"], "name": name, "type": CHAT_INPUT, "options": values}
        if resolved:
            data["resolved"] = resolved
        return self._interaction(
            user,
            APPLICATION_COMMAND,
            data,
            guild_id=guild_id,
            locale=locale,
            user_install=user_install,
            group_dm=group_dm,
            command=command,
        )

    def message_command(
        self,
        user: FakeUser,
        name: str,
        target: JsonDict,
        *,
        guild_id: int | None = None,
        locale: str = "en-US",
        user_install: bool = False,
        group_dm: bool = False,
    ) -> JsonDict:
        """A message context-menu command on ``target`` (``locale``, ``user_install``, ``group_dm``: as for
        ``slash_command``)."""
        command = self._registered(name, MESSAGE_COMMAND)
        data = {
            "id": command["id"],
            "name": name,
            "type": MESSAGE_COMMAND,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}},
        }
        return self._interaction(
            user,
            APPLICATION_COMMAND,
            data,
            guild_id=guild_id,
            locale=locale,
            user_install=user_install,
            group_dm=group_dm,
            command=command,
        )

    def press_button(
        self, user: FakeUser, message: JsonDict, custom_id: str, *, guild_id: int | None = None
    ) -> JsonDict:
        """A button press on a message the bot sent; the button must exist and be enabled, as in the app."""
        buttons = [
            c for row in message.get("components", []) for c in row["components"] if c.get("custom_id") == custom_id
        ]
        if not buttons or buttons[0].get("disabled"):
            raise ValueError(f"no enabled button {custom_id!r} on message {message['id']}")
        data = {"custom_id": custom_id, "component_type": BUTTON}
        return self._interaction(user, MESSAGE_COMPONENT, data, guild_id=guild_id, message=message)

    async def send(self, interaction: JsonDict) -> str:
        """Dispatch ``INTERACTION_CREATE`` on the gateway; returns the interaction token."""
        if self._socket is None:
            raise RuntimeError("the bot is not connected to the gateway")
        data = interaction.get("data", {})
        message = interaction.get("message")
        self._interactions[interaction["token"]] = Interaction(
            id=int(interaction["id"]),
            token=interaction["token"],
            type=interaction["type"],
            user=self._user_of(interaction),
            name=data.get("name"),
            command_type=data.get("type"),
            channel_id=int(interaction["channel_id"]),
            guild_id=int(interaction["guild_id"]) if "guild_id" in interaction else None,
            message_id=int(message["id"]) if message else None,
            sent_at=time.monotonic(),
        )
        await self._dispatch("INTERACTION_CREATE", interaction)
        return interaction["token"]

    # ---- what tests look at ------------------------------------------------------------------------------------

    def original(self, token: str) -> JsonDict | None:
        """A snapshot of the interaction's original response (None before a response or after deletion)."""
        interaction = self._interactions[token]
        message = self.messages.get(interaction.original_id) if interaction.original_id is not None else None
        return copy.deepcopy(message)

    def followups(self, token: str) -> list[JsonDict]:
        """Snapshots of the messages created through the interaction's webhook, other than the original response."""
        interaction = self._interactions[token]
        return [
            copy.deepcopy(message)
            for message in self.messages.values()
            if message.get("_token") == token and int(message["id"]) != interaction.original_id
        ]

    def answers(self, token: str) -> list[ApiCall]:
        """Every request made for the interaction ``token`` (callback and webhook), in order."""
        return [call for call in self.calls if f"/{token}" in call.path]

    def refused(self) -> list[ApiCall]:
        """Requests the server refused."""
        return [call for call in self.calls if call.error is not None]

    def file(self, attachment: JsonDict) -> bytes:
        """The bytes behind an attachment object."""
        return self._files[attachment["id"]]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        """Wait until ``predicate()`` holds; it is checked after every request."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    # ---- gateway -----------------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_json({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": None, "t": None})
        async for frame in socket:
            if frame.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            if payload["op"] == HEARTBEAT:
                await socket.send_json({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            elif payload["op"] == IDENTIFY:
                if payload["d"].get("token") != self.token:
                    await socket.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
                    break
                self.identify = payload["d"]
                await self._dispatch("READY", self._ready_payload())
                self.ready.set()
        self._socket = None
        return socket

    def _ready_payload(self) -> JsonDict:
        return {
            "v": API_VERSION,
            "user": self.bot_user.to_json() | {"verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [],
            "private_channels": [],
            "relationships": [],
            "session_id": secrets.token_hex(16),
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
        }

    async def _dispatch(self, event: str, data: JsonDict) -> None:
        assert self._socket is not None
        await self._socket.send_json({"op": DISPATCH, "t": event, "s": next(self._sequence), "d": data})

    # ---- REST --------------------------------------------------------------------------------------------------

    async def _gateway_url(self, request: web.Request) -> web.Response:
        return await self._answer(
            request,
            lambda body, files: {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            },
            bot=True,
        )

    async def _me(self, request: web.Request) -> web.Response:
        return await self._answer(
            request, lambda body, files: self.bot_user.to_json() | {"verified": True, "flags": 0}, bot=True
        )

    async def _application(self, request: web.Request) -> web.Response:
        owner = FakeUser(id=1_300_000_000_000_000_009, username="owner")
        app = {
            "id": str(self.application_id),
            "name": "AnimeGAN",
            "icon": None,
            "description": "Photos to anime",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": owner.to_json(),
            "verify_key": secrets.token_hex(32),
            "flags": 0,
            "team": None,
        }
        return await self._answer(request, lambda body, files: app, bot=True)

    async def _put_commands(self, request: web.Request) -> web.Response:
        return await self._answer(request, self._register_commands, bot=True)

    def _register_commands(self, body: Any, files: tuple[Upload, ...]) -> list[JsonDict]:
        if not isinstance(body, list) or len(body) > COMMANDS_LIMIT:
            raise invalid("expected a list of at most 100 commands")
        for command in body:
            _check_command(command)
        # Discord answers with every field filled in, defaults included.
        defaults = {
            "type": CHAT_INPUT,
            "description": "",
            "default_member_permissions": None,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
        }
        self.commands = [
            defaults
            | command
            | {
                "id": str(self._snowflake()),
                "application_id": str(self.application_id),
                "version": str(self._snowflake()),
            }
            for command in body
        ]
        return self.commands

    async def _callback(self, request: web.Request) -> web.Response:
        return await self._answer(
            request,
            lambda body, files: self._respond(request, body, files),
            empty=request.query.get("with_response") not in ("1", "true"),
        )

    def _respond(self, request: web.Request, body: JsonDict, files: tuple[Upload, ...]) -> JsonDict:
        interaction = self._interactions.get(request.match_info["token"])
        if interaction is None or str(interaction.id) != request.match_info["interaction_id"]:
            raise DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        if interaction.responded:
            raise DiscordError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        if time.monotonic() - interaction.sent_at > RESPONSE_WINDOW:
            raise DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        kind, data = body["type"], body.get("data") or {}
        updates = kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE)
        if updates and interaction.type != MESSAGE_COMPONENT:
            raise invalid("only component interactions can update their message")
        if kind not in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE) and not updates:
            raise invalid(f"unsupported callback type {kind}")
        interaction.responded = True
        if updates:
            interaction.original_id = interaction.message_id
            if kind == UPDATE_MESSAGE:
                self._edit(self.messages[interaction.original_id], data, files)
        else:
            flags = data.get("flags", 0) & EPHEMERAL | (LOADING if kind == DEFERRED_CHANNEL_MESSAGE else 0)
            message = self._bot_message(interaction, {} if kind == DEFERRED_CHANNEL_MESSAGE else data, files, flags)
            interaction.original_id = int(message["id"])
        original = self.messages[interaction.original_id]
        resource: JsonDict = {"type": kind}
        if kind != DEFERRED_UPDATE_MESSAGE:
            resource["message"] = _public(original)
        return {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_id": original["id"],
                "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(original["flags"] & EPHEMERAL),
            },
            "resource": resource,
        }

    async def _followup(self, request: web.Request) -> web.Response:
        return await self._answer(request, lambda body, files: self._create_followup(request, body, files))

    def _create_followup(self, request: web.Request, body: JsonDict, files: tuple[Upload, ...]) -> JsonDict:
        interaction = self._webhook_interaction(request)
        original = self.messages.get(interaction.original_id) if interaction.original_id is not None else None
        if original is not None and original["flags"] & LOADING:
            # Discord: the first follow-up after a deferral replaces the "thinking" message and keeps its visibility.
            return _public(self._edit(original, body, files))
        return _public(self._bot_message(interaction, body, files, body.get("flags", 0) & EPHEMERAL))

    async def _webhook_message(self, request: web.Request) -> web.Response:
        return await self._answer(
            request,
            lambda body, files: self._on_webhook_message(request, body, files),
            empty=request.method == "DELETE",
        )

    def _on_webhook_message(self, request: web.Request, body: JsonDict, files: tuple[Upload, ...]) -> JsonDict:
        interaction = self._webhook_interaction(request)
        target = request.match_info["message_id"]
        if target == "@original":
            message = self.messages.get(interaction.original_id) if interaction.original_id is not None else None
        else:
            message = self.messages.get(int(target)) if target.isdigit() else None
            if message is not None and message.get("_token") != interaction.token:
                message = None
        if message is None:
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        if request.method == "GET":
            return _public(message)
        if request.method == "DELETE":
            del self.messages[int(message["id"])]
            return {}
        if request.method != "PATCH":
            raise DiscordError(405, 0, "405: Method Not Allowed")
        return _public(self._edit(message, body, files))

    async def _download(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.download_delay)
        data = self._files.get(request.match_info["attachment_id"])
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, content_type="application/octet-stream")

    # ---- plumbing ----------------------------------------------------------------------------------------------

    async def _answer(
        self,
        request: web.Request,
        handle: Callable[[Any, tuple[Upload, ...]], Any],
        *,
        bot: bool = False,
        empty: bool = False,
    ) -> web.Response:
        """Read the body, run ``handle``, record the call, and answer as Discord does (JSON or 204)."""
        body, files = await _read_body(request)
        error: DiscordError | None = None
        result: Any = None
        try:
            if bot and request.headers.get("Authorization") != f"Bot {self.token}":
                raise DiscordError(401, 0, "401: Unauthorized")
            result = handle(body, files)
        except DiscordError as refusal:
            error = refusal
        self.calls.append(ApiCall(request.method, request.path, body, files, time.monotonic(), error))
        async with self._changed:
            self._changed.notify_all()
        if error is not None:
            return _json({"message": error.message, "code": error.code}, status=error.status)
        return web.Response(status=204) if empty else _json(result)

    def _webhook_interaction(self, request: web.Request) -> Interaction:
        interaction = self._interactions.get(request.match_info["token"])
        if request.match_info["app_id"] != str(self.application_id) or interaction is None or not interaction.responded:
            raise DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
        return interaction

    def _registered(self, name: str, kind: int) -> JsonDict:
        for command in self.commands:
            if command["name"] == name and command.get("type", CHAT_INPUT) == kind:
                return command
        raise ValueError(f"the bot registered no command {name!r} of type {kind}")

    def _interaction(
        self,
        user: FakeUser,
        kind: int,
        data: JsonDict,
        *,
        guild_id: int | None,
        message: JsonDict | None = None,
        locale: str = "en-US",
        user_install: bool = False,
        group_dm: bool = False,
        command: JsonDict | None = None,
    ) -> JsonDict:
        if command is not None:
            # Discord offers a command only where its registration allows it.
            context = (
                GUILD_CONTEXT if guild_id is not None else PRIVATE_CHANNEL_CONTEXT if user_install else BOT_DM_CONTEXT
            )
            installs = command.get("integration_types") or [GUILD_INSTALL]
            if (USER_INSTALL if user_install else GUILD_INSTALL) not in installs:
                raise ValueError(f"{command['name']!r} is not installable that way (integration_types {installs})")
            if command.get("contexts") is not None and context not in command["contexts"]:
                raise ValueError(f"{command['name']!r} is not offered in context {context} ({command['contexts']})")
        payload: JsonDict = {
            "id": str(self._snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": f"aW50ZXJhY3Rpb246{secrets.token_urlsafe(48)}",
            "version": 1,
            "locale": locale,
            "app_permissions": ALL_PERMISSIONS,
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if user_install:
            # The bot is not there: no guild object or member list, only the ids, and the person's authorization.
            channel_id = self._snowflake()
            private = {
                "id": str(channel_id),
                "type": GROUP_DM,
                "flags": 0,
                "last_message_id": None,
                "recipients": [user.to_json()],
            }
            payload |= {
                "channel_id": str(channel_id),
                "channel": private if guild_id is None else _guild_channel(channel_id, guild_id),
                "context": GUILD_CONTEXT if guild_id is not None else PRIVATE_CHANNEL_CONTEXT,
                "authorizing_integration_owners": {"1": str(user.id)},
            }
            if guild_id is not None:
                payload |= {"guild_id": str(guild_id), "member": _member(user)}
            else:
                payload["user"] = user.to_json()
        elif guild_id is not None:
            payload |= {
                "guild_id": str(guild_id),
                "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "channel_id": str(self.channel_id),
                "channel": _guild_channel(self.channel_id, guild_id),
                "member": _member(user),
                "context": GUILD_CONTEXT,
                "authorizing_integration_owners": {"0": str(guild_id)},
            }
        else:
            dm_id = self._dm_channel_id(user)
            payload |= {
                "channel_id": str(dm_id),
                "channel": {
                    "id": str(dm_id),
                    "type": DM,
                    "flags": 0,
                    "last_message_id": None,
                    "recipients": [user.to_json()],
                },
                "user": user.to_json(),
                "context": BOT_DM_CONTEXT,
                "authorizing_integration_owners": {"0": "0"},
            }
        if message is not None:
            payload["message"] = _public(message)
        return payload

    def _message(
        self,
        author: FakeUser,
        content: str,
        *,
        guild_id: int | None,
        channel_id: int | None = None,
        attachments: list[JsonDict] | None = None,
        flags: int = 0,
        kind: int = DEFAULT_MESSAGE,
    ) -> JsonDict:
        message: JsonDict = {
            "id": str(self._snowflake()),
            "channel_id": str(channel_id or self.channel_id),
            "author": author.to_json(),
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": kind,
            "flags": flags,
        }
        if guild_id is not None:
            message["guild_id"] = str(guild_id)
        return message

    def _bot_message(self, interaction: Interaction, body: JsonDict, files: tuple[Upload, ...], flags: int) -> JsonDict:
        kind = CHAT_INPUT_MESSAGE if interaction.command_type == CHAT_INPUT else CONTEXT_MENU_MESSAGE
        message = self._message(
            self.bot_user, "", guild_id=interaction.guild_id, channel_id=interaction.channel_id, flags=flags, kind=kind
        )
        message |= {
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": interaction.user.to_json(),
                "authorizing_integration_owners": {"0": str(interaction.guild_id or 0)},
                "name": interaction.name,
                "command_type": interaction.command_type,
            },
            "_token": interaction.token,
        }
        self.messages[int(message["id"])] = message
        return self._edit(message, body, files, edited=False)

    def _edit(self, message: JsonDict, body: JsonDict, files: tuple[Upload, ...], *, edited: bool = True) -> JsonDict:
        """Apply an edit as Discord does: only the fields sent change; a new ``attachments`` list replaces the old."""
        content = body.get("content", message["content"])
        if content is not None and len(content) > CONTENT_LIMIT:
            raise invalid(f"content must be {CONTENT_LIMIT} or fewer characters")
        components = body.get("components", message["components"])
        _check_components(components or [])
        attachments = message["attachments"]
        if "attachments" in body or files:
            attachments = self._attachments(message, body.get("attachments", []), files)
        message |= {"content": content or "", "components": components or [], "attachments": attachments}
        if edited and not message["flags"] & LOADING:
            message["edited_timestamp"] = _now()
        message["flags"] &= ~LOADING
        return message

    def _attachments(self, message: JsonDict, wanted: list[JsonDict], files: tuple[Upload, ...]) -> list[JsonDict]:
        kept = {attachment["id"]: attachment for attachment in message["attachments"]}
        result = []
        for index, upload in enumerate(files):
            if len(upload.data) > ATTACHMENT_SIZE_LIMIT:
                raise DiscordError(413, TOO_LARGE, "Request entity too large")
            # Discord names the kind from the file name, not from the part's header (discord.py sends octet-stream).
            content_type = mimetypes.guess_type(upload.filename)[0]
            result.append(self.upload(upload.data, upload.filename, content_type) | {"_index": index})
        by_index = {attachment.pop("_index"): attachment for attachment in result}
        listed = []
        for item in wanted:
            if str(item["id"]) in kept:
                listed.append(kept[str(item["id"])])
            elif isinstance(item["id"], int) and item["id"] in by_index:
                listed.append(by_index.pop(item["id"]))
            else:
                raise invalid(f"unknown attachment {item['id']!r}")
        return listed + list(by_index.values())

    def _dm_channel_id(self, user: FakeUser) -> int:
        return user.id + 1

    def _user_of(self, interaction: JsonDict) -> FakeUser:
        user = interaction["member"]["user"] if "member" in interaction else interaction["user"]
        return FakeUser(int(user["id"]), user["username"], user.get("bot", False))

    def _snowflake(self) -> int:
        milliseconds = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (milliseconds << SNOWFLAKE_TIME_SHIFT) | next(self._ids)


def _check_command(command: JsonDict) -> None:
    """Discord's rules for a registered command body."""
    kind = command.get("type", CHAT_INPUT)
    name = command.get("name", "")
    if not 1 <= len(name) <= NAME_LIMIT:
        raise invalid(f"command name {name!r} must be 1-32 characters")
    _check_localizations(command, kind == CHAT_INPUT)
    for option in command.get("options", []):
        _check_localizations(option, True)
    if kind != CHAT_INPUT:
        if command.get("description"):
            raise invalid("context menu commands have no description")
        return
    if not CHAT_INPUT_NAME.match(name) or name != name.lower():
        raise invalid(f"slash command name {name!r} must be lower case letters, digits, - or _")
    if not 1 <= len(command.get("description", "")) <= DESCRIPTION_LIMIT:
        raise invalid(f"command {name!r} needs a description of 1-100 characters")
    options = command.get("options", [])
    if len(options) > OPTIONS_LIMIT:
        raise invalid("at most 25 options")
    seen_optional = False
    for option in options:
        if not CHAT_INPUT_NAME.match(option["name"]) or option["name"] != option["name"].lower():
            raise invalid(f"option name {option['name']!r} is invalid")
        if not 1 <= len(option.get("description", "")) <= DESCRIPTION_LIMIT:
            raise invalid(f"option {option['name']!r} needs a description of 1-100 characters")
        if option.get("required"):
            if seen_optional:
                raise invalid("required options must come before optional ones")
        else:
            seen_optional = True
        if len(option.get("choices", [])) > CHOICES_LIMIT:
            raise invalid("at most 25 choices")
        if option.get("choices") and option["type"] not in (STRING, INTEGER, NUMBER):
            raise invalid("choices only fit string, integer and number options")


def _check_localizations(item: JsonDict, lower_case_name: bool) -> None:
    """Localized names follow the same rules as the name, in Discord's own locale codes."""
    for locale, localized in (item.get("name_localizations") or {}).items():
        if locale not in DISCORD_LOCALES:
            raise invalid(f"unknown locale {locale!r}")
        if not 1 <= len(localized) <= NAME_LIMIT:
            raise invalid(f"localized name {localized!r} must be 1-32 characters")
        if lower_case_name and (not CHAT_INPUT_NAME.match(localized) or localized != localized.lower()):
            raise invalid(f"localized name {localized!r} must be lower case letters, digits, - or _")
    for locale, localized in (item.get("description_localizations") or {}).items():
        if locale not in DISCORD_LOCALES or not 1 <= len(localized) <= DESCRIPTION_LIMIT:
            raise invalid(f"bad description localization {locale!r}: {localized!r}")


def _check_components(rows: list[JsonDict]) -> None:
    """Discord's rules for legacy action rows of buttons."""
    if len(rows) > ACTION_ROWS_LIMIT:
        raise invalid("at most 5 action rows")
    custom_ids: set[str] = set()
    for row in rows:
        if row.get("type") != ACTION_ROW or not 1 <= len(row.get("components", [])) <= BUTTONS_PER_ROW:
            raise invalid("an action row holds 1-5 buttons")
        for button in row["components"]:
            if button.get("type") != BUTTON:
                raise invalid("only buttons are supported by this fake")
            if len(button.get("label") or "") > LABEL_LIMIT:
                raise invalid("button labels are at most 80 characters")
            if button.get("style") == LINK_BUTTON_STYLE:
                continue
            custom_id = button.get("custom_id") or ""
            if not 1 <= len(custom_id) <= CUSTOM_ID_LIMIT or custom_id in custom_ids:
                raise invalid(f"custom_id {custom_id!r} must be 1-100 characters and unique in the message")
            custom_ids.add(custom_id)


async def _read_body(request: web.Request) -> tuple[Any, tuple[Upload, ...]]:
    """A JSON body, or a multipart body's ``payload_json`` and file parts (as discord.py sends them)."""
    if request.content_type == "multipart/form-data":
        form = await request.post()
        files = tuple(
            Upload(part.filename, part.content_type, part.file.read())
            for name, part in form.items()
            if name.startswith("files[") and isinstance(part, web.FileField)
        )
        raw = form.get("payload_json")
        return (json.loads(raw) if isinstance(raw, str) else {}), files
    text = await request.text()
    return (json.loads(text) if text else None), ()


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses JSON only when the content type is exactly "application/json", as Discord sends it.
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _public(message: JsonDict) -> JsonDict:
    """A message without the server's private bookkeeping keys."""
    return {key: value for key, value in message.items() if not key.startswith("_")}


def _image_size(data: bytes) -> JsonDict:
    """Discord adds width and height to attachments it can read as images."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return {"width": image.width, "height": image.height}
    except (UnidentifiedImageError, OSError):
        return {}


def _guild_channel(channel_id: int, guild_id: int) -> JsonDict:
    return {
        "id": str(channel_id),
        "type": GUILD_TEXT,
        "guild_id": str(guild_id),
        "name": "general",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "rate_limit_per_user": 0,
        "last_message_id": None,
        "flags": 0,
        "permissions": ALL_PERMISSIONS,
    }


def _member(user: FakeUser) -> JsonDict:
    return {
        "user": user.to_json(),
        "roles": [],
        "joined_at": "2024-01-01T00:00:00.000000+00:00",
        "premium_since": None,
        "nick": None,
        "avatar": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
        "permissions": ALL_PERMISSIONS,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat()
