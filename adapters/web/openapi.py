"""The OpenAPI 3 document of the HTTP API, built from the settings and the installed styles.

Served at ``/api/v1/openapi.json``; the tests check it against the OpenAPI schema and fuzz the running server with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any

from bot.jobs import JobStage

OPENAPI_VERSION = "3.0.3"
API_KEY_HEADER = "X-API-Key"
OUTPUT_FORMATS = ("jpeg", "png", "webp")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
VIDEO_TYPES = ("video/mp4",)  # a clip (MP4, MOV, WebM or animated GIF in) comes back as H.264 MP4
JOB_STATES = ("queued", "running", "done", "failed")
DISTRIBUTION = "animegan-bot"
FALLBACK_VERSION = "0.1.0"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str, headers: Schema | None = None) -> Schema:
    response: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: Schema | None = None) -> Schema:
    return _json(_ref("Error"), description, headers)


RETRY_AFTER: Schema = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
}


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return FALLBACK_VERSION


def _schemas(style_names: Sequence[str], max_upload_bytes: int) -> dict[str, Schema]:
    style_name: Schema = {"type": "string", "description": "A style name from GET /api/v1/styles."}
    if style_names:
        style_name["enum"] = list(style_names)
    error = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "A stable machine-readable code, e.g. busy, rate_limited, too_many_waiting."},
            "message": {"type": "string", "description": "A plain sentence to show the person."},
        },
    }
    return {
        "Error": error,
        "Style": {
            "type": "object",
            "required": ["name", "title", "description", "licence", "default", "thumbnail"],
            "properties": {
                "name": {"type": "string"},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "licence": {"type": "string", "description": "Terms of the style's weights."},
                "default": {"type": "boolean"},
                "thumbnail": {"type": "string", "description": "Path of a small sample picture in this style."},
            },
        },
        "StyleList": {
            "type": "object",
            "required": ["default", "styles"],
            "properties": {"default": {"type": "string"}, "styles": {"type": "array", "items": _ref("Style")}},
        },
        "Progress": {
            "type": "object",
            "required": ["stage", "label", "position", "fraction"],
            "properties": {
                "stage": {"type": "string", "enum": [stage.value for stage in JobStage]},
                "label": {"type": "string", "description": "The stage in plain words."},
                "position": {
                    "type": "integer",
                    "nullable": True,
                    "minimum": 0,
                    "description": "1-based place in the queue while queued, else null.",
                },
                "fraction": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "description": "Done fraction of the stage.",
                },
                "frame": {
                    "type": "integer",
                    "nullable": True,
                    "minimum": 0,
                    "description": "A clip: frames drawn so far (else null).",
                },
                "frames": {
                    "type": "integer",
                    "nullable": True,
                    "minimum": 0,
                    "description": "A clip: frames it has after the length and frame-rate caps (else null).",
                },
            },
        },
        "Result": {
            "type": "object",
            "required": ["url", "mime", "width", "height", "style", "strength", "seconds", "notes"],
            "properties": {
                "url": {"type": "string"},
                "mime": {"type": "string", "enum": [*IMAGE_TYPES, *VIDEO_TYPES]},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "style": {"type": "string"},
                "strength": {"type": "number"},
                "seconds": {"type": "number", "description": "Time the job took in the pool."},
                "notes": {"type": "array", "items": {"type": "string"}, "description": "Plain remarks (e.g. resized)."},
            },
        },
        "Job": {
            "type": "object",
            "required": [
                "id",
                "state",
                "stage",
                "label",
                "position",
                "fraction",
                "source",
                "style",
                "strength",
                "faces",
                "status_url",
                "events_url",
                "result_url",
                "result",
                "error",
            ],
            "properties": {
                "id": {"type": "string"},
                "state": {"type": "string", "enum": list(JOB_STATES)},
                "stage": {"type": "string", "enum": [stage.value for stage in JobStage]},
                "label": {"type": "string"},
                "position": {"type": "integer", "nullable": True, "minimum": 0},
                "fraction": {"type": "number", "minimum": 0, "maximum": 1},
                "source": {
                    "type": "string",
                    "description": "Key of the uploaded photo: send it as `source` to re-style without uploading again.",
                },
                "style": {"type": "string"},
                "strength": {"type": "number"},
                "faces": {"type": "boolean"},
                "status_url": {"type": "string"},
                "events_url": {"type": "string"},
                "result_url": {"type": "string"},
                "result": {"allOf": [_ref("Result")], "nullable": True},
                "error": {"allOf": [_ref("Error")], "nullable": True},
            },
        },
        "JobForm": {
            "type": "object",
            "description": "Either `image` (a new photo) or `source` (the key of a photo sent before), not both.",
            "properties": {
                "image": {
                    "type": "string",
                    "format": "binary",
                    "description": f"A photo (JPEG, PNG, WebP or HEIC) or a clip (MP4, MOV, WebM or animated GIF; "
                    f"cut to the server's longest clip, 20 s by default, and drawn at up to 15 fps), at most "
                    f"{max_upload_bytes} bytes. A clip comes back as H.264 MP4 with its sound.",
                },
                "source": {"type": "string", "maxLength": 64, "description": "`source` of an earlier job."},
                "style": style_name,
                "strength": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "default": 1,
                    "description": "0 keeps the photo.",
                },
                "faces": {"type": "boolean", "default": True, "description": "Repaint faces with the face model."},
                "format": {
                    "type": "string",
                    "enum": list(OUTPUT_FORMATS),
                    "description": "Output format (default: as input).",
                },
            },
        },
    }


def _job_form_body() -> Schema:
    schema = _ref("JobForm")
    return {
        "required": True,
        "content": {"multipart/form-data": {"schema": schema}, "application/x-www-form-urlencoded": {"schema": schema}},
    }


def _image_response(description: str) -> Schema:
    return {
        "description": description,
        "content": {mime: {"schema": {"type": "string", "format": "binary"}} for mime in (*IMAGE_TYPES, *VIDEO_TYPES)},
    }


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}, "description": "Job id."}


def _submit_errors() -> Schema:
    return {
        "400": _error("A field is missing or invalid."),
        "410": _error("The `source` photo expired: upload it again."),
        "413": _error("The upload is larger than the limit."),
        "422": _error("The file is not an image the server can read, or has too many pixels."),
        "429": _error(
            "This client's own limit: too many photos in the last minute (`rate_limited`), or as many photos "
            "waiting as one client may have (`too_many_waiting`). Wait `Retry-After` seconds.",
            RETRY_AFTER,
        ),
        "503": _error(
            "The server is full for everyone (`busy`), or restarting: try again after `Retry-After` seconds.",
            RETRY_AFTER,
        ),
    }


def _paths() -> dict[str, Schema]:
    return {
        "/api/v1/styles": {
            "get": {
                "operationId": "listStyles",
                "summary": "The installed styles, default first.",
                "responses": {"200": _json(_ref("StyleList"), "The styles.")},
            }
        },
        "/api/v1/jobs": {
            "post": {
                "operationId": "submitJob",
                "summary": "Queue a photo; follow it with the events stream, then fetch the result.",
                "requestBody": _job_form_body(),
                "responses": {"202": _json(_ref("Job"), "The job was queued."), **_submit_errors()},
            }
        },
        "/api/v1/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "A job's state, progress and, once done, its result or error.",
                "parameters": [JOB_ID],
                "responses": {"200": _json(_ref("Job"), "The job."), "404": _error("No such job (or it expired).")},
            }
        },
        "/api/v1/jobs/{job_id}/events": {
            "get": {
                "operationId": "jobEvents",
                "summary": "Server-sent events: `progress` (Progress), then one `done` (Job) or `failed` (Error).",
                "parameters": [
                    JOB_ID,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Resume: events up to this id are not sent again.",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The event stream.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "404": _error("No such job (or it expired)."),
                },
            }
        },
        "/api/v1/jobs/{job_id}/result": {
            "get": {
                "operationId": "jobResult",
                "summary": "The stylized image (or clip, as video/mp4) of a finished job.",
                "parameters": [JOB_ID],
                "responses": {
                    "200": _image_response("The stylized image."),
                    "404": _error("No such job (or it expired)."),
                    "409": _error("The job has not finished yet."),
                    "422": _error("The job failed because of its input."),
                    "500": _error("The job failed inside the server."),
                    "504": _error("The job ran past its time limit."),
                },
            }
        },
        "/api/v1/stylize": {
            "post": {
                "operationId": "stylize",
                "summary": "One shot: send a photo or a clip, get the stylized image or video back in the same request.",
                "description": "`curl -F image=@me.jpg http://127.0.0.1:8080/api/v1/stylize > anime.jpg`",
                "requestBody": _job_form_body(),
                "responses": {
                    "200": {
                        **_image_response("The stylized image."),
                        "headers": {
                            "X-Source-Key": {
                                "description": "Send as `source` to re-style the same photo.",
                                "schema": {"type": "string"},
                            }
                        },
                    },
                    **_submit_errors(),
                    "500": _error("The job failed inside the server."),
                    "504": _error("The job ran past its time limit."),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document (never needs the API key).",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "The process is alive.",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "Alive.")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "The weights are loaded and the worker pool is up.",
                "security": [],
                "responses": {
                    "200": _json({"type": "object"}, "Ready to take photos."),
                    "503": _json({"type": "object"}, "Not ready yet (starting, or no worker alive)."),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def openapi_document(*, style_names: Sequence[str], max_upload_bytes: int, api_key_required: bool) -> dict[str, Any]:
    """The OpenAPI 3 document of this server.

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
        "components": {"schemas": _schemas(style_names, max_upload_bytes)},
    }
    if api_key_required:
        document["components"]["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
        }
        document["security"] = [{"apiKey": []}]
        unauthorized = _error("The API key is missing or wrong.")
        for path, operations in document["paths"].items():
            for operation in operations.values():
                if path.startswith("/api/v1/") and "security" not in operation:
                    operation["responses"]["401"] = unauthorized
    return document
