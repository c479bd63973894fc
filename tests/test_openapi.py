"""The OpenAPI document: valid OpenAPI 3, in step with the app's routes, and a fuzzer driven by it finds no 5xx.

The fuzz test runs schemathesis (hypothesis underneath) against the real server, real service and real engine on a
real port: it generates requests from the served document and checks every answer against it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from openapi_spec_validator import validate
from pydantic import SecretStr
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.web import create_app
from adapters.web.openapi import openapi_document
from bot.config import Settings
from bot.service import Service
from tests.support_web import live_server, small_settings

EXAMPLES_PER_OPERATION = 25
SERVER_START_SECONDS = 300.0
STYLES = ["shinkai", "hayao"]
FUZZ_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("api_key_required", [False, True])
def test_the_document_is_valid_openapi_3(api_key_required: bool) -> None:
    document = openapi_document(style_names=STYLES, max_upload_bytes=1000, api_key_required=api_key_required)
    validate(document)  # raises on any violation of the OpenAPI schema of its version (3.1)
    assert document["openapi"].startswith("3.")


def test_with_a_key_every_api_operation_but_the_document_needs_it() -> None:
    document = openapi_document(style_names=STYLES, max_upload_bytes=1000, api_key_required=True)
    assert document["security"] == [{"apiKey": []}]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            public = operation.get("security") == []
            assert public == (not path.startswith("/api/v1/") or path == "/api/v1/openapi.json"), path
            assert ("401" in operation["responses"]) == (not public), path


def test_without_a_key_nothing_mentions_one() -> None:
    document = openapi_document(style_names=STYLES, max_upload_bytes=1000, api_key_required=False)
    assert "security" not in document and "securitySchemes" not in document["components"]
    assert all("401" not in op["responses"] for ops in document["paths"].values() for op in ops.values())


def test_submitting_documents_429_for_the_clients_own_limits_and_503_for_a_full_server() -> None:
    document = openapi_document(style_names=STYLES, max_upload_bytes=1000, api_key_required=False)
    for path in ("/api/v1/jobs", "/api/v1/stylize"):
        responses = document["paths"][path]["post"]["responses"]
        assert "too_many_waiting" in responses["429"]["description"]
        assert "rate_limited" in responses["429"]["description"]
        assert "full for everyone" in responses["503"]["description"]
        assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["503"]["headers"]


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path) of every route of ``app`` and its sub-apps (whose paths carry their prefix)."""
    routes: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:
            routes |= _app_routes(info["app"])
            continue
        path = info.get("formatter", info.get("path", ""))
        for route in resource:
            if route.method != "HEAD":
                routes.add((route.method, path))
    return routes


def test_every_api_route_is_documented_and_every_documented_route_exists(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, weights_dir=tmp_path)  # type: ignore[call-arg]
    app = create_app(settings, Service(settings))
    served = {
        (method, path)
        for method, path in _app_routes(app)
        if path.startswith(("/api/", "/healthz", "/readyz", "/metrics"))
    }
    document = openapi_document(style_names=[], max_upload_bytes=1, api_key_required=False)
    documented = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    assert served == documented


async def test_the_served_document_is_the_built_one(weights_dir: Path) -> None:
    settings = small_settings(weights_dir, api_key=SecretStr("k"))
    service = Service(settings)  # not started: the document needs only the installed styles
    async with TestClient(TestServer(create_app(settings, service))) as client:
        served = await (await client.get("/api/v1/openapi.json")).json()
    expected = openapi_document(
        style_names=[style.name for style in service.styles()],
        max_upload_bytes=settings.max_upload_bytes,
        api_key_required=True,
    )
    assert served == expected
    assert served["components"]["schemas"]["JobForm"]["properties"]["style"]["enum"][0] == settings.default_style


# --- fuzzing the running server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_server(weights_dir: Path) -> Iterator[str]:
    """The real server with a started service, on its own event loop in a thread (schemathesis calls are blocking)."""
    # Room for every photo the fuzzer sends: a legitimate "busy" (503) would hide nothing but count as a 5xx.
    settings = small_settings(weights_dir, per_user_queued=1000, queue_size=1000)
    started = threading.Event()
    stop: list[asyncio.Event] = []
    url: list[str] = []
    failure: list[BaseException] = []

    async def serve() -> None:
        stop.append(asyncio.Event())
        try:
            async with Service(settings) as service, live_server(settings, service) as base_url:
                url.append(base_url)
                started.set()
                await stop[0].wait()
        except BaseException as error:
            failure.append(error)
            started.set()
            raise

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), name="fuzzed-server", daemon=True)
    thread.start()
    assert started.wait(SERVER_START_SECONDS), "the server did not start"
    if failure:
        raise failure[0]
    yield url[0]
    loop.call_soon_threadsafe(stop[0].set)
    thread.join(SERVER_START_SECONDS)
    loop.close()


@pytest.mark.slow
def test_the_fuzzer_finds_no_server_error_and_no_answer_outside_the_document(running_server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{running_server}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {
        f"{method.upper()} {path}" for path, methods in schema.raw_schema["paths"].items() for method in methods
    }
    # schemathesis leaves out the operation serving the document it loaded; every other one is fuzzed
    assert {operation.label for operation in operations} == documented - {"GET /api/v1/openapi.json"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_surprises(case: Any) -> None:
            response = case.call(base_url=running_server, timeout=120)
            case.validate_response(response, checks=FUZZ_CHECKS)

        no_surprises()
