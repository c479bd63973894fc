"""The API's models: the JSON a job is shown as, the form's checks, and the document's schemas made from them.

Fast tests without a server; ``test_web_api.py`` runs the same shapes through the real service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.web.api import job_view, progress_view
from adapters.web.models import FORM_FIELDS, JobForm
from adapters.web.openapi import openapi_document
from bot.jobs import JobProgress, JobStage
from bot.jobstore import JobStore
from tests.test_jobstore import REQUEST, HandDrivenJob, settle

STYLES = ["shinkai", "hayao"]


async def test_a_finished_job_is_shown_with_the_same_keys_in_the_same_order_as_ever() -> None:
    store = JobStore(capacity=4, ttl=60)
    handle = HandDrivenJob()
    job = store.add(handle, REQUEST, source="key")
    handle.succeed()
    await settle()
    base = f"/api/v1/jobs/{job.id}"
    expected = {
        "id": job.id,
        "state": "done",
        "stage": "done",
        "label": "Done",
        "position": None,
        "wait_seconds": None,
        "fraction": 1.0,
        "frame": None,
        "frames": None,
        "source": "key",
        "style": "shinkai",
        "strength": 0.5,
        "faces": False,
        "status_url": base,
        "events_url": f"{base}/events",
        "result_url": f"{base}/result",
        "result": {
            "url": f"{base}/result",
            "mime": "image/jpeg",
            "width": 8,
            "height": 8,
            "style": "shinkai",
            "strength": 0.5,
            "seconds": 1.25,
            "notes": [],
        },
        "error": None,
    }
    assert json.dumps(job_view(job).model_dump(mode="json")) == json.dumps(expected)
    await store.close()


async def test_a_failed_job_carries_the_error_body() -> None:
    store = JobStore(capacity=4, ttl=60)
    handle = HandDrivenJob(position=2)
    job = store.add(handle, REQUEST, source="key")
    handle.fail("That photo is far too dark to stylize.")
    await settle()
    shown = job_view(job).model_dump(mode="json")
    assert shown["state"] == "failed" and shown["result"] is None
    assert shown["error"] == {"error": "rejected", "message": "That photo is far too dark to stylize."}
    await store.close()


def test_progress_is_clamped_and_counts_a_clips_frames() -> None:
    shown = progress_view(JobProgress(JobStage.STYLIZING, fraction=1.5, frame=3, frames=9)).model_dump(mode="json")
    assert shown == {
        "stage": "stylizing",
        "label": "Stylizing frame 3 of 9",
        "position": None,
        "wait_seconds": None,
        "fraction": 1.0,
        "frame": 3,
        "frames": 9,
    }


@pytest.mark.parametrize(
    ("fields", "read"),
    [
        ({"faces": " OFF "}, {"faces": False}),
        ({"faces": "Yes"}, {"faces": True}),
        ({"format": "JPG"}, {"output_format": "jpeg"}),
        ({"strength": "0.25", "style": " hayao "}, {"strength": 0.25, "style": "hayao"}),
        ({}, {"strength": 1.0, "faces": True, "style": None, "output_format": None}),
    ],
)
def test_the_form_reads_the_words_people_and_curl_send(fields: dict[str, str], read: dict[str, Any]) -> None:
    form = JobForm.model_validate({"source": "key", **fields})
    assert {name: getattr(form, name) for name in read} == read


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"faces": "t"}, "faces"),  # pydantic alone would take it; the API never did
        ({"strength": "nan"}, "strength"),
        ({"strength": "1.5"}, "strength"),
        ({"format": "gif"}, "format"),
        ({"source": "k" * 65}, "source"),
    ],
)
def test_the_form_refuses_what_the_document_does_not_allow(fields: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        JobForm.model_validate({"source": "key", **fields})
    assert refused.value.errors()[0]["loc"][0] == field


def test_the_documented_form_is_the_model() -> None:
    document = openapi_document(style_names=STYLES, max_upload_bytes=1000, api_key_required=False)
    form = document["components"]["schemas"]["JobForm"]
    assert set(form["properties"]) == FORM_FIELDS
    assert "required" not in form
    assert form["properties"]["style"]["enum"] == STYLES
    assert form["properties"]["image"]["description"].endswith("At most 1000 bytes.")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


@pytest.mark.parametrize("api_key_required", [False, True])
def test_every_reference_names_a_component_and_nothing_is_left_over(api_key_required: bool) -> None:
    document = openapi_document(style_names=STYLES, max_upload_bytes=1000, api_key_required=api_key_required)
    schemas = document["components"]["schemas"]
    referenced = {ref.removeprefix("#/components/schemas/") for ref in _refs(document)}
    assert referenced | {"Progress"} == set(schemas)  # Progress: named by the event stream's summary
    assert "nullable" not in json.dumps(document)  # OpenAPI 3.1: JSON Schema's own null
