"""The OpenAPI 3.1 document of the HTTP API: its schemas generated from ``models.py``, its paths described here.

Served at ``/api/v1/openapi.json``; the tests check it against the OpenAPI schema and fuzz the running server with it.
Only the settings (the upload limit, whether a key is needed) and the installed styles vary between servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import core_schema

from adapters.web.models import (
    API_KEY_HEADER,
    API_PREFIX,
    IMAGE_TYPES,
    VIDEO_TYPES,
    Error,
    Health,
    Job,
    JobForm,
    Progress,
    Readiness,
    StyleList,
)

OPENAPI_VERSION = "3.1.0"
DISTRIBUTION = "animegan-bot"
FALLBACK_VERSION = "0.1.0"
SCHEMA_REF = "#/components/schemas/{model}"
MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (StyleList, "serialization"),
    (Job, "serialization"),
    (Progress, "serialization"),
    (Error, "serialization"),
    (Health, "serialization"),
    (Readiness, "serialization"),
    (JobForm, "validation"),
]

Schema = dict[str, Any]

RETRY_AFTER: Schema = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
}
TEXT: Schema = {"type": "string"}
BINARY: Schema = {"type": "string", "format": "binary"}
PICTURE_TYPES = (*IMAGE_TYPES, *VIDEO_TYPES)
RETRY_STATUSES = frozenset({429, 503})
NO_SUCH_JOB = {404: "No such job (or it expired)."}
JOB_FAILED = {500: "The job failed inside the server.", 504: "The job ran past its time limit."}
SUBMIT_ERRORS = {
    400: "A field is missing or invalid.",
    410: "The `source` photo expired: upload it again.",
    413: "The upload is larger than the limit.",
    422: "The file is not an image the server can read, or has too many pixels.",
    429: "This client's own limit: too many photos in the last minute (`rate_limited`), or as many photos "
    "waiting as one client may have (`too_many_waiting`). Wait `Retry-After` seconds.",
    503: "The server is full for everyone (`busy`), or restarting: try again after `Retry-After` seconds.",
}
RESULT_ERRORS = {409: "The job has not finished yet.", 422: "The job failed because of its input."}
JOB_ID: Schema = {"name": "job_id", "in": "path", "required": True, "schema": TEXT, "description": "Job id."}
LAST_EVENT_ID: Schema = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "schema": TEXT,
    "description": "Resume: events up to this id are not sent again.",
}


class DocumentSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema without what only adds noise to the document: field titles and ``null`` defaults."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> Schema:
        json_schema = super().default_schema(schema)
        if json_schema.get("default", ...) is None:
            del json_schema["default"]
        return json_schema


def component_schemas(style_names: Sequence[str], max_upload_bytes: int) -> dict[str, Schema]:
    """Every model's schema by name; ``style`` lists the installed styles and ``image`` states the upload limit."""
    _, top = models_json_schema(MODELS, ref_template=SCHEMA_REF, schema_generator=DocumentSchema)
    schemas: dict[str, Schema] = top["$defs"]
    form = schemas["JobForm"]["properties"]
    if style_names:
        form["style"]["enum"] = list(style_names)
    form["image"]["description"] += f" At most {max_upload_bytes} bytes."
    return schemas


def _ref(model: type[BaseModel]) -> Schema:
    return {"$ref": SCHEMA_REF.format(model=model.__name__)}


def _json(schema: Schema, description: str, headers: Schema | None = None) -> Schema:
    response: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _errors(descriptions: dict[int, str]) -> Schema:
    """Error answers (schema ``Error``) by status; ``Retry-After`` on the ones that ask to come back later."""
    return {
        str(status): _json(_ref(Error), text, RETRY_AFTER if status in RETRY_STATUSES else None)
        for status, text in sorted(descriptions.items())
    }


def _media(description: str, types: Sequence[str], schema: Schema) -> Schema:
    return {"description": description, "content": {mime: {"schema": schema} for mime in types}}


def _operation(operation_id: str, summary: str, responses: Schema, **extra: Any) -> Schema:
    return {"operationId": operation_id, "summary": summary, **extra, "responses": responses}


def _paths() -> dict[str, Schema]:
    form = {"schema": _ref(JobForm)}
    job_form = {"required": True, "content": {"multipart/form-data": form, "application/x-www-form-urlencoded": form}}
    source_key = {"X-Source-Key": {"description": "Send as `source` to re-style the same photo.", "schema": TEXT}}
    picture = _media("The stylized image.", PICTURE_TYPES, BINARY)
    public: Schema = {"security": []}
    api = API_PREFIX
    return {
        f"{api}/styles": {
            "get": _operation(
                "listStyles", "The installed styles, default first.", {"200": _json(_ref(StyleList), "The styles.")}
            )
        },
        f"{api}/jobs": {
            "post": _operation(
                "submitJob",
                "Queue a photo; follow it with the events stream, then fetch the result.",
                {"202": _json(_ref(Job), "The job was queued."), **_errors(SUBMIT_ERRORS)},
                requestBody=job_form,
            )
        },
        f"{api}/jobs/{{job_id}}": {
            "get": _operation(
                "getJob",
                "A job's state, progress and, once done, its result or error.",
                {"200": _json(_ref(Job), "The job."), **_errors(NO_SUCH_JOB)},
                parameters=[JOB_ID],
            )
        },
        f"{api}/jobs/{{job_id}}/events": {
            "get": _operation(
                "jobEvents",
                "Server-sent events: `progress` (Progress), then one `done` (Job) or `failed` (Error).",
                {"200": _media("The event stream.", ["text/event-stream"], TEXT), **_errors(NO_SUCH_JOB)},
                parameters=[JOB_ID, LAST_EVENT_ID],
            )
        },
        f"{api}/jobs/{{job_id}}/result": {
            "get": _operation(
                "jobResult",
                "The stylized image (or clip, as video/mp4) of a finished job.",
                {"200": picture, **_errors({**NO_SUCH_JOB, **RESULT_ERRORS, **JOB_FAILED})},
                parameters=[JOB_ID],
            )
        },
        f"{api}/stylize": {
            "post": _operation(
                "stylize",
                "One shot: send a photo or a clip, get the stylized image or video back in the same request.",
                {"200": {**picture, "headers": source_key}, **_errors({**SUBMIT_ERRORS, **JOB_FAILED})},
                description=f"`curl -F image=@me.jpg http://127.0.0.1:8080{api}/stylize > anime.jpg`",
                requestBody=job_form,
            )
        },
        f"{api}/openapi.json": {
            "get": _operation(
                "openapi",
                "This document (never needs the API key).",
                {"200": _json({"type": "object"}, "The OpenAPI document.")},
                **public,
            )
        },
        "/healthz": {
            "get": _operation("health", "The process is alive.", {"200": _json(_ref(Health), "Alive.")}, **public)
        },
        "/readyz": {
            "get": _operation(
                "ready",
                "The weights are loaded and the worker pool is up.",
                {
                    "200": _json(_ref(Readiness), "Ready to take photos."),
                    "503": _json(_ref(Readiness), "Not ready yet (starting, or no worker alive)."),
                },
                **public,
            )
        },
        "/metrics": {
            "get": _operation(
                "metrics",
                "Prometheus metrics.",
                {"200": _media("Prometheus text format.", ["text/plain"], TEXT)},
                **public,
            )
        },
    }


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return FALLBACK_VERSION


def openapi_document(*, style_names: Sequence[str], max_upload_bytes: int, api_key_required: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this server.

    Args:
        style_names: installed styles, listed as the allowed values of ``style``.
        max_upload_bytes: the upload limit, stated in the image field's description.
        api_key_required: when true, every ``/api/v1`` operation but the document itself needs ``X-API-Key``.
    """
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "AnimeBot API",
            "version": _version(),
            "description": "Turn photos into anime pictures. Errors are JSON objects with a plain `message`.",
        },
        "servers": [{"url": "/"}],
        "paths": _paths(),
        "components": {"schemas": component_schemas(style_names, max_upload_bytes)},
    }
    if api_key_required:
        document["components"]["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
        }
        document["security"] = [{"apiKey": []}]
        unauthorized = _errors({401: "The API key is missing or wrong."})
        for path, operations in document["paths"].items():
            for operation in operations.values():
                if path.startswith(f"{API_PREFIX}/") and "security" not in operation:
                    operation["responses"].update(unauthorized)
    return document
