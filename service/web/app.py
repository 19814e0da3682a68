"""The Flask application factory: settings, the runtime (built once), routes, error handlers."""

from __future__ import annotations

import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.assess.parse import Limits
from service.assess.pipeline import Pipeline
from service.errors import Issue, NotReady, SpinefootError, Unauthorized
from service.knowledge import load_knowledge
from service.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from service.outcome import operation_outcome
from service.settings import Settings, SettingsError
from service.web.apidocs import docs
from service.web.artifact_api import artifacts, cacheable
from service.web.artifacts import build_artifacts
from service.web.body import request_body
from service.web.cds.api import cds
from service.web.cds.auth import KeySet, ReplayCache, TokenVerifier
from service.web.media import require_fhir_json
from service.web.metadata import capability_statement, operation_definition
from service.web.playground import playground
from service.web.responses import fhir_response, json_response
from service.web.runtime import Runtime, runtime

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CORS_PATHS = (r"/fhir/*", r"/cds-services*")
log = logging.getLogger("spinefoot")
api = Blueprint("api", __name__)


def create_app(
    settings: Settings | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    load: bool = True,
) -> Flask:
    """Build the app. With `load` (the default) the knowledge base is loaded and compiled here,
    so a bad one fails fast; without, `/readyz` answers 503 until `load_pipeline` has run."""
    settings = settings or Settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["spinefoot"] = Runtime(settings, now, cds_verifier=_cds_verifier(settings, now))
    if load:
        load_pipeline(app)
    if settings.cors_origins:
        CORS(
            app,
            resources={path: {"origins": list(settings.cors_origins)} for path in CORS_PATHS},
            expose_headers=["X-Request-ID"],
        )
    app.register_blueprint(api)
    app.register_blueprint(docs)
    app.register_blueprint(cds)
    app.register_blueprint(artifacts)
    if settings.playground:  # off by default: it accepts patient data in a browser form
        app.register_blueprint(playground)
    app.register_error_handler(SpinefootError, _spinefoot_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    return app


def _cds_verifier(settings: Settings, now: Callable[[], datetime]) -> TokenVerifier | None:
    """Fails closed: JWTs required but not fully configured stops the app, never disables them."""
    if not settings.cds_jwt:
        return None
    if not (settings.cds_jwks and settings.cds_jwt_issuers and settings.base_url):
        raise SettingsError("SPINEFOOT_CDS_JWT is true but the JWKS, the issuers or the base URL is missing")
    return TokenVerifier(
        settings.cds_jwt_issuers, KeySet(settings.cds_jwks), ReplayCache(settings.replay_db), now
    )


def load_pipeline(app: Flask) -> None:
    rt: Runtime = app.extensions["spinefoot"]
    settings = rt.settings
    kb = load_knowledge(settings.knowledge_dir)
    rt.artifacts = build_artifacts(kb, software_version())  # static per knowledge version
    rt.pipeline = Pipeline(kb, Limits(settings.max_bundle_entries, settings.max_json_depth))


# ---------------------------------------------------------------- routes


@api.post("/fhir/RiskAssessment/$assess")
def assess() -> Response:
    require_fhir_json()
    rt = runtime()
    body = request_body()
    assessment = rt.ready_pipeline().assess_body(body, request.args.get("asOf"), rt.clock, rt.budget())
    rt.note(assessment)
    return fhir_response(assessment.resource)


@api.get("/fhir/metadata")
def metadata() -> Response:
    rt = runtime()
    statement = capability_statement(rt.ready_pipeline().kb, software_version(), rt.settings.base_url)
    return cacheable(fhir_response(statement), rt.ready_artifacts().etag)


@api.get("/fhir/OperationDefinition/assess")
def assess_definition() -> Response:
    return fhir_response(operation_definition())


@api.get("/healthz")
def healthz() -> Response:
    return json_response({"status": "ok"})


@api.get("/readyz")
def readyz() -> Response:
    pipeline = runtime().pipeline
    if pipeline is None:
        return json_response({"status": "loading"}, 503)
    return json_response({"status": "ready", "knowledge": pipeline.kb.id, "version": pipeline.kb.version})


@api.get("/metrics")
def metrics() -> Response:
    return Response(runtime().metrics.exposition(), content_type=METRICS_CONTENT_TYPE)


def software_version() -> str:
    try:
        return version("spinefoot")
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------- errors


def _spinefoot_error(error: SpinefootError) -> Response:
    if error.status == 500:
        log.error(
            "internal error", extra={"request_id": g.get("request_id"), "error_kind": type(error).__name__}
        )
        return _generic_500()
    g.error_kind = _kebab(type(error).__name__)
    response = fhir_response(operation_outcome(error.issues), error.status)
    if isinstance(error, NotReady):
        response.headers["Retry-After"] = "5"
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(status, "processing")
    text = {
        413: f"the body is larger than the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    }.get(status, error.description or error.name)
    g.error_kind = "payload-too-large" if status == 413 else _kebab(error.name.replace(" ", ""))
    response = fhir_response(operation_outcome([Issue(code, text)]), status)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return response


def _unexpected_error(error: Exception) -> Response:
    """Where it happened, never the exception's message: that may quote the request."""
    frames = traceback.extract_tb(error.__traceback__)[-3:]
    log.error(
        "unexpected error %s at %s",
        type(error).__name__,
        " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames)),
        extra={"request_id": g.get("request_id"), "error_kind": "internal"},
    )
    return _generic_500()


def _generic_500() -> Response:
    g.error_kind = "internal"
    return fhir_response(
        operation_outcome(
            [Issue("exception", "internal error; the request id is in the X-Request-ID header")]
        ),
        500,
    )


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


# ---------------------------------------------------------------- request id, log line, metrics


def _start_request() -> None:
    offered = request.headers.get("X-Request-ID", "")
    g.request_id = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    g.started = time.perf_counter()
    if request.path != "/metrics":
        runtime().check_storage()


def _finish_request(response: Response) -> Response:
    """One line per request: ids, sizes, timings and outcome codes only, never patient data."""
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule else "unmatched"
    response.headers["X-Request-ID"] = g.get("request_id", "")
    rt = runtime()
    if rt.metrics_writable:
        rt.metrics.record_request(route, request.method, response.status_code, seconds)
        if g.get("error_kind"):
            rt.metrics.errors.labels(g.error_kind).inc()
    line = {
        "request_id": g.get("request_id"),
        "method": rt.metrics.method_label(request.method),
        "path": route,
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 2),
        "bytes_in": request.content_length or 0,
        "entries": g.get("entries"),
        "care_pathway": g.get("care_pathway"),
        "knowledge_version": rt.pipeline.kb.version if rt.pipeline else None,
        "error_kind": g.get("error_kind"),
    }
    log.info("request", extra={k: v for k, v in line.items() if v is not None})
    return response
