"""The Flask application factory: config, the pipeline (built once), routes, error handlers."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.errors import Issue, SpinefootError, UnsupportedMediaType
from service.knowledge import load_knowledge
from service.metadata import capability_statement, operation_definition
from service.outcome import operation_outcome
from service.pipeline import Pipeline

FHIR_JSON = "application/fhir+json"
_ACCEPTED_TYPES = {"application/fhir+json", "application/json"}
DEFAULTS: dict[str, Any] = {
    "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
    "SPINEFOOT_KNOWLEDGE_DIR": None,  # None = the knowledge base shipped with the package
}
log = logging.getLogger("spinefoot")
api = Blueprint("api", __name__)


def create_app(config: dict[str, Any] | None = None,
               now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Flask:
    """Build the app; the knowledge base is loaded and compiled here, so a bad one fails fast."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.update(config or {})
    kb = load_knowledge(app.config["SPINEFOOT_KNOWLEDGE_DIR"])
    app.extensions["spinefoot"] = Pipeline(kb)
    app.extensions["spinefoot.clock"] = now
    app.register_blueprint(api)
    app.register_error_handler(SpinefootError, _spinefoot_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.before_request(_start_request)
    app.after_request(_log_request)
    return app


def _pipeline() -> Pipeline:
    pipeline: Pipeline = current_app.extensions["spinefoot"]
    return pipeline


def fhir_response(resource: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(resource, ensure_ascii=False), status=status, mimetype=FHIR_JSON)


# ---------------------------------------------------------------- routes


@api.post("/fhir/RiskAssessment/$assess")
def assess() -> Response:
    _require_fhir_json()
    assessment = _pipeline().assess_body(request.get_data(cache=False), request.args.get("asOf"),
                                         current_app.extensions["spinefoot.clock"])
    g.outcome = assessment.pathway
    g.entries = assessment.entry_count
    return fhir_response(assessment.resource)


@api.get("/fhir/metadata")
def metadata() -> Response:
    return fhir_response(capability_statement(_pipeline().kb, _software_version()))


@api.get("/fhir/OperationDefinition/assess")
def assess_definition() -> Response:
    return fhir_response(operation_definition())


@api.get("/healthz")
def healthz() -> Response:
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


@api.get("/readyz")
def readyz() -> Response:
    kb = _pipeline().kb
    return Response(json.dumps({"status": "ready", "knowledge": kb.id, "version": kb.version}),
                    mimetype="application/json")


def _require_fhir_json() -> None:
    params = {k.lower(): v.lower() for k, v in request.mimetype_params.items()}
    if (request.mimetype not in _ACCEPTED_TYPES or params.get("charset", "utf-8") != "utf-8"
            or params.get("fhirversion", "4.0") not in ("4.0", "4.0.1")):
        raise UnsupportedMediaType.single(
            "not-supported",
            f"Content-Type must be application/fhir+json or application/json (UTF-8, FHIR 4.0); "
            f"got {request.content_type or 'none'!r}")


def _software_version() -> str:
    try:
        return version("spinefoot")
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------- errors and request log


def _spinefoot_error(error: SpinefootError) -> Response:
    if error.status >= 500:
        log.error("request_id=%s internal error: %s", g.get("request_id"), error)
        return _generic_500()
    g.outcome = f"error-{error.status}"
    return fhir_response(operation_outcome(error.issues), error.status)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(status, "processing")
    text = {413: f"the body is larger than the limit of "
                 f"{current_app.config['MAX_CONTENT_LENGTH']} bytes"}.get(
        status, error.description or error.name)
    g.outcome = f"error-{status}"
    response = fhir_response(operation_outcome([Issue(code, text)]), status)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return response


def _unexpected_error(error: Exception) -> Response:
    log.exception("request_id=%s unexpected error", g.get("request_id"))
    return _generic_500()


def _generic_500() -> Response:
    g.outcome = "error-500"
    return fhir_response(operation_outcome(
        [Issue("exception", "internal error; the request id is in the X-Request-ID header")]), 500)


def _start_request() -> None:
    g.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    g.started = time.perf_counter()


def _log_request(response: Response) -> Response:
    """Ids, sizes, timings and outcome codes only: never patient data."""
    response.headers["X-Request-ID"] = g.get("request_id", "")
    log.info("request_id=%s method=%s path=%s status=%s bytes_in=%s entries=%s outcome=%s ms=%.1f",
             g.get("request_id"), request.method, request.path, response.status_code,
             request.content_length or 0, g.get("entries", "-"), g.get("outcome", "-"),
             (time.perf_counter() - g.get("started", time.perf_counter())) * 1000)
    return response
