"""A Telegram album member over the download limit is refused before it is downloaded, like a single photo
(issue 20, point 8). The real python-telegram-bot against the fake Bot API server, the real service and engine."""

from __future__ import annotations

import numpy as np

from bot.service import Service, too_large_message
from tests.fake_telegram import FakeTelegram, FakeUser
from tests.test_telegram import (  # noqa: F401 - fixtures
    REPLY_TIMEOUT,
    bot,
    jpeg,
    module_loop,
    png,
    replies,
    service,
    sharing_pool,
    telegram,
)

LIMIT = 60_000


@module_loop
async def test_an_album_member_over_the_download_limit_is_refused_before_its_download(
    telegram: FakeTelegram,  # noqa: F811 - the imported fixture
    service: Service,  # noqa: F811 - the imported fixture
    coffee: np.ndarray,
) -> None:
    limited = sharing_pool(service, max_upload_bytes=LIMIT)
    user = FakeUser(id=7101, first_name="Yuki", username="yuki7101")
    chat = telegram.private_chat(user)
    small, big = jpeg(coffee, (160, 120)), png(coffee, (640, 480))
    assert len(small) < LIMIT < len(big)
    async with bot(telegram, limited):
        sent = telegram.send_album(user, chat, [("photo", small), ("document:big.png:image/png", big)])
        await replies(telegram, sent[0], count=1, kind="photo")
        await telegram.wait_until(lambda: bool(telegram.calls_to("sendPhoto", chat.id)), REPLY_TIMEOUT)

    texts = [m["text"] for m in telegram.bot_messages(chat.id) if "text" in m]
    assert too_large_message(len(big), LIMIT) in texts
    fetched = {call.params["file_id"] for call in telegram.calls_to("getFile")}
    assert sent[1]["document"]["file_id"] not in fetched  # never downloaded
    assert not telegram.refused()
