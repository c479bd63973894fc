"""Who a web client is: X-Forwarded-For believed from trusted proxies only (``ANIMEBOT_TRUSTED_PROXIES``), so people
behind a load balancer get a rate-limit bucket each, and nobody can pick their own bucket by sending the header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import ip_network
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from adapters.web import create_app
from adapters.web.clients import client_address
from bot.config import Settings
from bot.service import Service
from tests.support_pool import SCRIPTED_ENGINE
from tests.support_web import jpeg_bytes

TRUSTED = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


def request_from(peer: str, forwarded_for: str | None = None) -> web.Request:
    """A request whose TCP peer is ``peer``, with ``X-Forwarded-For: forwarded_for`` when given."""
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (peer, 40000) if name == "peername" else default
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return make_mocked_request("POST", "/api/v1/jobs", headers=headers, transport=transport)


def test_without_trusted_proxies_the_client_is_its_peer_whatever_it_forwards() -> None:
    assert client_address(request_from("203.0.113.7", "198.51.100.1"), []) == "203.0.113.7"


def test_a_spoofed_header_from_an_untrusted_peer_is_ignored() -> None:
    assert client_address(request_from("203.0.113.7", "198.51.100.1, 10.0.0.2"), TRUSTED) == "203.0.113.7"


def test_behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() -> None:
    # The client made up "1.1.1.1"; the load balancer appended the address it saw, 198.51.100.9.
    assert client_address(request_from("10.0.0.5", "1.1.1.1, 198.51.100.9"), TRUSTED) == "198.51.100.9"
    # Two trusted hops (an ingress behind the load balancer), the header split over two lines.
    request = make_mocked_request(
        "GET",
        "/",
        headers=[("X-Forwarded-For", "1.1.1.1, 198.51.100.9"), ("X-Forwarded-For", "10.1.2.3")],
        transport=request_from("10.0.0.5").transport,
    )
    assert client_address(request, TRUSTED) == "198.51.100.9"


def test_behind_a_trusted_proxy_odd_spellings_and_gaps_are_handled() -> None:
    assert client_address(request_from("10.0.0.5"), TRUSTED) == "10.0.0.5"  # no header: the proxy itself
    assert client_address(request_from("::ffff:10.0.0.5", "198.51.100.9"), TRUSTED) == "198.51.100.9"
    assert client_address(request_from("fd00::1", "2001:DB8::1"), TRUSTED) == "2001:db8::1"
    assert client_address(request_from("10.0.0.5", "not-an-address, 10.0.0.6"), TRUSTED) == "not-an-address"


def settings_for(weights_dir: Path, trusted: str) -> Settings:
    """One scripted worker and one photo per person per minute; ``trusted`` as ANIMEBOT_TRUSTED_PROXIES."""
    proxies = [ip_network(proxy) for proxy in trusted.split(",") if proxy]
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        weights_dir=weights_dir,
        workers=1,
        engine_factory=SCRIPTED_ENGINE,
        rate_limit_per_minute=1,
        trusted_proxies=proxies,
    )


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[TestClient]:
    async with Service(settings) as service, TestClient(TestServer(create_app(settings, service))) as client:
        yield client


async def post_photo(client: TestClient, forwarded_for: str) -> int:
    """POST one job as if forwarded for ``forwarded_for``; the answer's status."""
    form = FormData()
    photo = jpeg_bytes(np.full((64, 64, 3), 128, np.uint8))  # checked at the edge; the scripted engine refuses it
    form.add_field("image", photo, filename="photo.jpg", content_type="image/jpeg")
    response = await client.post("/api/v1/jobs", data=form, headers={"X-Forwarded-For": forwarded_for})
    return response.status


@pytest.mark.parametrize(
    ("trusted", "statuses"),
    [
        ("", [202, 429, 429]),  # one bucket for the peer: a made-up header buys nobody a second photo
        ("127.0.0.1", [202, 202, 429]),  # the test client's loopback peer is the trusted load balancer
    ],
)
async def test_people_behind_a_trusted_proxy_get_a_rate_limit_bucket_each(
    weights_dir: Path, trusted: str, statuses: list[int]
) -> None:
    async with serving(settings_for(weights_dir, trusted)) as client:
        first = await post_photo(client, "198.51.100.1")
        second = await post_photo(client, "198.51.100.2")
        again = await post_photo(client, "198.51.100.1")
    assert [first, second, again] == statuses
