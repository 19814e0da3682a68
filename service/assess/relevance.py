"""Which resources of a bundle can matter, found before any FHIR validation (contract §2).

Validating a resource costs about 0.1 ms, and a real chart holds thousands (vital signs, labs,
prescriptions) whose codes no rule reads. A resource of a type the service reads is read only
when a coding facts.py looks at (Condition/Procedure `code`, Observation `code` and each
component's `code`, a medicine's `medicationCodeableConcept`) maps to a clinical concept of the
knowledge base. Anything this pass cannot read with certainty (codings, components or a subject
of the wrong shape) is read too, so that validation reports it: a malformed red flag is a 400,
never silently skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from service.assess.fhir import READ_TYPES
from service.knowledge import Knowledge

# Where facts.py reads a resource's meaning, by type
_CODED = {"Condition": "code", "Observation": "code", "Procedure": "code",
          "MedicationStatement": "medicationCodeableConcept",
          "MedicationRequest": "medicationCodeableConcept"}
_REFERENCE_ONLY = frozenset({"reference"})
UNKNOWN = "unknown"  # well-formed codings (or none), none of them the knowledge base's
TEXT_ONLY = "text-only"  # no coding at all, only text: a person must read it


class Relevance:
    """The codings the knowledge base reads, computed once when the pipeline is built."""

    def __init__(self, kb: Knowledge) -> None:
        self._kb = kb
        self._codes = frozenset(key for key, concepts in kb.code_index.items()
                                if any(c.kind == "clinical" for c in concepts))
        self._category_systems = frozenset(system for system, _ in kb.descendant_index)

    def unread_entries(self, bundle: dict[str, Any]) -> dict[int, str]:
        """Entry index -> why its resource is not read."""
        entries = bundle.get("entry")
        unread = {}
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            why = self.why_unread(resource) if isinstance(resource, dict) else None
            if why is not None:
                unread[i] = why
        return unread

    def why_unread(self, resource: dict[str, Any]) -> str | None:
        """None when the resource is read (validated, then counted or ignored by its status);
        else why not: UNKNOWN codes, or TEXT_ONLY."""
        rtype = resource.get("resourceType")
        field = _CODED.get(rtype) if type(rtype) is str else None
        if field is None or not _plain_subject(resource.get("subject")):
            return None
        concepts: list[Any] = [resource.get(field)]
        components = resource.get("component")
        if components is not None:
            if not isinstance(components, list) or not all(isinstance(c, dict)
                                                           for c in components):
                return None
            concepts += [c.get("code") for c in components]
        codings = _codings(concepts)  # a concept absent (required, or a medicationReference): read
        if codings is None or not self._codes.isdisjoint(codings):
            return None
        for system, code in codings:
            if system in self._category_systems and self._in_category(system, code):
                return None
        if codings:
            return UNKNOWN
        texts = [c.get("text") for c in concepts]
        return TEXT_ONLY if any(isinstance(t, str) and t.strip() for t in texts) else UNKNOWN

    def _in_category(self, system: str, code: str) -> bool:
        """Below an ICD-10-CM category the knowledge includes with its descendants."""
        return any(c.kind == "clinical" for c in self._kb.concepts_for(system, code))


def unread_notes(entries: list[dict[str, Any]], unread: list[tuple[str, str]]) -> list[str]:
    """One note per reason a resource was not read, with the count of each type."""
    notes = []
    reasons = (("types this service does not use", Counter(
                   e["resource"]["resourceType"] for e in entries
                   if e["resource"]["resourceType"] not in READ_TYPES)),
               ("codes the knowledge base does not use",
                Counter(rtype for why, rtype in unread if why == UNKNOWN)),
               ("coded only in text, which is not interpreted: review them",
                Counter(rtype for why, rtype in unread if why == TEXT_ONLY)))
    for reason, counts in reasons:
        if counts:
            notes.append(f"Not read ({reason}): " + ", ".join(
                f"{count} {rtype}" for rtype, count in sorted(counts.items())) + ".")
    return notes


def _codings(concepts: Iterable[Any]) -> list[tuple[str, str]] | None:
    """Every (system, code) of these CodeableConcepts; None when one is absent or has a shape
    R4 does not allow (then validation must see it)."""
    found = []
    for concept in concepts:
        if not isinstance(concept, dict):
            return None
        codings = concept.get("coding", [])
        if not isinstance(codings, list):
            return None
        for coding in codings:
            if not isinstance(coding, dict):
                return None
            system, code = coding.get("system", ""), coding.get("code", "")
            if not isinstance(system, str) or not isinstance(code, str):
                return None
            found.append((system, code))
    return found


def _plain_subject(subject: Any) -> bool:
    """A subject the one-subject check can read without validation: absent, or a Reference
    whose `reference` is a string and whose `identifier` is an object of strings."""
    if subject is None or type(subject) is dict and subject.keys() == _REFERENCE_ONLY \
            and type(subject["reference"]) is str:  # the usual shape, tested at once
        return True
    if not isinstance(subject, dict):
        return False
    reference, identifier = subject.get("reference"), subject.get("identifier")
    if reference is not None and not isinstance(reference, str):
        return False
    return identifier is None or (isinstance(identifier, dict) and all(
        isinstance(identifier.get(key), str | None) for key in ("system", "value")))
