"""From request body to one patient's countable resources (contract §1–2).

Parses the body (Bundle, or Parameters with `bundle` and `asOf`), validates it as R4, resolves
references inside the bundle, checks there is one subject, and keeps the resources that count
by their status, recording why anything else was set aside.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from service import fhir
from service.dates import EARLIEST, LATEST, parse_date, parse_instant, within_range
from service.errors import InvalidRequest, InvalidResource, Issue, PayloadTooLarge, Unprocessable
from service.relevance import TEXT_ONLY, UNKNOWN, Relevance

CLINICAL_TYPES = ("Condition", "Observation", "Procedure", "MedicationStatement",
                  "MedicationRequest")
_OBSERVATION_COUNTS = {"final", "amended", "corrected", "preliminary", "registered"}
_PROCEDURE_COUNTS = {"completed", "in-progress"}
_MEDICATION_COUNTS = {"active", "completed", "intended"}
_CONDITION_IGNORED = {"refuted", "entered-in-error"}
_CONDITION_HISTORY = {"inactive", "resolved", "remission"}
# The instants the assessment reads, by type (each a path of member names)
_READ_INSTANTS = {
    "Patient": (("birthDate",),),
    "Condition": (("onsetDateTime",), ("onsetPeriod", "start"), ("recordedDate",)),
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "start"), ("issued",)),
}
# The numbers it reads, with the range it can compute with (onsetAge is years from birth)
_READ_NUMBERS = {
    "Condition": ((("onsetAge", "value"), 0.0, 150.0),),
    "Observation": ((("valueQuantity", "value"), -1e15, 1e15),),
}
_RANGE = f"{EARLIEST.year}–{LATEST.year - 1}"


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # cheap test on the raw body first
# Byte patterns for looking at a body's structure without walking the parsed document
_ESCAPED_QUOTE_OR_BACKSLASH = re.compile(rb'\\["\\]')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_STRING = re.compile(rb'"[^"]*"')
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19  # orjson reads an integer this long (beyond 64 bits) as a float
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Limits:
    """What a request may cost: configurable (settings), checked before FHIR validation."""

    max_entries: int = 10_000
    max_depth: int = 64


@dataclass(frozen=True)
class AssessInput:
    bundle: dict[str, Any]
    as_of: datetime


@dataclass(frozen=True)
class Resource:
    """A resource that counts: its JSON, how the bundle refers to it, and its place."""

    type: str
    data: dict[str, Any]
    ref: str
    history: bool = False  # a Condition whose clinicalStatus is inactive/resolved/remission
    derived_from: tuple[str, ...] = ()  # refs of the counted resources it was derived from


@dataclass(frozen=True)
class PatientRecord:
    subject: str
    birth_date: date | None
    resources: tuple[Resource, ...]
    entry_count: int
    notes: tuple[str, ...]
    patient: dict[str, Any] | None = None  # the Patient resource, for a durable subject reference


# ---------------------------------------------------------------- body -> bundle and asOf


def read_body(body: bytes, as_of_query: str | None, now: Callable[[], datetime],
              limits: Limits) -> AssessInput:
    """Decode and unwrap the request; `now` is consulted only when no asOf is given."""
    document = parse_json(body, limits)
    if not isinstance(document, dict) or document.get("resourceType") not in ("Bundle",
                                                                                  "Parameters"):
        raise InvalidRequest.single(
            "structure", "the body must be a FHIR Bundle or a Parameters resource", "resourceType")
    as_of_text = as_of_query
    if document["resourceType"] == "Parameters":
        document, as_of_param = _unwrap_parameters(document)
        as_of_text = as_of_param or as_of_text
    as_of = _parse_as_of(as_of_text) if as_of_text is not None else now()
    return AssessInput(document, as_of)


def parse_json(body: bytes, limits: Limits) -> Any:
    """UTF-8 JSON within the nesting limit, or 400."""
    plain = _ESCAPED_QUOTE_OR_BACKSLASH.sub(b"", body) if b"\\" in body else body
    document = _decode(body, plain)
    if _nesting_exceeds(plain, limits.max_depth):
        raise InvalidRequest.single("too-costly", f"the JSON body is nested more than "
                                                  f"{limits.max_depth} levels deep")
    if _SURROGATE_ESCAPE.search(body):
        _reject_lone_surrogates(document)
    return document


def _decode(body: bytes, plain: bytes) -> Any:
    """orjson (twice as fast) for what it reads as the standard library does; what it refuses
    (a BOM, NaN, bad UTF-8, nesting past 1,024) or would read differently (an integer beyond 64
    bits, which it makes a float) goes to the standard library, whose answers and messages
    are the service's."""
    if not _has_long_integer(plain):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest.single("structure", "the body is not UTF-8") from None
    except RecursionError:
        raise InvalidRequest.single("too-costly", "the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise InvalidRequest.single("structure", f"the body is not valid JSON: {exc}") from None


def _has_long_integer(plain: bytes) -> bool:
    """A number of 19 digits or more outside a string (`plain`: the body without escaped
    quotes and backslashes, so an even count of quotes before a place means outside)."""
    digits = plain.translate(_DIGITS_AS_ZEROS)
    quotes, counted = 0, 0
    found = digits.find(_LONG_RUN)
    while found >= 0:
        quotes += plain.count(b'"', counted, found)
        counted = found
        if quotes % 2 == 0:
            return True
        end = digits.find(b" ", found)  # past this run of digits, inside a string
        found = digits.find(_LONG_RUN, end) if end >= 0 else -1
    return False


def _reject_lone_surrogates(document: Any) -> None:
    """A `\\uD800`-style escape without its pair decodes to a string no UTF-8 output can hold
    (it made a 500 wherever it was echoed, e.g. an unread type's name in a note): 400 instead."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest.single("structure", "the body holds an unpaired UTF-16 surrogate "
                                                 "escape (\\uD800-\\uDFFF)",
                                    _surrogate_path(document, _root_name(document))) from None


def _root_name(document: Any) -> str:
    """The resource type as the root of an expression, where it is a plain name."""
    name = document.get("resourceType") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name.isascii() and name.isalpha() else "$"


def _surrogate_path(node: Any, path: str) -> str | None:
    """Where the first unpaired surrogate is (a key or a value), as a path from `$`."""
    items = (node.items() if isinstance(node, dict)
             else enumerate(node) if isinstance(node, list) else ())
    for key, child in items:
        where = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]"
        if isinstance(key, str) and _LONE_SURROGATE.search(key):
            return where
        if isinstance(child, str) and _LONE_SURROGATE.search(child):
            return where
        found = _surrogate_path(child, where)
        if found:
            return found
    return None


def _nesting_exceeds(plain: bytes, limit: int) -> bool:
    """On the parsed body's bytes, without its escaped quotes and backslashes (`plain`): only
    quotes and brackets are kept (braces as brackets: valid JSON nests them properly), strings
    with the brackets in them are removed, and each pass that removes the innermost pairs is
    one level. It needs no stack however deep the body is, and bytes methods do it: measured
    3× cheaper than walking the parsed document."""
    text = plain.translate(_BRACES_AS_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in text:  # removing adjacent quotes keeps the others in or out of strings
        text = _STRING.sub(b"", text)
    depth = 0
    while text:
        depth += 1
        inner = text.replace(b"[]", b"")
        if depth > limit or len(inner) == len(text):
            return True
        text = inner
    return False


def check_entry_count(bundle: dict[str, Any], limits: Limits) -> None:
    entries = bundle.get("entry")
    if isinstance(entries, list) and len(entries) > limits.max_entries:
        raise PayloadTooLarge.single("too-costly", f"the Bundle has {len(entries)} entries; the "
                                                   f"limit is {limits.max_entries}", "Bundle.entry")


def _unwrap_parameters(parameters: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    params = parameters.get("parameter")
    envelope = {**parameters, "parameter": [
        {k: v for k, v in p.items() if k != "resource"} if isinstance(p, dict) else p
        for p in params] if isinstance(params, list) else params}
    issues = fhir.validate_resource(envelope, "Parameters")
    if issues:
        raise InvalidResource(issues)
    bundle, as_of = None, None
    for i, param in enumerate(params or []):
        if param.get("name") == "bundle":
            bundle = param.get("resource")
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                raise InvalidRequest.single("structure", "parameter 'bundle' must hold a Bundle",
                                            f"Parameters.parameter[{i}].resource")
        elif param.get("name") == "asOf":
            as_of = param.get("valueDateTime")
            if as_of is None:
                raise InvalidRequest.single("structure", "parameter 'asOf' needs a valueDateTime",
                                            f"Parameters.parameter[{i}]")
    if bundle is None:
        raise InvalidRequest.single("required", "Parameters has no 'bundle' parameter",
                                    "Parameters.parameter")
    return bundle, as_of


def _parse_as_of(text: str) -> datetime:
    try:
        as_of = parse_instant(text)
    except ValueError:
        raise InvalidRequest.single("value", f"asOf {text!r} is not a FHIR dateTime",
                                    "asOf") from None
    if not within_range(as_of):
        raise InvalidRequest.single("value", f"asOf {text!r} is outside the years {_RANGE}",
                                    "asOf")
    return as_of


# ---------------------------------------------------------------- bundle -> patient record


def read_bundle(bundle: dict[str, Any], tick: Callable[[], None] = lambda: None,
                relevance: Relevance | None = None) -> PatientRecord:
    """Validate what is read and make the record; with `relevance`, the resources whose codes
    the knowledge base does not use are set aside first, never validated (without it, as the
    tests' reference, every resource of a type read is read)."""
    unread = _unread(bundle, relevance) if relevance is not None else {}
    issues = fhir.validate_bundle(bundle, tick, unread) or _out_of_range(bundle, unread)
    if issues:
        raise InvalidResource(issues)
    return patient_record(bundle, unread)


def _unread(bundle: dict[str, Any], relevance: Relevance) -> dict[int, str]:
    """Entry index -> why its resource is not read (see service.relevance)."""
    entries = bundle.get("entry")
    unread = {}
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        why = relevance.why_unread(resource) if isinstance(resource, dict) else None
        if why is not None:
            unread[i] = why
    return unread


def _out_of_range(bundle: dict[str, Any], unread: Mapping[int, str]) -> list[Issue]:
    """Valid R4 that the assessment cannot compute with: instants near years 1 or 9999, an onset
    age beyond a lifetime, a quantity no float holds (each overflowed somewhere: a 500)."""
    issues = []
    for i, entry in enumerate(bundle.get("entry") or []):
        if i in unread:
            continue
        resource = entry.get("resource") or {}
        where = f"Bundle.entry[{i}].resource"
        for path in _READ_INSTANTS.get(str(resource.get("resourceType")), ()):
            value = _member(resource, path)
            if isinstance(value, str) and not _instant_within_range(value):
                issues.append(Issue("value", f"{value!r} is outside the years {_RANGE}",
                                    f"{where}.{'.'.join(path)}"))
        for path, low, high in _READ_NUMBERS.get(str(resource.get("resourceType")), ()):
            value = _member(resource, path)
            if isinstance(value, int | float) and not _number_within(value, low, high):
                issues.append(Issue("value", f"{'.'.join(path)} is not a number from {low:g} "
                                             f"to {high:g}", f"{where}.{'.'.join(path)}"))
    return issues


def _number_within(value: float, low: float, high: float) -> bool:
    """Also for a 4,300-digit integer, which no float can hold (it made a 500 when formatted)."""
    try:
        return math.isfinite(float(value)) and low <= value <= high
    except OverflowError:
        return False


def _instant_within_range(value: str) -> bool:
    try:
        return within_range(parse_instant(value))
    except ValueError:
        return True  # a form R4 allows and this parser does not: the facts skip it, as before


def _member(resource: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = resource
    for name in path:
        node = node.get(name) if isinstance(node, dict) else None
    return node


def patient_record(bundle: dict[str, Any], unread: Mapping[int, str] | None = None
                   ) -> PatientRecord:
    """The one patient and the resources that count, from a bundle already validated; the
    entries in `unread` are named in a note and held to the one-subject rule, nothing more."""
    unread = unread or {}
    _check_unique_full_urls(bundle.get("entry") or [])
    indexed = [(i, e) for i, e in enumerate(bundle.get("entry") or [])
               if isinstance(e.get("resource"), dict)]
    entries = [e for _, e in indexed]
    refs = _ReferenceIndex(entries)
    notes = _unread_notes(entries, [(unread[i], e["resource"]["resourceType"])
                                    for i, e in indexed if i in unread])
    patients = [e for e in entries if e["resource"]["resourceType"] == "Patient"]
    clinical = [e for e in entries if e["resource"]["resourceType"] in CLINICAL_TYPES]
    subject = _single_subject(patients, clinical, refs)
    counted = []
    for i, entry in indexed:
        if i in unread or entry["resource"]["resourceType"] not in CLINICAL_TYPES:
            continue
        why_not = _why_not_counted(entry["resource"])
        if why_not:
            notes.append(f"Ignored {refs.ref_of(entry)}: {why_not}.")
        else:
            counted.append(entry)
    counted_refs = {refs.ref_of(entry) for entry in counted}
    resources = []
    for entry in counted:
        resource = entry["resource"]
        sources = (refs.ref_of(entries[i]) for i in _resolved(refs, resource.get("derivedFrom")))
        resources.append(Resource(resource["resourceType"], resource, refs.ref_of(entry),
                                  _is_history(resource),
                                  tuple(r for r in sources if r in counted_refs)))
    birth = patients[0]["resource"].get("birthDate") if patients else None
    return PatientRecord(subject, parse_date(birth) if birth else None, tuple(resources),
                         len(bundle.get("entry") or []), tuple(notes),
                         patients[0]["resource"] if patients else None)


def _unread_notes(entries: list[dict[str, Any]], unread: list[tuple[str, str]]) -> list[str]:
    """One note per reason a resource was not read, with the count of each type."""
    notes = []
    reasons = (("types this service does not use", Counter(
                   e["resource"]["resourceType"] for e in entries
                   if e["resource"]["resourceType"] not in fhir.READ_TYPES)),
               ("codes the knowledge base does not use",
                Counter(rtype for why, rtype in unread if why == UNKNOWN)),
               ("coded only in text, which is not interpreted: review them",
                Counter(rtype for why, rtype in unread if why == TEXT_ONLY)))
    for reason, counts in reasons:
        if counts:
            notes.append(f"Not read ({reason}): " + ", ".join(
                f"{count} {rtype}" for rtype, count in sorted(counts.items())) + ".")
    return notes


def _check_unique_full_urls(entries: list[dict[str, Any]]) -> None:
    """R4 bdl-7: entries sharing a fullUrl (other than versions of one resource) are an error,
    never one resource: two Patients under one fullUrl would otherwise merge into one."""
    full_urls = [url for url in (entry.get("fullUrl") for entry in entries) if url]
    if len(set(full_urls)) == len(full_urls):  # the usual case, found without looking at versions
        return
    seen: set[tuple[Any, Any]] = set()
    for i, entry in enumerate(entries):
        full_url = entry.get("fullUrl")
        resource = entry.get("resource")
        meta = resource.get("meta") if isinstance(resource, dict) else None
        version = meta.get("versionId") if isinstance(meta, dict) else None
        version = version if isinstance(version, str) else None
        if full_url and (full_url, version) in seen:
            raise InvalidResource.single("invariant", "two entries of the bundle have the same "
                                                      "fullUrl (bdl-7)", f"Bundle.entry[{i}].fullUrl")
        seen.add((full_url, version))


class _ReferenceIndex:
    """Resolves references inside the bundle: fullUrl (incl. urn:uuid), Type/id, absolute URLs."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._keys: dict[str, int] = {}
        for i, entry in enumerate(entries):
            resource = entry["resource"]
            local = f"{resource['resourceType']}/{resource['id']}" if resource.get("id") else None
            full = entry.get("fullUrl")
            for key in (full, local):
                if key:
                    self._keys.setdefault(key, i)

    def resolve(self, reference: str) -> int | None:
        if reference in self._keys:
            return self._keys[reference]
        parts = reference.rstrip("/").split("/")
        if len(parts) >= 2:  # absolute URL (or longer path) ending in Type/id
            return self._keys.get(f"{parts[-2]}/{parts[-1]}")
        return None

    def ref_of(self, entry: dict[str, Any]) -> str:
        resource = entry["resource"]
        if entry.get("fullUrl"):
            return str(entry["fullUrl"])
        return f"{resource['resourceType']}/{resource.get('id', '?')}"

    def identity(self, reference: str) -> str:
        index = self.resolve(reference)
        return f"#entry{index}" if index is not None else reference


def _single_subject(patients: list[dict[str, Any]], clinical: list[dict[str, Any]],
                    refs: _ReferenceIndex) -> str:
    """The one patient every resource is about, as the bundle refers to it (else 422)."""
    distinct_patients = {refs.identity(refs.ref_of(p)) for p in patients}
    if len(distinct_patients) > 1:
        raise Unprocessable.single("processing",
                                   "the bundle holds more than one Patient; send one patient",
                                   "Bundle.entry.resource.ofType(Patient)")
    subjects = [entry["resource"].get("subject") or {} for entry in clinical]
    used: dict[str, str] = {}  # each distinct reference resolved once, the first kept
    for reference in dict.fromkeys(s["reference"] for s in subjects if s.get("reference")):
        used.setdefault(refs.identity(reference), reference)
    by_identifier = {_identifier_key(s["identifier"]) for s in subjects  # given only by one
                     if not s.get("reference") and s.get("identifier")}
    if patients:
        patient_identity = next(iter(distinct_patients))
        others = set(used) - {patient_identity}
        strangers = by_identifier - {_identifier_key(identifier) for identifier
                                     in patients[0]["resource"].get("identifier") or []}
        if others or strangers:
            raise Unprocessable.single(
                "processing", "resources in the bundle name a subject other than its Patient"
                + (" (an identifier that is not the Patient's)" if strangers else ""),
                "Bundle.entry.resource.subject")
        return used.get(patient_identity, refs.ref_of(patients[0]))
    if by_identifier and used:
        raise Unprocessable.single("processing", "a subject given only by identifier cannot be "
                                                 "matched without the Patient resource",
                                   "Bundle.entry.resource.subject.identifier")
    if len(used) > 1:
        raise Unprocessable.single("processing", "resources in the bundle name two subjects",
                                   "Bundle.entry.resource.subject")
    if not used:
        raise Unprocessable.single("processing",
                                   "nothing in the bundle identifies a patient (no Patient, "
                                   "no subject reference)", "Bundle.entry")
    return next(iter(used.values()))


def _identifier_key(identifier: dict[str, Any]) -> tuple[str, str]:
    return str(identifier.get("system") or ""), str(identifier.get("value") or "")


def _why_not_counted(resource: dict[str, Any]) -> str | None:
    rtype = resource["resourceType"]
    status = resource.get("status")
    if rtype == "Condition":
        verification = _status_code(resource.get("verificationStatus"))
        if verification in _CONDITION_IGNORED:
            return f"verificationStatus {verification}"
        return None
    if rtype == "Observation":
        if status not in _OBSERVATION_COUNTS:
            return f"status {status}"
        if resource.get("dataAbsentReason"):
            return "dataAbsentReason present"
        return None
    if rtype == "Procedure":
        return None if status in _PROCEDURE_COUNTS else f"status {status}"
    return None if status in _MEDICATION_COUNTS else f"status {status}"


def _resolved(refs: _ReferenceIndex, references: Any) -> list[int]:
    """The bundle entries a list of References points at (those outside the bundle are skipped)."""
    found = []
    for reference in references if isinstance(references, list) else []:
        target = reference.get("reference") if isinstance(reference, dict) else None
        index = refs.resolve(target) if isinstance(target, str) else None
        if index is not None:
            found.append(index)
    return found


def _is_history(resource: dict[str, Any]) -> bool:
    if resource["resourceType"] != "Condition":
        return False
    return _status_code(resource.get("clinicalStatus")) in _CONDITION_HISTORY


def _status_code(concept: Any) -> str | None:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code"):
            return str(coding["code"])
    return None

