"""From a Bundle to one patient's countable resources (contract §2).

Validates the Bundle as R4, resolves references inside it, checks there is one subject, and
keeps the resources that count by their status, recording why anything else was set aside.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from service.assess import fhir
from service.assess.dates import parse_date
from service.assess.ranges import out_of_range
from service.assess.relevance import TEXT_ONLY, UNKNOWN, Relevance, unread_entries
from service.errors import InvalidResource, Unprocessable

CLINICAL_TYPES = ("Condition", "Observation", "Procedure", "MedicationStatement", "MedicationRequest")
_OBSERVATION_COUNTS = {"final", "amended", "corrected", "preliminary", "registered"}
_PROCEDURE_COUNTS = {"completed", "in-progress"}
_MEDICATION_COUNTS = {"active", "completed", "intended"}
_CONDITION_IGNORED = {"refuted", "entered-in-error"}
_CONDITION_HISTORY = {"inactive", "resolved", "remission"}


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


# ---------------------------------------------------------------- bundle -> patient record


def read_bundle(
    bundle: dict[str, Any],
    tick: Callable[[], None] = lambda: None,
    relevance: Relevance | None = None,
    unread: Mapping[int, str] | None = None,
) -> PatientRecord:
    """Validate what is read and make the record; with `relevance`, the resources whose codes
    the knowledge base does not use are set aside first, never validated (without it, as the
    tests' reference, every resource of a type read is read), unless `unread` already says
    which they are."""
    if unread is None:
        unread = unread_entries(bundle, relevance) if relevance is not None else {}
    issues = fhir.validate_bundle(bundle, tick, unread) or out_of_range(bundle, unread)
    if issues:
        raise InvalidResource(issues)
    return patient_record(bundle, unread)


def patient_record(bundle: dict[str, Any], unread: Mapping[int, str] | None = None) -> PatientRecord:
    """The one patient and the resources that count, from a bundle already validated; the
    entries in `unread` are named in a note and held to the one-subject rule, nothing more."""
    unread = unread or {}
    all_entries = bundle.get("entry") or []
    _check_unique_full_urls(all_entries)
    indexed = [(i, e) for i, e in enumerate(all_entries) if isinstance(e.get("resource"), dict)]
    entries = [e for _, e in indexed]
    refs = _ReferenceIndex(entries)
    notes = _unread_notes(  # every entry in `unread` holds a resource
        entries, [(why, all_entries[i]["resource"]["resourceType"]) for i, why in unread.items()]
    )
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
        resources.append(
            Resource(
                resource["resourceType"],
                resource,
                refs.ref_of(entry),
                _is_history(resource),
                tuple(r for r in sources if r in counted_refs),
            )
        )
    birth = patients[0]["resource"].get("birthDate") if patients else None
    return PatientRecord(
        subject,
        parse_date(birth) if birth else None,
        tuple(resources),
        len(all_entries),
        tuple(notes),
        patients[0]["resource"] if patients else None,
    )


def _unread_notes(entries: list[dict[str, Any]], unread: list[tuple[str, str]]) -> list[str]:
    """One note per reason a resource was not read, with the count of each type."""
    notes = []
    reasons = (
        (
            "types this service does not use",
            Counter(
                e["resource"]["resourceType"]
                for e in entries
                if e["resource"]["resourceType"] not in fhir.READ_TYPES
            ),
        ),
        ("codes the knowledge base does not use", Counter(rtype for why, rtype in unread if why == UNKNOWN)),
        (
            "coded only in text, which is not interpreted: review them",
            Counter(rtype for why, rtype in unread if why == TEXT_ONLY),
        ),
    )
    for reason, counts in reasons:
        if counts:
            notes.append(
                f"Not read ({reason}): "
                + ", ".join(f"{count} {rtype}" for rtype, count in sorted(counts.items()))
                + "."
            )
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
            raise InvalidResource.single(
                "invariant",
                "two entries of the bundle have the same fullUrl (bdl-7)",
                f"Bundle.entry[{i}].fullUrl",
            )
        seen.add((full_url, version))


class _ReferenceIndex:
    """Resolves references inside the bundle: fullUrl (incl. urn:uuid), Type/id, absolute URLs."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._keys: dict[str, int] = {}
        for i, entry in enumerate(entries):  # the fullUrl first, then Type/id; the first entry wins
            full = entry.get("fullUrl")
            if full:
                self._keys.setdefault(full, i)
            resource = entry["resource"]
            if resource.get("id"):
                self._keys.setdefault(f"{resource['resourceType']}/{resource['id']}", i)

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


def _single_subject(
    patients: list[dict[str, Any]], clinical: list[dict[str, Any]], refs: _ReferenceIndex
) -> str:
    """The one patient every resource is about, as the bundle refers to it (else 422)."""
    distinct_patients = {refs.identity(refs.ref_of(p)) for p in patients}
    if len(distinct_patients) > 1:
        raise Unprocessable.single(
            "processing",
            "the bundle holds more than one Patient; send one patient",
            "Bundle.entry.resource.ofType(Patient)",
        )
    subjects = [entry["resource"].get("subject") or {} for entry in clinical]
    used: dict[str, str] = {}  # each distinct reference resolved once, the first kept
    for reference in dict.fromkeys(s["reference"] for s in subjects if s.get("reference")):
        used.setdefault(refs.identity(reference), reference)
    by_identifier = {
        _identifier_key(s["identifier"])
        for s in subjects  # given only by one
        if not s.get("reference") and s.get("identifier")
    }
    if patients:
        patient_identity = next(iter(distinct_patients))
        others = set(used) - {patient_identity}
        strangers = by_identifier - {
            _identifier_key(identifier) for identifier in patients[0]["resource"].get("identifier") or []
        }
        if others or strangers:
            raise Unprocessable.single(
                "processing",
                "resources in the bundle name a subject other than its Patient"
                + (" (an identifier that is not the Patient's)" if strangers else ""),
                "Bundle.entry.resource.subject",
            )
        return used.get(patient_identity, refs.ref_of(patients[0]))
    if by_identifier and used:
        raise Unprocessable.single(
            "processing",
            "a subject given only by identifier cannot be matched without the Patient resource",
            "Bundle.entry.resource.subject.identifier",
        )
    if len(used) > 1:
        raise Unprocessable.single(
            "processing", "resources in the bundle name two subjects", "Bundle.entry.resource.subject"
        )
    if not used:
        raise Unprocessable.single(
            "processing",
            "nothing in the bundle identifies a patient (no Patient, no subject reference)",
            "Bundle.entry",
        )
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
