"""The CDS Hooks 2.0 facade: discovery, service calls and feedback, over the same pipeline."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, g, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema
from werkzeug.exceptions import NotFound

from service.assess.parse import parse_json
from service.errors import InvalidRequest, UnsupportedMediaType, first_error
from service.settings import Settings
from service.web.artifact_api import cacheable
from service.web.body import request_body
from service.web.cds.cards import OVERRIDE_REASONS, OVERRIDE_SYSTEM, build_cards
from service.web.cds.fhir_client import FetchLimits, FhirClient
from service.web.cds.orders import match_orders, order_cards, read_draft_orders
from service.web.cds.request import (
    PREFETCH,
    Servers,
    about_patient,
    gather_bundle,
    read_hook_call,
)
from service.web.responses import json_response
from service.web.runtime import runtime

cds = Blueprint("cds", __name__)
_CARD_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
MAX_FEEDBACK_ITEMS = 100
log = logging.getLogger("spinefoot")


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str


_DESCRIPTION = (
    "Could this patient's foot pain come from the back? Checks the record for lumbar "
    "radiculopathy and its nerve root (L4, L5, S1), red flags (above all cauda equina), and local "
    "causes (plantar fasciitis, diabetic neuropathy, vascular disease), and suggests a care "
    "pathway, with the reasons and guideline sources. Decision support only."
)
SERVICES = {
    service.id: service
    for service in (
        CdsService("spinefoot-back-foot", "patient-view", "Spinefoot: back-related foot pain", _DESCRIPTION),
        CdsService(
            "spinefoot-order-select",
            "order-select",
            "Spinefoot: back-related foot pain, when ordering",
            _DESCRIPTION + " Shown when an order is selected, e.g. lumbar imaging or a referral.",
        ),
        CdsService(
            "spinefoot-order-sign",
            "order-sign",
            "Spinefoot: lumbar imaging, referrals and sciatica medicines, when signing",
            "Relates the draft orders (lumbar spine MRI, CT or X-ray; spinal surgery referral; "
            "physiotherapy; epidural injection; gabapentinoids and oral corticosteroids) to "
            "the patient's assessment: red flags give the emergency or urgent card; imaging "
            "or a surgical referral in the first weeks of radicular pain without red flags, "
            "or a medicine NICE NG59 advises against for sciatica, gives its advice. "
            "Decision support only.",
        ),
    )
}


def _service(service_id: str) -> CdsService:
    if service_id not in SERVICES:
        raise NotFound(f"no CDS service {service_id!r}; see GET /cds-services")
    return SERVICES[service_id]


def _authenticate(path: str) -> None:
    verifier = runtime().cds_verifier
    if verifier is not None:
        verifier.verify(request.headers.get("Authorization"), f"{runtime().settings.base_url}{path}")


@cds.get("/cds-services")
def discovery() -> Response:
    _authenticate("/cds-services")
    rt = runtime()
    response = json_response(
        {
            "services": [
                {
                    "hook": s.hook,
                    "title": s.title,
                    "description": s.description,
                    "id": s.id,
                    "prefetch": dict(PREFETCH),
                    "usageRequirements": "Prefetch the templates, or send fhirServer (with "
                    "fhirAuthorization unless the server is open) for a FHIR server "
                    "this service is configured to reach."
                    + (" context.draftOrders is required." if s.hook == "order-sign" else ""),
                }
                for s in SERVICES.values()
            ]
        }
    )
    if rt.artifacts is None:  # the knowledge is still loading: nothing to tag it with
        return response
    return cacheable(response, rt.artifacts.etag, private=rt.cds_verifier is not None)


@cds.post("/cds-services/<service_id>")
def call(service_id: str) -> Response:
    _authenticate(f"/cds-services/{service_id}")  # first: nothing is said to strangers
    service = _service(service_id)
    hook_call = read_hook_call(_json_body())
    rt = runtime()
    pipeline = rt.ready_pipeline()
    drafts = None
    if service.hook == "order-sign":  # nothing ordered that the knowledge speaks of: no card
        drafts = match_orders(
            pipeline.kb,
            read_draft_orders(
                hook_call.context, lambda order: about_patient(order, hook_call.patient_id, {})
            ),
        )
        if not drafts:
            return json_response({"cards": []})
    servers = Servers(rt.settings.cds_fhir_servers, rt.settings.cds_open_fhir_servers)
    bundle = gather_bundle(hook_call, servers, _client_factory(rt.settings))
    if bundle is None:
        return json_response({"cards": []})
    assessment = pipeline.assess_bundle(bundle, rt.clock(), rt.budget())
    rt.note(assessment)
    cards = (
        build_cards(pipeline.kb, assessment.explanation, assessment.resource, hook_call.hook_instance)
        if drafts is None
        else order_cards(
            pipeline.kb, assessment.explanation, assessment.resource, hook_call.hook_instance, drafts
        )
    )
    return json_response({"cards": cards})


def _client_factory(settings: Settings) -> Callable[[str, str | None], FhirClient]:
    limits = FetchLimits(
        settings.cds_fetch_timeout,
        settings.cds_fetch_max_pages,
        settings.cds_fetch_max_bytes,
        settings.cds_fetch_deadline,
        settings.max_json_depth,
    )
    return lambda base, token: FhirClient(base, token, limits)


class _Coding(Schema):
    class Meta:
        unknown = EXCLUDE

    code = fields.String(required=True)
    system = fields.String()
    display = fields.String()


class _OverrideReason(Schema):
    class Meta:
        unknown = EXCLUDE

    reason = fields.Nested(_Coding)
    userComment = fields.String()

    # issue 14: a reason must be one the card offered (service/web/cds/cards.py OVERRIDE_REASONS)
    @validates_schema
    def _offered(self, data: dict[str, Any], **_: Any) -> None:
        reason = data.get("reason")
        if reason and (reason.get("system") != OVERRIDE_SYSTEM or reason["code"] not in OVERRIDE_REASONS):
            raise ValidationError(
                f"must be one of the card's overrideReasons "
                f"({OVERRIDE_SYSTEM}: {', '.join(OVERRIDE_REASONS)})",
                "reason",
            )


class _Feedback(Schema):
    class Meta:
        unknown = EXCLUDE

    # the uuid of one of this service's cards: checked before it is logged (client text never is)
    card = fields.String(required=True, validate=validate.Regexp(_CARD_UUID, error="must be a card's uuid"))
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    acceptedSuggestions = fields.List(fields.Dict(keys=fields.String()))
    overrideReason = fields.Nested(_OverrideReason)
    outcomeTimestamp = fields.String(required=True)

    @validates_schema
    def _accepted_names_suggestions(self, data: dict[str, Any], **_: Any) -> None:
        if data["outcome"] == "accepted" and not data.get("acceptedSuggestions"):
            raise ValidationError("is required when outcome is accepted", "acceptedSuggestions")


class FeedbackSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    feedback = fields.List(
        fields.Nested(_Feedback),
        required=True,  # one log line each
        validate=validate.Length(min=1, max=MAX_FEEDBACK_ITEMS),
    )


@cds.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    _authenticate(f"/cds-services/{service_id}")
    service = _service(service_id)
    try:
        items = FeedbackSchema().load(_json_body())["feedback"]
    except ValidationError as exc:
        field, message = first_error(exc.messages_dict)
        raise InvalidRequest.single("invalid", f"{field}: {message}", field) from None
    for item in items:  # the card id and outcome only: a comment may name the patient
        runtime().metrics.cds_feedback.labels(service.id, item["outcome"]).inc()
        log.info(
            "cds feedback",
            extra={"request_id": g.get("request_id"), "card": item["card"], "outcome": item["outcome"]},
        )
    return Response(status=200)


def _json_body() -> Any:
    if request.mimetype != "application/json":
        raise UnsupportedMediaType.single(
            "not-supported", f"Content-Type must be application/json; got {request.content_type or 'none'!r}"
        )
    return parse_json(request_body(), runtime().ready_pipeline().limits)
