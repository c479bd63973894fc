"""A fake Telegram Bot API server on 127.0.0.1 for tests and the load bench: no internet, real HTTP, real JSON.

It serves the methods the bot uses the way the real server does: form-encoded or multipart bodies (values JSON
encoded, files as parts or ``attach://`` references), ``{"ok": ..., "result"|"description"}`` answers, long-polled
``getUpdates`` with offsets, webhook delivery once ``setWebhook`` is called, file downloads under
``/file/bot<token>/<path>``, and the server's own refusals (unchanged edits, callback answered twice, button data
over 64 bytes, photos it can't decode). Every call is recorded as an ``ApiCall`` for assertions.

The test drives people: ``send_photo``, ``send_document``, ``send_text``, ``press_button`` ... queue updates as if
a person did it in the app. Pillow is allowed here (tests), to read sizes and make the smaller photo sizes the real
server derives from every photo.

Over 400 lines on purpose: one fake of one platform's protocol (Bot API methods, updates, webhook, files),
whose parts share one state.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import ClientSession, ClientTimeout, web
from PIL import Image

JsonDict = dict[str, Any]

# Limits of the real Bot API, https://core.telegram.org/bots/api
CALLBACK_DATA_LIMIT = 64
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
CALLBACK_ANSWER_LIMIT = 200
DOWNLOAD_LIMIT = 20 * 1024 * 1024
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024
CLIP_UPLOAD_LIMIT = 50 * 1024 * 1024  # what a bot may upload (sendVideo, sendAnimation, sendVideoNote)
GET_UPDATES_LIMIT = 100
# Telegram keeps every photo at a few long sides; the largest is the re-encoded original (capped).
PHOTO_SIDES = (90, 320, 800, 1280, 2560)
PHOTO_JPEG_QUALITY = 87
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
MENTION = re.compile(r"@[A-Za-z0-9_]{3,32}")
COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?")


class ApiError(Exception):
    """A refusal the real server would send: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request as the server saw it: parameters JSON-decoded, files by part name."""

    method: str
    params: JsonDict
    files: dict[str, Upload]
    at: float
    error: str | None = None

    @property
    def chat_id(self) -> int | None:
        """The target chat, when the method has one."""
        value = self.params.get("chat_id")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class FakeUser:
    """A person (or the bot) as Telegram's ``User`` object."""

    id: int
    first_name: str
    username: str | None = None
    is_bot: bool = False
    language_code: str | None = None  # the language of the person's Telegram app (IETF tag)

    def to_json(self) -> JsonDict:
        data: JsonDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass(frozen=True)
class FakeChat:
    """A chat as Telegram's ``Chat`` object: private chats share the person's id, groups are negative."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None

    def to_json(self) -> JsonDict:
        data: JsonDict = {"id": self.id, "type": self.type}
        if self.title:
            data["title"] = self.title
        if self.first_name:
            data["first_name"] = self.first_name
        return data


@dataclass
class StoredFile:
    """A file the server holds: what ``getFile`` describes and ``/file/bot<token>/<path>`` serves."""

    file_id: str
    file_unique_id: str
    path: str
    data: bytes


@dataclass
class FakeTelegram:
    """The fake server. Use as ``async with FakeTelegram() as telegram:``; give the bot ``base_url`` and
    ``base_file_url``."""

    token: str = field(default_factory=lambda: f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(26)}")
    bot_user: FakeUser = field(
        default_factory=lambda: FakeUser(id=7_000_001, first_name="AnimeGAN", username="animegan_test_bot", is_bot=True)
    )
    calls: list[ApiCall] = field(default_factory=list)
    messages: dict[tuple[int, int], JsonDict] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    webhook: JsonDict | None = None
    port: int = 0
    sticker_sets: dict[str, JsonDict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._updates: list[JsonDict] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._file_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._open_queries: set[str] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._delivery: asyncio.Task[None] | None = None
        self._closing = False
        self._flood_waits: dict[str, list[int]] = {}
        self._media_groups = itertools.count(13_000_000_000_000_001)
        self._methods: dict[str, Callable[[JsonDict, dict[str, Upload]], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": lambda params, files: True,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendVideo": self._send_video,
            "sendAnimation": self._send_animation,
            "sendVideoNote": self._send_video_note,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "editMessageMedia": self._edit_message_media,
            "editMessageCaption": self._edit_message_caption,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
            "sendMediaGroup": self._send_media_group,
            "sendSticker": self._send_sticker,
            "createNewStickerSet": self._create_new_sticker_set,
            "addStickerToSet": self._add_sticker_to_set,
            "getStickerSet": self._get_sticker_set,
        }

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on 127.0.0.1 at ``port`` (0, the default: a free one)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._delivery = asyncio.create_task(self._deliver_webhooks())

    async def stop(self) -> None:
        """Stop serving; pending long polls are answered (empty) at once rather than at their timeout."""
        self._closing = True
        await self._notify()
        if self._delivery is not None:
            self._delivery.cancel()
            await asyncio.gather(self._delivery, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """What the bot takes as ``base_url`` (the token is appended by the client)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """What the bot takes as ``base_file_url``."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ---- people acting in the app ------------------------------------------------------------------------------

    def private_chat(self, user: FakeUser) -> FakeChat:
        """The private chat between ``user`` and the bot."""
        return FakeChat(id=user.id, type="private", first_name=user.first_name)

    def send_text(self, user: FakeUser, chat: FakeChat, text: str, reply_to: JsonDict | None = None) -> JsonDict:
        """``user`` sends ``text``; a leading ``/command`` and ``@mentions`` get their entities like in the app."""
        message = self._new_message(user, chat, reply_to)
        message["text"] = text
        entities = _entities(text)
        if entities:
            message["entities"] = entities
        return self._queue_message(message)

    def send_photo(
        self, user: FakeUser, chat: FakeChat, image: bytes, caption: str | None = None, reply_to: JsonDict | None = None
    ) -> JsonDict:
        """``user`` sends ``image`` as a photo: the server re-encodes it as JPEG sizes, largest last."""
        message = self._new_message(user, chat, reply_to)
        message["photo"] = self._store_photo(image)
        self._add_caption(message, caption)
        return self._queue_message(message)

    def send_document(
        self,
        user: FakeUser,
        chat: FakeChat,
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        file_size: int | None = None,
    ) -> JsonDict:
        """``user`` sends a file as is; ``file_size`` overrides the reported size (to test limits cheaply)."""
        message = self._new_message(user, chat, None)
        stored = self._store(data, f"documents/{file_name}")
        message["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": file_size if file_size is not None else len(data),
        }
        self._add_caption(message, caption)
        return self._queue_message(message)

    def send_sticker(self, user: FakeUser, chat: FakeChat) -> JsonDict:
        """``user`` sends a (static WebP) sticker."""
        message = self._new_message(user, chat, None)
        stored = self._store(b"RIFF\x00\x00\x00\x00WEBP", "stickers/file.webp")
        message["sticker"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "😀",
        }
        return self._queue_message(message)

    def send_video(
        self,
        user: FakeUser,
        chat: FakeChat,
        data: bytes = b"\x00\x00\x00\x18ftypmp42",
        kind: str = "video",
        size: tuple[int, int] = (640, 360),
        file_size: int | None = None,
    ) -> JsonDict:
        """``user`` sends a clip as a ``video``, an ``animation`` (a GIF, which Telegram turns into MP4) or a round
        ``video_note``; ``file_size`` overrides the reported size (to test limits cheaply)."""
        message = self._new_message(user, chat, None)
        stored = self._store(data, f"{kind}s/file.mp4")
        media: JsonDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": 3,
            "file_size": file_size if file_size is not None else len(data),
        }
        if kind == "video_note":
            media["length"] = size[0]
        else:
            media.update(width=size[0], height=size[1], mime_type="video/mp4")
        message[kind] = media
        if kind == "animation":  # as the real server does: an animation message also carries a document
            message["document"] = {**media, "file_name": "animation.gif.mp4"}
        return self._queue_message(message)

    def send_album(
        self, user: FakeUser, chat: FakeChat, items: list[tuple[str, bytes]], caption: str | None = None
    ) -> list[JsonDict]:
        """``user`` sends 2-10 items together as an album: separate messages (updates) sharing a
        ``media_group_id``, as the app does. Items are ``("photo", image)``, ``("video", data)`` or
        ``("document:<name>:<mime>", data)``; ``caption`` goes on the first item, as the app puts it."""
        if not 2 <= len(items) <= 10:
            raise ValueError("an album has 2-10 items")
        group = str(next(self._media_groups))
        sent = []
        for kind, data in items:
            message = self._new_message(user, chat, None)
            message["media_group_id"] = group
            if kind == "photo":
                message["photo"] = self._store_photo(data)
            elif kind == "video":
                stored = self._store(data, "videos/file.mp4")
                message["video"] = {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": 640,
                    "height": 360,
                    "duration": 3,
                    "mime_type": "video/mp4",
                    "file_size": len(data),
                }
            else:
                _, name, mime = kind.split(":", 2)
                stored = self._store(data, f"documents/{name}")
                message["document"] = {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_name": name,
                    "mime_type": mime,
                    "file_size": len(data),
                }
            if not sent:
                self._add_caption(message, caption)
            sent.append(self._queue_message(message))
        return sent

    def press_button(self, user: FakeUser, message: JsonDict, data: str) -> str:
        """``user`` presses the inline button carrying ``data`` under the bot's ``message`` (as it is now, after any
        edits); returns the query id."""
        message = self.messages[(message["chat"]["id"], message["message_id"])]
        buttons = [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
        if data not in {b.get("callback_data") for b in buttons}:
            raise ValueError(f"no button with data {data!r} under message {message['message_id']}")
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        self._queue_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.to_json(),
                    "message": message,
                    "chat_instance": str(message["chat"]["id"]),
                    "data": data,
                }
            }
        )
        return query_id

    def flood_wait(self, method: str, count: int = 1, retry_after: int = 1) -> None:
        """Refuse the next ``count`` calls of ``method`` with 429 "retry after", as Telegram's flood control does."""
        self._flood_waits.setdefault(method.lower(), []).extend([retry_after] * count)

    # ---- what tests look at ------------------------------------------------------------------------------------

    def calls_to(self, method: str, chat_id: int | None = None) -> list[ApiCall]:
        """Recorded calls of ``method`` (to ``chat_id`` when given), oldest first."""
        return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def refused(self) -> list[ApiCall]:
        """Calls the server answered with an error (a well-behaved bot makes none)."""
        return [c for c in self.calls if c.error is not None]

    def message(self, chat_id: int, message_id: int) -> JsonDict:
        """The current state of a message (after edits)."""
        return self.messages[(chat_id, message_id)]

    def bot_messages(self, chat_id: int) -> list[JsonDict]:
        """Messages the bot has in ``chat_id`` now (deleted ones gone), oldest first."""
        return [
            m
            for (chat, _), m in sorted(self.messages.items())
            if chat == chat_id and m.get("from", {}).get("id") == self.bot_user.id
        ]

    def replies_to(self, message: JsonDict) -> list[JsonDict]:
        """The bot's current messages that reply to ``message``, oldest first."""
        chat_id = message["chat"]["id"]
        return [
            m
            for m in self.bot_messages(chat_id)
            if m.get("reply_to_message", {}).get("message_id") == message["message_id"]
        ]

    def file_data(self, file_id: str) -> bytes:
        """The bytes behind a ``file_id``."""
        return self.files[file_id].data

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until ``predicate()`` holds (checked after every call); ``TimeoutError`` otherwise."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    # ---- the HTTP side -----------------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        method_name = request.match_info["method"]
        method = next((m for name, m in self._methods.items() if name.lower() == method_name.lower()), None)
        if method is None:
            return _error(ApiError(404, "Not Found"))
        params, files = await _read_params(request)
        at = time.monotonic()
        try:
            self._check_flood(method_name)
            result = method(params, files)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as error:
            await self._record(ApiCall(method_name, params, files, at, error.description))
            return _error(error)
        await self._record(ApiCall(method_name, params, files, at))
        return web.json_response({"ok": True, "result": result})

    async def _record(self, call: ApiCall) -> None:
        # Long polls are the client idling, not the bot acting: they would drown the record.
        if call.method != "getUpdates":
            self.calls.append(call)
            await self._notify()

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        path = request.match_info["path"]
        stored = next((f for f in self.files.values() if f.path == path), None)
        if stored is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _check_flood(self, method: str) -> None:
        waits = self._flood_waits.get(method.lower())
        if waits:
            retry_after = waits.pop(0)
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ---- methods -----------------------------------------------------------------------------------------------

    def _get_me(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        return self.bot_user.to_json() | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, params: JsonDict, files: dict[str, Upload]) -> list[JsonDict]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
                "to delete the webhook first",
            )
        offset = int(params.get("offset", 0))
        limit = min(int(params.get("limit", GET_UPDATES_LIMIT)), GET_UPDATES_LIMIT)
        timeout = float(params.get("timeout", 0))
        if offset:
            # Asking from an offset confirms every update before it: the server forgets them.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: bool(self._updates) or self._closing), timeout)
            except TimeoutError:
                return []
        return self._updates[:limit]

    def _set_webhook(self, params: JsonDict, files: dict[str, Upload]) -> bool:
        url = params.get("url", "")
        if not url:
            return self._delete_webhook(params, files)
        self.webhook = {"url": url, "secret_token": params.get("secret_token")}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _delete_webhook(self, params: JsonDict, files: dict[str, Upload]) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _send_message(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        text = str(params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        message = self._bot_message(params)
        message["text"] = text
        return self._keep(message)

    def _send_photo(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        message = self._bot_message(params)
        message["photo"] = self._store_photo(self._input_file(params.get("photo"), files))
        self._add_bot_caption(message, params)
        return self._keep(message)

    def _send_document(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        message = self._bot_message(params)
        message["document"] = self._document(params.get("document"), files)
        self._add_bot_caption(message, params)
        return self._keep(message)

    def _send_video(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        return self._send_clip("video", params, files)

    def _send_animation(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        return self._send_clip("animation", params, files)

    def _send_video_note(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        if params.get("caption"):
            raise ApiError(400, "Bad Request: video notes can't have a caption")
        return self._send_clip("video_note", params, files)

    def _send_clip(self, kind: str, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        data = self._input_file(params.get(kind), files)
        if len(data) > CLIP_UPLOAD_LIMIT:
            raise ApiError(413, "Request Entity Too Large")
        message = self._bot_message(params)
        message[kind] = self._clip(kind, data, params)
        self._add_bot_caption(message, params)
        return self._keep(message)

    def _clip(self, kind: str, data: bytes, params: JsonDict) -> JsonDict:
        """A stored clip as the server describes it (its size as the sender stated it)."""
        stored = self._store(data, f"{kind}s/file.mp4")
        clip: JsonDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(data),
            "duration": int(params.get("duration") or 1),
        }
        if kind == "video_note":
            clip["length"] = int(params.get("length") or 240)
        else:
            clip.update(width=int(params.get("width") or 0), height=int(params.get("height") or 0))
        return clip

    def _send_media_group(self, params: JsonDict, files: dict[str, Upload]) -> list[JsonDict]:
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media in the album (2-10)")
        kinds = {item.get("type") for item in media if isinstance(item, dict)}
        if not kinds <= {"photo", "video"} and not kinds <= {"document"} and not kinds <= {"audio"}:
            raise ApiError(400, "Bad Request: documents and audio can't be mixed with other media types")
        group = str(next(self._media_groups))
        sent = []
        for item in media:
            message = self._bot_message({k: v for k, v in params.items() if k != "reply_markup"})
            message["media_group_id"] = group
            if item["type"] == "photo":
                message["photo"] = self._store_photo(self._input_file(item.get("media"), files))
            else:
                message["document"] = self._document(item.get("media"), files)
            self._add_bot_caption(message, item)
            sent.append(self._keep(message))
        return sent

    def _send_sticker(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        data = self._input_file(params.get("sticker"), files)
        message = self._bot_message(params)
        message["sticker"] = self._sticker(data, str(params.get("emoji") or "🎨"))
        return self._keep(message)

    def _sticker(self, data: bytes, emoji: str) -> JsonDict:
        """Check a static sticker as Telegram does (WEBP or PNG, 512 px on its long side) and store it."""
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind, size = image.format, image.size
        except (OSError, ValueError):
            raise ApiError(400, "Bad Request: STICKER_PNG_NOPNG") from None
        if kind not in ("WEBP", "PNG") or max(size) != 512 or min(size) < 1:
            raise ApiError(400, "Bad Request: STICKER_PNG_DIMENSIONS")
        stored = self._store(data, "stickers/file.webp")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": size[0],
            "height": size[1],
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }

    def _create_new_sticker_set(self, params: JsonDict, files: dict[str, Upload]) -> bool:
        name = str(params.get("name", ""))
        suffix = f"_by_{self.bot_user.username}"
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name) or not name.lower().endswith(suffix.lower()):
            raise ApiError(400, "Bad Request: invalid sticker set name is specified")
        if "__" in name:
            raise ApiError(400, "Bad Request: invalid sticker set name is specified")
        if name.lower() in {n.lower() for n in self.sticker_sets}:
            raise ApiError(400, "Bad Request: sticker set name is already occupied")
        stickers = params.get("stickers")
        if not isinstance(stickers, list) or not 1 <= len(stickers) <= 50:
            raise ApiError(400, "Bad Request: wrong number of stickers")
        self.sticker_sets[name] = {
            "name": name,
            "title": str(params.get("title", "")),
            "owner": int(params.get("user_id", 0)),
            "sticker_type": "regular",
            "stickers": [self._input_sticker(sticker, files) for sticker in stickers],
        }
        return True

    def _add_sticker_to_set(self, params: JsonDict, files: dict[str, Upload]) -> bool:
        pack = self.sticker_sets.get(str(params.get("name", "")))
        if pack is None:
            raise ApiError(400, "Bad Request: STICKERSET_INVALID")
        if pack["owner"] != int(params.get("user_id", 0)):
            raise ApiError(400, "Bad Request: STICKERSET_NOT_MODIFIED")
        if len(pack["stickers"]) >= 120:
            raise ApiError(400, "Bad Request: STICKERS_TOO_MUCH")
        pack["stickers"].append(self._input_sticker(params.get("sticker"), files))
        return True

    def _get_sticker_set(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        pack = self.sticker_sets.get(str(params.get("name", "")))
        if pack is None:
            raise ApiError(400, "Bad Request: STICKERSET_INVALID")
        return {k: v for k, v in pack.items() if k != "owner"}

    def _input_sticker(self, sticker: Any, files: dict[str, Upload]) -> JsonDict:
        if not isinstance(sticker, dict) or sticker.get("format") != "static" or not sticker.get("emoji_list"):
            raise ApiError(400, "Bad Request: can't parse InputSticker")
        return self._sticker(self._input_file(sticker.get("sticker"), files), sticker["emoji_list"][0])

    def _send_chat_action(self, params: JsonDict, files: dict[str, Upload]) -> bool:
        self._chat_id(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    def _edit_message_text(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        message = self._editable(params)
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = str(params.get("text", ""))
        markup = _markup(params)
        if text == message["text"] and markup == message.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        message["text"] = text
        message["edit_date"] = int(time.time())
        _set_markup(message, markup)
        return message

    def _edit_message_media(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        message = self._editable(params)
        if not {"photo", "document", "video", "animation", "audio"} & message.keys():
            raise ApiError(400, "Bad Request: there is no media in the message to edit")
        media = params.get("media")
        if not isinstance(media, dict) or media.get("type") not in {"photo", "document", "video", "animation"}:
            raise ApiError(400, "Bad Request: can't parse InputMedia: media type is invalid")
        for kind in ("photo", "document", "video", "animation", "caption", "caption_entities"):
            message.pop(kind, None)
        if media["type"] == "photo":
            message["photo"] = self._store_photo(self._input_file(media.get("media"), files))
        elif media["type"] in ("video", "animation"):
            message[media["type"]] = self._clip(media["type"], self._input_file(media.get("media"), files), media)
        else:
            message["document"] = self._document(media.get("media"), files)
        self._add_bot_caption(message, media)
        message["edit_date"] = int(time.time())
        _set_markup(message, _markup(params))
        return message

    def _edit_message_caption(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        message = self._editable(params)
        if not {"photo", "document", "video", "animation", "audio"} & message.keys():
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        markup = _markup(params)
        if params.get("caption") == message.get("caption") and markup == message.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        message.pop("caption", None)
        message.pop("caption_entities", None)
        self._add_bot_caption(message, params)
        message["edit_date"] = int(time.time())
        _set_markup(message, markup)  # as on Telegram: an edit without reply_markup removes the keyboard
        return message

    def _delete_message(self, params: JsonDict, files: dict[str, Upload]) -> bool:
        key = (self._chat_id(params), int(params.get("message_id", 0)))
        if self.messages.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def _answer_callback_query(self, params: JsonDict, files: dict[str, Upload]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._open_queries:
            raise ApiError(400, QUERY_TOO_OLD)
        if len(str(params.get("text", ""))) > CALLBACK_ANSWER_LIMIT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._open_queries.discard(query_id)
        return True

    def _get_file(self, params: JsonDict, files: dict[str, Upload]) -> JsonDict:
        stored = self.files.get(str(params.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.path,
        }

    # ---- helpers -----------------------------------------------------------------------------------------------

    def _chat_id(self, params: JsonDict) -> int:
        try:
            return int(params["chat_id"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _new_message(self, user: FakeUser, chat: FakeChat, reply_to: JsonDict | None) -> JsonDict:
        message: JsonDict = {
            "message_id": self._next_message_id(chat.id),
            "from": user.to_json(),
            "chat": chat.to_json(),
            "date": int(time.time()),
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return message

    def _bot_message(self, params: JsonDict) -> JsonDict:
        chat_id = self._chat_id(params)
        chat = next((m["chat"] for (c, _), m in self.messages.items() if c == chat_id), None)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        message: JsonDict = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user.to_json(),
            "chat": chat,
            "date": int(time.time()),
        }
        reply = (params.get("reply_parameters") or {}).get("message_id") or params.get("reply_to_message_id")
        if reply is not None:
            original = self.messages.get((chat_id, int(reply)))
            if original is None:
                raise ApiError(400, "Bad Request: message to be replied not found")
            message["reply_to_message"] = {k: v for k, v in original.items() if k != "reply_to_message"}
        _set_markup(message, _markup(params))
        return message

    def _keep(self, message: JsonDict) -> JsonDict:
        self.messages[(message["chat"]["id"], message["message_id"])] = message
        return message

    def _queue_message(self, message: JsonDict) -> JsonDict:
        self._keep(message)
        self._queue_update({"message": message})
        return message

    def _queue_update(self, update: JsonDict) -> None:
        self._updates.append({"update_id": next(self._update_ids), **update})
        asyncio.get_running_loop().create_task(self._notify())

    def _editable(self, params: JsonDict) -> JsonDict:
        key = (self._chat_id(params), int(params.get("message_id", 0)))
        message = self.messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message.get("from", {}).get("id") != self.bot_user.id:
            raise ApiError(400, "Bad Request: message can't be edited")
        return message

    def _add_caption(self, message: JsonDict, caption: str | None) -> None:
        if caption:
            message["caption"] = caption
            entities = _entities(caption)
            if entities:
                message["caption_entities"] = entities

    def _add_bot_caption(self, message: JsonDict, params: JsonDict) -> None:
        caption = params.get("caption")
        if caption is not None and len(str(caption)) > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        self._add_caption(message, str(caption) if caption is not None else None)

    def _input_file(self, value: Any, files: dict[str, Upload]) -> bytes:
        """The bytes of an InputFile parameter: a multipart part, an ``attach://`` reference or a file_id."""
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise ApiError(400, "Bad Request: can't parse InputMedia: media not found")
            return upload.data
        if isinstance(value, str) and value in self.files:
            return self.files[value].data
        if isinstance(value, Upload):
            return value.data
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _document(self, value: Any, files: dict[str, Upload]) -> JsonDict:
        upload = value if isinstance(value, Upload) else None
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
        data = self._input_file(value if upload is None else upload, files)
        name = (upload.filename if upload else None) or "file"
        stored = self._store(data, f"documents/{name}")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": name,
            "mime_type": upload.content_type if upload else "application/octet-stream",
            "file_size": len(data),
        }

    def _store(self, data: bytes, path: str) -> StoredFile:
        number = next(self._file_ids)
        stem, dot, suffix = path.rpartition(".")
        unique_path = f"{stem}_{number}.{suffix}" if dot else f"{path}_{number}"
        stored = StoredFile(f"FILE{number:06d}{secrets.token_hex(8)}", f"U{number:06d}", unique_path, data)
        self.files[stored.file_id] = stored
        return stored

    def _store_photo(self, image: bytes) -> list[JsonDict]:
        """Decode ``image`` like the server does and keep one JPEG per standard size up to the original's."""
        if len(image) > PHOTO_UPLOAD_LIMIT:
            raise ApiError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
        try:
            with Image.open(io.BytesIO(image)) as opened:
                original = opened.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from None
        sizes = []
        for side in PHOTO_SIDES:
            scaled = original.copy()
            scaled.thumbnail((side, side))
            buffer = io.BytesIO()
            scaled.save(buffer, "JPEG", quality=PHOTO_JPEG_QUALITY)
            stored = self._store(buffer.getvalue(), "photos/file.jpg")
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": len(stored.data),
                    "width": scaled.width,
                    "height": scaled.height,
                }
            )
            if scaled.size == original.size:
                break
        return sizes

    async def _deliver_webhooks(self) -> None:
        """While a webhook is set, POST each queued update to it, one at a time, until it answers 2xx."""
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while True:
                async with self._changed:
                    await self._changed.wait_for(lambda: self.webhook is not None and bool(self._updates))
                webhook = self.webhook
                assert webhook is not None
                headers = {}
                if webhook["secret_token"]:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = webhook["secret_token"]
                update = self._updates[0]
                try:
                    async with session.post(webhook["url"], json=update, headers=headers) as response:
                        delivered = response.status < 300
                except OSError:
                    delivered = False
                if delivered and self._updates and self._updates[0] is update:
                    self._updates.pop(0)
                elif not delivered:
                    await asyncio.sleep(0.1)


async def _read_params(request: web.Request) -> tuple[JsonDict, dict[str, Upload]]:
    """Parameters from the query string and a form, multipart or JSON body, JSON-decoded where they parse."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.content_type == "application/json":
        raw.update(await request.json())
    elif request.content_type == "multipart/form-data":
        reader = await request.multipart()
        async for part in reader:
            if part.name is None:
                continue
            if part.filename is not None:
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                files[part.name] = Upload(part.filename, content_type, bytes(await part.read()))
            else:
                raw[part.name] = await part.text()
    elif request.body_exists:
        raw.update(await request.post())
    params = {name: _decode(value) for name, value in raw.items()}
    # A file sent directly as the parameter (sendPhoto photo=<part>) stands in for the parameter.
    for name, upload in files.items():
        params.setdefault(name, upload)
    return params, files


def _decode(value: Any) -> Any:
    """Objects, arrays and booleans arrive JSON-encoded; numbers and text stay strings (methods convert them)."""
    if not isinstance(value, str) or not (value[:1] in ("{", "[") or value in ("true", "false")):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _entities(text: str) -> list[JsonDict]:
    """The entities the app attaches: a leading bot command and @mentions (offsets in UTF-16 code units)."""
    entities = []
    command = COMMAND.match(text)
    if command:
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16_len(command.group())})
    for mention in MENTION.finditer(text):
        if command and mention.start() < command.end():
            continue
        entities.append(
            {"type": "mention", "offset": _utf16_len(text[: mention.start()]), "length": _utf16_len(mention.group())}
        )
    return entities


def _markup(params: JsonDict) -> JsonDict | None:
    markup = params.get("reply_markup")
    if markup is None:
        return None
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= CALLBACK_DATA_LIMIT:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def _set_markup(message: JsonDict, markup: JsonDict | None) -> None:
    if markup is not None and markup.get("inline_keyboard"):
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


def _error(error: ApiError) -> web.Response:
    body: JsonDict = {"ok": False, "error_code": error.code, "description": error.description}
    if error.retry_after is not None:
        body["parameters"] = {"retry_after": error.retry_after}
    return web.json_response(body, status=error.code)
