"""Routes for the knowledge as FHIR artifacts (read-only) and `PlanDefinition/$apply`.

Everything here but `$apply` is static per knowledge version, so it is sent with an entity
tag and `Cache-Control`, and a matching `If-None-Match` is answered 304 (werkzeug's
conditional responses).
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, request
from werkzeug.exceptions import NotFound

from service.assess.parse import parse_json
from service.web.body import request_body
from service.web.media import require_fhir_json
from service.web.plan_apply import assess_parameters, care_plan
from service.web.responses import fhir_response
from service.web.runtime import runtime

artifacts = Blueprint("artifacts", __name__)
CACHE_CONTROL = "public, max-age=300"  # revalidated by ETag after 5 minutes


def cacheable(response: Response, etag: str, private: bool = False) -> Response:
    """`response` with its entity tag, or 304 when the client's copy matches it."""
    response.set_etag(etag)
    response.headers["Cache-Control"] = (
        CACHE_CONTROL.replace("public", "private") if private else CACHE_CONTROL
    )
    response.make_conditional(request)  # in place: 304 without a body when it matches
    return response


def _artifact(resource_type: str, resource_id: str) -> Response:
    found = runtime().ready_artifacts()
    resource = {"PlanDefinition": found.plan_definition, "Library": found.library}[resource_type]
    if resource_id != resource["id"]:
        raise NotFound(f"no {resource_type} {resource_id!r}; this server has {resource['id']}")
    return cacheable(fhir_response(resource), found.etag)


@artifacts.get("/fhir/PlanDefinition/<resource_id>")
def plan_definition(resource_id: str) -> Response:
    return _artifact("PlanDefinition", resource_id)


@artifacts.get("/fhir/Library/<resource_id>")
def library(resource_id: str) -> Response:
    return _artifact("Library", resource_id)


@artifacts.get("/fhir/ValueSet/<resource_id>")
def value_set(resource_id: str) -> Response:
    found = runtime().ready_artifacts()
    if resource_id not in found.value_sets:
        raise NotFound(f"no ValueSet {resource_id!r}; GET /fhir/ValueSet lists them")
    return cacheable(fhir_response(found.value_sets[resource_id]), found.etag)


@artifacts.get("/fhir/ValueSet")
def value_sets() -> Response:
    found = runtime().ready_artifacts()
    url = request.args.get("url")
    bundle = found.value_set_bundle()
    if url is not None:  # the canonical, optionally with |version
        canonical, _, version = url.partition("|")
        entries = [
            e
            for e in bundle.pop("entry")
            if e["resource"]["url"] == canonical and version in ("", e["resource"]["version"])
        ]
        bundle.update({"total": len(entries), **({"entry": entries} if entries else {})})
    # the client's text never goes into a header: a digest of it does
    tag = f"{found.etag}-{hashlib.sha256(url.encode()).hexdigest()[:16]}" if url else found.etag
    return cacheable(fhir_response(bundle), tag)


@artifacts.post("/fhir/PlanDefinition/<resource_id>/$apply")
def apply(resource_id: str) -> Response:
    rt = runtime()
    plan = rt.ready_artifacts().plan_definition
    if resource_id != plan["id"]:
        raise NotFound(f"no PlanDefinition {resource_id!r}; this server has {plan['id']}")
    require_fhir_json()
    pipeline = rt.ready_pipeline()
    subject, body = assess_parameters(parse_json(request_body(), pipeline.limits))
    assessment = pipeline.assess_body(body, request.args.get("asOf"), rt.clock, rt.budget())
    rt.note(assessment)
    return fhir_response(care_plan(pipeline.kb, plan, assessment, subject))
