"""CDS Hooks 2.0 service calls: validate the request, then gather the patient's Bundle.

The Bundle is made from prefetch (single resources or searchset Bundles, any subset of the keys)
and, for keys not prefetched, from the client's FHIR server when the request allows it. The
result goes through the same pipeline as `$assess`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from service.errors import InvalidRequest, PreconditionFailed, first_error
from service.web.cds.fhir_client import FhirClient, bundle_entries, same_server

# What the knowledge base reads, as CDS Hooks prefetch templates (published by discovery).
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}",
}
SUBJECT_TYPES = (
    "Condition",
    "Observation",
    "Procedure",
    "MedicationStatement",
    "MedicationRequest",
    "ServiceRequest",
)  # read by patient: prefetch, draft orders
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
PLACEHOLDER = "..."
_ABSENT = object()


class _Authorization(Schema):
    class Meta:
        unknown = EXCLUDE

    access_token = fields.String(required=True, validate=validate.Length(min=1))
    token_type = fields.String(required=True, validate=validate.OneOf(["Bearer"]))
    expires_in = fields.Integer(required=True, validate=validate.Range(min=0))
    scope = fields.String(required=True)
    subject = fields.String(required=True)


class HookRequestSchema(Schema):
    """The request body of CDS Hooks 2.0 §Calling a CDS Service (unknown members ignored)."""

    class Meta:
        unknown = EXCLUDE

    hook = fields.String(required=True, validate=validate.Length(min=1))
    hookInstance = fields.UUID(required=True)
    fhirServer = fields.Url(require_tld=False, schemes={"http", "https"})
    fhirAuthorization = fields.Nested(_Authorization)
    context = fields.Dict(keys=fields.String(), required=True)
    prefetch = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))
    extension = fields.Dict(keys=fields.String())

    @validates_schema
    def _rules(self, data: dict[str, Any], **_: Any) -> None:
        if "fhirAuthorization" in data and "fhirServer" not in data:
            raise ValidationError("is required when fhirAuthorization is given", "fhirServer")
        patient = data["context"].get("patientId")
        if not isinstance(patient, str) or not _FHIR_ID.fullmatch(patient) or patient in (".", ".."):
            raise ValidationError("is required: the id of the patient (a FHIR id)", "context.patientId")
        for key in PREFETCH:
            value = (data.get("prefetch") or {}).get(key)
            if value is not None and not (isinstance(value, dict) and "resourceType" in value):
                raise ValidationError("must be a FHIR resource or null", f"prefetch.{key}")


@dataclass(frozen=True)
class HookCall:
    hook_instance: str
    patient_id: str
    prefetch: dict[str, Any]
    fhir_server: str | None
    token: str | None
    context: dict[str, Any]


def read_hook_call(document: Any) -> HookCall:
    """The validated call, or 400 naming the member at fault."""
    if not isinstance(document, dict):
        raise InvalidRequest.single("structure", "the body must be a CDS Hooks request object")
    placeholder = _find_placeholder(document, "")
    if placeholder is not None:
        raise InvalidRequest.single(
            "structure",
            f"the request holds a documentation placeholder ('{PLACEHOLDER}') at "
            f"{placeholder or 'its top level'}: send the full content",
            placeholder,
        )
    try:
        data = HookRequestSchema().load(document)
    except ValidationError as exc:
        field, message = first_error(exc.messages_dict)
        raise InvalidRequest.single("invalid", f"{field}: {message}", field) from None
    authorization = data.get("fhirAuthorization") or {}
    return HookCall(
        str(data["hookInstance"]),
        data["context"]["patientId"],
        data.get("prefetch") or {},
        data.get("fhirServer"),
        authorization.get("access_token"),
        data["context"],
    )


def _find_placeholder(node: Any, path: str) -> str | None:
    if node == PLACEHOLDER:
        return path
    children: Iterable[tuple[str, Any]] = (
        node.items()
        if isinstance(node, dict)
        else ((str(i), v) for i, v in enumerate(node))
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        where = f"{path}.{key}" if path else key
        if key == PLACEHOLDER:
            return where
        found = _find_placeholder(child, where)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------- the patient's Bundle


@dataclass(frozen=True)
class Servers:
    """The FHIR servers a call may make the service fetch from (the site's settings)."""

    tokened: tuple[str, ...] = ()  # with the call's bearer token: SPINEFOOT_CDS_FHIR_SERVERS
    open: tuple[str, ...] = ()  # without any token: SPINEFOOT_CDS_OPEN_FHIR_SERVERS


def gather_bundle(
    call: HookCall, servers: Servers, client: Callable[[str, str | None], FhirClient]
) -> dict[str, Any] | None:
    """Prefetch first; missing keys (absent, or an OperationOutcome) from the FHIR server.

    None when there is nothing at all about the patient (no card to show).
    """
    entries: list[dict[str, Any]] = []
    missing = []
    for key in PREFETCH:
        value = call.prefetch.get(key, _ABSENT)
        if value is _ABSENT or (isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"):
            missing.append(key)
        elif value is not None:
            entries.extend(_entries_of(value))
    if missing:
        entries.extend(_fetch(call, missing, servers, client))
    if not entries:
        return None
    _check_patient(entries, call.patient_id)
    return {"resourceType": "Bundle", "type": "collection", "entry": _distinct(entries)}


def _fetch(
    call: HookCall, keys: list[str], servers: Servers, client: Callable[[str, str | None], FhirClient]
) -> list[dict[str, Any]]:
    """A token goes only to a server allowed for tokens; with no token, only an open server
    is asked (as the CDS Hooks sandbox calls, with no fhirAuthorization)."""
    lacking = ", ".join(keys)
    if not call.fhir_server:
        raise PreconditionFailed.single(
            "incomplete",
            f"prefetch lacks {lacking}, and the request has no fhirServer to fetch them from",
            "prefetch",
        )
    allowed, setting = (
        (servers.tokened, "SPINEFOOT_CDS_FHIR_SERVERS")
        if call.token
        else (servers.open, "SPINEFOOT_CDS_OPEN_FHIR_SERVERS")
    )
    if not any(same_server(call.fhir_server, server) for server in allowed):
        raise PreconditionFailed.single(
            "security" if call.token or allowed else "incomplete",
            f"prefetch lacks {lacking}, and this service may not fetch from {call.fhir_server} "
            f"{'with' if call.token else 'without'} a token (allowed: {setting})",
            "fhirServer",
        )
    found: list[dict[str, Any]] = []
    with client(call.fhir_server, call.token) as fhir:
        for key in keys:
            found.extend(
                fhir.get(PREFETCH[key].replace("{{context.patientId}}", quote(call.patient_id, safe="")))
            )
    return found


def _check_patient(entries: list[dict[str, Any]], patient_id: str) -> None:
    """Every Patient must be `context.patientId`, and every resource read must name it as its
    subject: a card about another patient is the worst answer this service could give."""
    targets = {e["fullUrl"]: e["resource"] for e in entries if isinstance(e.get("fullUrl"), str)}
    foreign = [
        f"{resource.get('resourceType')}/{resource.get('id', '?')}"
        for resource in (entry["resource"] for entry in entries)
        if not about_patient(resource, patient_id, targets)
    ]
    if foreign:
        raise PreconditionFailed.single(
            "conflict",
            f"the data gathered holds {len(foreign)} resource(s) not about "
            f"context.patientId ({', '.join(foreign[:5])}); no card is given",
            "context.patientId",
        )


def about_patient(resource: dict[str, Any], patient_id: str, targets: dict[str, Any]) -> bool:
    """The resource is the Patient `patient_id`, names it as its subject, or is not read."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        return resource.get("id") == patient_id
    if rtype not in SUBJECT_TYPES:
        return True  # not read by the assessment
    subject = resource.get("subject")  # not yet validated: anything may be there
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(reference, str):
        return False  # no subject, or only an identifier: it cannot be shown to be this patient
    target = targets.get(reference)
    if isinstance(target, dict):
        return target.get("resourceType") == "Patient" and target.get("id") == patient_id
    return reference.rstrip("/").split("/")[-2:] == ["Patient", patient_id]


def _entries_of(value: dict[str, Any]) -> list[dict[str, Any]]:
    return bundle_entries(value) if value.get("resourceType") == "Bundle" else [{"resource": value}]


def _distinct(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same resource may come from two keys (or pages): keep its first copy."""
    seen: set[str] = set()
    result = []
    for entry in entries:
        rtype, rid = entry["resource"].get("resourceType"), entry["resource"].get("id")
        key = f"{rtype}/{rid}" if isinstance(rtype, str) and isinstance(rid, str) else None
        if key is not None:  # anything odd is kept, for validation to report
            if key in seen:
                continue
            seen.add(key)
        result.append(entry)
    return result
