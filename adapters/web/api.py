"""The JSON HTTP API under ``/api/v1``: styles, jobs (submit, status, progress stream, result) and one-shot stylize.

Every error is a JSON object ``{"error": code, "message": plain sentence}``; the sentence is safe to show a person.
Forms are read and checked at the edge by ``adapters.web.jobform`` before anything is queued.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp_sse import sse_response

from adapters.web.clients import client_address
from adapters.web.jobform import MESSAGE_BAD_FORM, MESSAGE_SOURCE_EXPIRED, ApiError, read_job_form
from adapters.web.models import API_KEY_HEADER, API_PREFIX, ApiModel, Job, Progress, Result, Style, StyleList
from adapters.web.openapi import openapi_document
from animegan.manifest import Style as InstalledStyle
from bot.config import Settings
from bot.i18n import from_accept_language
from bot.jobs import JobError, JobProgress, progress_label
from bot.jobstore import JobStore, StageTimer, WebJob
from bot.orders import Order, SourceExpired
from bot.service import Service

JOB_TTL_SECONDS = 600.0
MIN_JOB_STORE_CAPACITY = 128
SSE_PING_SECONDS = 10.0
WEB_USER_PREFIX = "web:"
TIME_ZONE_HEADER = "X-Time-Zone"  # an IANA zone name (the web page sends the browser's), for a budget's reset time

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", Service)
JOBS = web.AppKey("jobs", JobStore)

# Plain sentences for errors aiohttp itself raises (unknown path, wrong method...).
HTTP_MESSAGES = {
    400: ("bad_request", MESSAGE_BAD_FORM),
    404: ("not_found", "There is nothing at this address. See /api/v1/openapi.json for the API."),
    405: ("method_not_allowed", "This address does not accept that method. See /api/v1/openapi.json."),
    413: ("too_large", "The upload is too large."),
}

MESSAGE_NO_JOB = "There is no job with that id. Finished jobs are kept for {minutes} minutes."
MESSAGE_NOT_FINISHED = "That picture is not ready yet. Follow the job's events and ask again when it is done."
MESSAGE_API_KEY = "This server needs an API key: send it in the X-API-Key header."


# --- JSON views ----------------------------------------------------------------------------------------------


def model_response(model: ApiModel, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """``model`` as a JSON answer."""
    return web.json_response(model.model_dump(mode="json"), status=status, headers=headers)


def progress_view(progress: JobProgress) -> Progress:
    """A progress event as the API shows it."""
    return Progress(
        stage=progress.stage,
        label=progress_label(progress),
        position=progress.position,
        wait_seconds=None if progress.wait_seconds is None else round(progress.wait_seconds, 1),
        fraction=min(1.0, max(0.0, progress.fraction)),
        frame=progress.frame,
        frames=progress.frames,
    )


def job_view(job: WebJob) -> Job:
    """A job as the API shows it."""
    base = f"{API_PREFIX}/jobs/{job.id}"
    result = job.result
    return Job(
        id=job.id,
        state=job.state,
        **progress_view(job.progress).model_dump(),
        source=job.source,
        style=result.style if result else job.style,
        strength=job.strength,
        faces=job.faces,
        status_url=base,
        events_url=f"{base}/events",
        result_url=f"{base}/result",
        result=None
        if result is None
        else Result(
            url=f"{base}/result",
            mime=result.mime,
            width=result.width,
            height=result.height,
            style=result.style,
            strength=result.strength,
            seconds=round(result.seconds, 3),
            notes=list(result.notes),
        ),
        error=None if job.error is None else ApiError.from_job_error(job.error).body(),
    )


def style_list(styles: list[InstalledStyle], default: str) -> StyleList:
    """The installed styles (``default`` when there are none), the first one the default."""
    return StyleList(
        default=styles[0].name if styles else default,
        styles=[
            Style(
                name=style.name,
                title=style.title,
                description=style.description,
                licence=style.licence,
                default=index == 0,
                thumbnail=f"/ui/thumbnails/{style.name}",
            )
            for index, style in enumerate(styles)
        ],
    )


# --- handlers ------------------------------------------------------------------------------------------------


def client_key(request: web.Request) -> str:
    """Who is asking, for the service's fairness and rate limit: ``web:<address>`` (behind trusted proxies, the
    address they forwarded)."""
    return f"{WEB_USER_PREFIX}{client_address(request, request.app[SETTINGS].trusted_proxies)}"


def find_job(request: web.Request) -> WebJob:
    """The job named in the path; ``ApiError`` 404 if unknown or expired."""
    job = request.app[JOBS].get(request.match_info["job_id"])
    if job is None:
        minutes = round(request.app[JOBS].ttl / 60)
        raise ApiError(404, "no_such_job", MESSAGE_NO_JOB.format(minutes=minutes))
    return job


async def start_job(request: web.Request) -> WebJob:
    """Check the form, hand it to the service as one order, and remember the accepted job."""
    form = await read_job_form(request, request.app[SETTINGS])
    order = Order(
        user=client_key(request),
        image=form.image,
        source=form.source,
        style=form.style,
        strength=form.strength,
        faces=form.faces,
        output_format=form.output_format,
        time_zone=request.headers.get(TIME_ZONE_HEADER),  # the browser's, for a daily budget's reset time
    )
    with request.app[JOBS].admitting():  # room first: a job the store could not keep is never run
        try:
            accepted = await request.app[SERVICE].submit(order)
        except SourceExpired:
            raise ApiError(410, "source_expired", MESSAGE_SOURCE_EXPIRED) from None
        return request.app[JOBS].add(accepted.handle, accepted.request, accepted.source)


async def list_styles(request: web.Request) -> web.Response:
    """GET /styles: the installed styles, default first."""
    return model_response(style_list(request.app[SERVICE].styles(), request.app[SETTINGS].default_style))


async def submit_job(request: web.Request) -> web.Response:
    """POST /jobs: queue a photo; 202 with the job (id, queue position, source key)."""
    job = await start_job(request)
    return model_response(job_view(job), status=202, headers={"Location": f"{API_PREFIX}/jobs/{job.id}"})


async def job_status(request: web.Request) -> web.Response:
    """GET /jobs/{id}: the job's state, progress and outcome."""
    job = find_job(request)
    if job.error is not None:
        job.collect()  # its error is in this answer (a result is collected from its own address)
    return model_response(job_view(job))


def _json(model: ApiModel) -> str:
    return json.dumps(model.model_dump(mode="json"))


def _last_event_id(request: web.Request) -> int:
    try:
        return int(request.headers.get("Last-Event-ID", "-1"))
    except ValueError:
        return -1


async def job_events(request: web.Request) -> web.StreamResponse:
    """GET /jobs/{id}/events: SSE ``progress`` events, then one ``done`` (the job) or ``failed`` (the error)."""
    job = find_job(request)
    async with sse_response(request, ping_interval=SSE_PING_SECONDS) as stream:
        with contextlib.suppress(ConnectionResetError):
            sent = _last_event_id(request)
            async for seq in job.changes(sent):
                for step, progress in job.progress_since(sent):
                    await stream.send(_json(progress_view(progress)), id=str(step), event="progress")
                if job.result is not None:
                    await stream.send(_json(job_view(job)), id=str(seq), event="done")
                elif job.error is not None:
                    await stream.send(_json(ApiError.from_job_error(job.error).body()), id=str(seq), event="failed")
                    job.collect()
                sent = seq
    return stream


def image_response(job: WebJob) -> web.Response:
    """The finished job's image; ``ApiError`` with the job's own error when it failed."""
    job.collect()
    if job.error is not None:
        raise ApiError.from_job_error(job.error)
    if job.result is None:
        raise ApiError(409, "not_finished", MESSAGE_NOT_FINISHED)
    extension = job.result.mime.partition("/")[2].replace("jpeg", "jpg")
    return web.Response(
        body=job.result.image,
        content_type=job.result.mime,
        headers={
            "Content-Disposition": f'inline; filename="anime-{job.result.style}.{extension}"',
            "X-Job-Id": job.id,
            "X-Source-Key": job.source,
            "Cache-Control": "private, max-age=600",
        },
    )


async def job_result(request: web.Request) -> web.Response:
    """GET /jobs/{id}/result: the stylized image (409 while the job runs)."""
    return image_response(find_job(request))


async def stylize(request: web.Request) -> web.Response:
    """POST /stylize: queue a photo and answer with the stylized image once it is done."""
    job = await start_job(request)
    await job.wait()
    return image_response(job)


async def openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: the OpenAPI document (built now: installed styles can change while running)."""
    settings = request.app[SETTINGS]
    document = openapi_document(
        style_names=[style.name for style in request.app[SERVICE].styles()],
        max_upload_bytes=settings.max_upload_bytes,
        api_key_required=settings.api_key is not None,
    )
    return web.json_response(document)


# --- middlewares and the sub-application ---------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into the JSON shape ``{"error", "message"}`` with a plain sentence (in the client's
    ``Accept-Language`` when the catalogues have it)."""
    language = from_accept_language(request.headers.get("Accept-Language"))
    try:
        return await handler(request)
    except ApiError as error:
        return error.response(language)
    except JobError as error:
        return ApiError.from_job_error(error).response(language)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code, message = HTTP_MESSAGES.get(error.status, ("http_error", error.reason))
        return ApiError(
            error.status, code, message, {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        ).response(language)


@web.middleware
async def require_api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """When ``settings.api_key`` is set, every route but the OpenAPI document needs it in ``X-API-Key``."""
    secret = request.app[SETTINGS].api_key
    if secret is None or request.match_info.route.name == "openapi":
        return await handler(request)
    given = request.headers.get(API_KEY_HEADER, "").encode()
    if not hmac.compare_digest(given, secret.get_secret_value().encode()):
        raise ApiError(401, "unauthorized", MESSAGE_API_KEY)
    return await handler(request)


def job_store_capacity(settings: Settings) -> int:
    """Room for every job the pool can hold unfinished, plus finished ones: eviction never hits a live job."""
    return max(MIN_JOB_STORE_CAPACITY, 2 * (settings.queue_size + settings.workers))


def create_api_app(settings: Settings, service: Service, on_stage_time: StageTimer | None = None) -> web.Application:
    """The ``/api/v1`` sub-application; ``on_stage_time`` receives each finished stage's seconds (metrics)."""
    app = web.Application(middlewares=[json_errors, require_api_key])
    app[SETTINGS] = settings
    app[SERVICE] = service

    async def job_store(app: web.Application) -> AsyncIterator[None]:
        app[JOBS] = JobStore(job_store_capacity(settings), JOB_TTL_SECONDS, on_stage_time=on_stage_time)
        yield
        await app[JOBS].close()

    app.cleanup_ctx.append(job_store)
    app.router.add_get("/styles", list_styles, name="styles")
    app.router.add_post("/jobs", submit_job, name="jobs")
    app.router.add_get("/jobs/{job_id}", job_status, name="job")
    app.router.add_get("/jobs/{job_id}/events", job_events, name="job_events")
    app.router.add_get("/jobs/{job_id}/result", job_result, name="job_result")
    app.router.add_post("/stylize", stylize, name="stylize")
    app.router.add_get("/openapi.json", openapi, name="openapi")
    return app
