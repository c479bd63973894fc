"""Telegram's webhook behind several front ends: one secret for all of them, the same after a restart, so every
front end accepts what Telegram delivers to the load balancer, whichever of them registered last."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession
from fake_telegram import FakeTelegram, FakeUser
from pydantic import SecretStr

from adapters.telegram import build_application, running
from adapters.telegram.lifecycle import webhook_secret
from bot.config import Settings
from bot.service import Service
from tests.support_pool import SCRIPTED_ENGINE, eventually
from tests.support_redis import free_port

module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service() -> AsyncIterator[Service]:
    settings = Settings(_env_file=None, workers=1, engine_factory=SCRIPTED_ENGINE)
    async with Service(settings) as running_service:
        yield running_service


def front_end_settings(telegram: FakeTelegram, service: Service, public_url: str, **more: Any) -> Settings:
    """A front end behind a load balancer at ``public_url``, listening on its own port."""
    return service.settings.model_copy(
        update={
            "telegram_token": SecretStr(telegram.token),
            "telegram_base_url": telegram.base_url,
            "telegram_base_file_url": telegram.base_file_url,
            "telegram_webhook_url": public_url,
            "telegram_webhook_port": free_port(),
            **more,
        }
    )


@module_loop
async def test_two_front_ends_accept_what_telegram_sends_with_the_one_secret(service: Service) -> None:
    first_port = free_port()
    public_url = f"http://127.0.0.1:{first_port}/telegram/hook"  # the balancer forwards here: the first front end
    user = FakeUser(id=777, first_name="Aiko")
    async with FakeTelegram() as telegram, AsyncExitStack() as front_ends:
        first = front_end_settings(telegram, service, public_url, telegram_webhook_port=first_port)
        second = front_end_settings(telegram, service, public_url)
        for settings in (first, second):  # the second registers last: Telegram keeps its secret
            await front_ends.enter_async_context(running(build_application(settings, service), settings))
        registered = telegram.webhook
        assert registered is not None and registered["secret_token"]

        start = telegram.send_text(user, telegram.private_chat(user), "/start")  # delivered to the first one
        await eventually(lambda: bool(telegram.replies_to(start)), timeout=30)
        second_url = f"http://127.0.0.1:{second.telegram_webhook_port}/telegram/hook"
        headers = {"X-Telegram-Bot-Api-Secret-Token": registered["secret_token"]}
        async with ClientSession() as session, session.post(second_url, json={"update_id": 1}, headers=headers) as got:
            assert got.status == 200  # the same secret opens the second one too
        assert len({call.params["secret_token"] for call in telegram.calls_to("setWebhook")}) == 1

    async with FakeTelegram() as restarted:  # a restart (or a new front end) registers the same secret again
        settings = front_end_settings(restarted, service, public_url)
        async with running(build_application(settings, service), settings):
            assert restarted.webhook is not None
            assert restarted.webhook["secret_token"] == webhook_secret(settings)


def test_the_secret_is_the_settings_one_or_derived_from_the_token(service: Service) -> None:
    base = service.settings.model_copy(update={"telegram_token": SecretStr("123:abc")})
    derived = webhook_secret(base)
    assert derived == webhook_secret(base.model_copy())  # stable
    assert derived != webhook_secret(base.model_copy(update={"telegram_token": SecretStr("123:abd")}))
    assert "abc" not in derived and 1 <= len(derived) <= 256 and derived.replace("_", "").replace("-", "").isalnum()
    chosen = base.model_copy(update={"telegram_webhook_secret": SecretStr("my-own_Secret1")})
    assert webhook_secret(chosen) == "my-own_Secret1"
