"""FHIR R4 validation: the only module that imports fhir.resources (R4B models = R4 here).

The models check structure, cardinality and types but not required bindings, so the codes of
the elements the service reads (statuses, Bundle.type) are checked here against the R4 value sets.
Resource types the service does not read, and resources whose codes the knowledge base does not
use (service.assess.relevance), are never validated: they are skipped and named in a note.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from service.errors import Issue

READ_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "Observation",
        "Procedure",
        "MedicationStatement",
        "MedicationRequest",
    }
)

_ENTRY_PARTS = frozenset({"fullUrl", "resource", "request", "search", "response"})

CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# R4 required bindings on the elements the service reads (hl7.org/fhir/R4 value sets).
_REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Bundle", "type"): frozenset(
        {
            "document",
            "message",
            "transaction",
            "transaction-response",
            "batch",
            "batch-response",
            "history",
            "searchset",
            "collection",
        }
    ),
    ("Observation", "status"): frozenset(
        {
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
    ("Procedure", "status"): frozenset(
        {
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        }
    ),
    ("MedicationStatement", "status"): frozenset(
        {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken"}
    ),
    ("MedicationRequest", "status"): frozenset(
        {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"}
    ),
}
_REQUIRED_CONCEPTS: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("Condition", "clinicalStatus"): (
        CONDITION_CLINICAL,
        frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"}),
    ),
    ("Condition", "verificationStatus"): (
        CONDITION_VERIFICATION,
        frozenset({"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"}),
    ),
}


def validate_bundle(
    bundle: dict[str, Any], tick: Callable[[], None] = lambda: None, unread: Container[int] = ()
) -> list[Issue]:
    """Every R4 error in the bundle envelope and the resources the service reads.

    The envelope is validated without its resources, then each resource read with its own model,
    so that error paths and costs stay per resource; `tick` runs before each (a time budget).
    The entries in `unread` (by index: codes the knowledge base does not use) are not validated.
    """
    entries = bundle.get("entry")
    envelope = dict(bundle)
    checked: list[int] = []  # the entries the envelope's model sees, by index in the bundle
    if isinstance(entries, list):
        checked = [i for i, entry in enumerate(entries) if not _plain_entry(entry)]
        envelope["entry"] = [_without_resource(entries[i]) for i in checked]
        if entries and not checked:
            del envelope["entry"]
    issues = _model_issues(Bundle, envelope, "Bundle", checked)
    issues += _binding_issues("Bundle", bundle, "Bundle")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if i in unread:  # a JSON object with its type, found so by service.assess.relevance
            continue
        tick()
        resource = entry.get("resource") if isinstance(entry, dict) else None
        rtype = _resource_type(resource)
        path = f"Bundle.entry[{i}].resource"
        if isinstance(resource, dict) and rtype is None:
            issues.append(
                Issue(
                    "required",
                    f"{path}.resourceType: a resource needs its type (a string)",
                    f"{path}.resourceType",
                )
            )
        elif resource is not None and not isinstance(resource, dict):
            issues.append(Issue("structure", f"{path}: must be a JSON object", path))
        elif rtype in READ_TYPES and isinstance(resource, dict):
            issues += _model_issues(get_fhir_model_class(rtype), resource, path)
            issues += _binding_issues(rtype, resource, path)
    return issues


def validate_resource(resource: dict[str, Any], path: str | None = None) -> list[Issue]:
    """R4 errors of one resource of any type (used for Parameters and for our own output)."""
    resource_type = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(resource_type))
    except (KeyError, ValueError):
        return [
            Issue(
                "structure",
                f"unknown resourceType {resource_type!r}",
                f"{path}.resourceType" if path else "resourceType",
            )
        ]
    return _model_issues(model, resource, path or str(resource_type))


def _plain_entry(entry: Any) -> bool:
    """An entry the envelope's model is certain to accept (a fullUrl that is not empty and holds
    no whitespace, where the model's uri allows `\\S*`, and the parts validated on their own or
    ignored): the model costs ~15 µs an entry, this ~0.3."""
    if type(entry) is not dict or not _ENTRY_PARTS.issuperset(entry):
        return False
    full_url = entry.get("fullUrl", "-")
    return type(full_url) is str and full_url.split() == [full_url]  # str.split's whitespace is the regex \s


def _without_resource(entry: Any) -> Any:
    """The entry as the envelope is validated: its resource is validated on its own, and
    `request`, `search` and `response` are ignored by this service (contract §2)."""
    if not isinstance(entry, dict):
        return entry
    return {k: v for k, v in entry.items() if k not in ("resource", "request", "search", "response")}


def _resource_type(resource: Any) -> str | None:
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    return rtype if isinstance(rtype, str) else None


def _model_issues(
    model: Any, data: dict[str, Any], root: str, entries: list[int] | None = None
) -> list[Issue]:
    """The model's errors as issues; `entries` maps the envelope's entries back to the bundle's."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            if entries is not None and loc[:1] == ("entry",) and len(loc) > 1 and isinstance(loc[1], int):
                loc = ("entry", entries[loc[1]], *loc[2:])
            issues.append(
                Issue(
                    "structure" if err["type"] != "missing" else "required",
                    f"{_expression(root, loc)}: {err['msg']}",
                    _expression(root, loc),
                )
            )
        return issues
    except (TypeError, ValueError, RecursionError) as exc:
        return [Issue("structure", f"{root}: not a valid FHIR resource ({type(exc).__name__})", root)]
    return []


def _expression(root: str, loc: Iterable[Any]) -> str:
    """pydantic's error location -> a FHIRPath-like expression (`Bundle.entry[3].resource.status`)."""
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _binding_issues(resource_type: str, resource: dict[str, Any], path: str) -> list[Issue]:
    issues = []
    for (rtype, element), allowed in _REQUIRED_CODES.items():
        value = resource.get(element)
        if rtype == resource_type and isinstance(value, str) and value not in allowed:
            issues.append(
                Issue(
                    "code-invalid",
                    f"{path}.{element}: {value!r} is not in the required value set "
                    f"({', '.join(sorted(allowed))})",
                    f"{path}.{element}",
                )
            )
    for (rtype, element), (system, allowed) in _REQUIRED_CONCEPTS.items():
        value = resource.get(element)
        if rtype != resource_type or not isinstance(value, dict):
            continue
        codings = value.get("coding")
        codings = codings if isinstance(codings, list) else []
        if not any(
            isinstance(c, dict)
            and c.get("system") == system
            and isinstance(c.get("code"), str)
            and c["code"] in allowed
            for c in codings
        ):
            issues.append(
                Issue(
                    "code-invalid",
                    f"{path}.{element}: needs a coding from {system} ({', '.join(sorted(allowed))})",
                    f"{path}.{element}",
                )
            )
    return issues
