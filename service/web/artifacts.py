"""The knowledge base as FHIR R4 knowledge artifacts: a PlanDefinition, a Library and ValueSets.

They are static for a knowledge version, so they are built once when the knowledge is loaded,
with one entity tag for them all (and the discovery and CapabilityStatement): it changes when
the knowledge version or the service's own version does, so a client's cached copy is never
stale. The PlanDefinition describes the pathways as an EHR's CDS tooling reads them (an ECA
rule: the CDS Hooks as triggers, the rules as plain-text conditions, the guidelines cited); the
Library carries the knowledge YAML itself and says what the service reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.assess.report import BASE
from service.knowledge.model import Coding, Knowledge, PathwayDef, Source

PLAN_URL = f"{BASE}/PlanDefinition"
LIBRARY_URL = f"{BASE}/Library"
VALUESET_URL = f"{BASE}/ValueSet"
HOOKS = ("patient-view", "order-select", "order-sign")  # the CDS Hooks the services answer
READ_TYPES = {
    "Patient": None,
    "Condition": "code",
    "Observation": "code",
    "Procedure": "code",
    "MedicationStatement": "medication",
    "MedicationRequest": "medication",
}
_PRIORITY = {"critical": "stat", "warning": "urgent", "info": "routine", "none": "routine"}
_QUALIFIER_PATH = {"absent_value": "value"}  # the other qualifiers are read in bodySite


@dataclass(frozen=True)
class Artifacts:
    plan_definition: dict[str, Any]
    library: dict[str, Any]
    value_sets: Mapping[str, dict[str, Any]]  # by id
    etag: str  # of this knowledge version and software version

    def value_set_bundle(self) -> dict[str, Any]:
        """Every ValueSet, as the searchset a `GET /fhir/ValueSet` answers."""
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(self.value_sets),
            "entry": [
                {"fullUrl": vs["url"], "resource": vs, "search": {"mode": "match"}}
                for vs in self.value_sets.values()
            ],
        }


def build_artifacts(kb: Knowledge, software_version: str) -> Artifacts:
    value_sets = {vs["id"]: vs for vs in _value_sets(kb)}
    plan, library = _plan_definition(kb), _library(kb, value_sets)
    digest = hashlib.sha256(
        json.dumps([software_version, plan, library, value_sets], sort_keys=True).encode()
    ).hexdigest()[:32]
    return Artifacts(plan, library, value_sets, digest)


def fhir_id(name: str) -> str:
    """A knowledge name as a FHIR id ([A-Za-z0-9-.], so `_` becomes `-`)."""
    return name.replace("_", "-")


def _pascal(text: str) -> str:
    """A computable `name` (R4 cnl-0: starts with a capital, letters and digits only)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text))


# ---------------------------------------------------------------- PlanDefinition


def _plan_definition(kb: Knowledge) -> dict[str, Any]:
    guidelines = [s for s in kb.sources.values() if s.kind == "guideline"]
    return {
        "resourceType": "PlanDefinition",
        "id": kb.id,
        "url": f"{PLAN_URL}/{kb.id}",
        "version": kb.version,
        "name": _pascal(kb.id),
        "title": kb.title,
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                    "code": "eca-rule",
                    "display": "ECA Rule",
                }
            ]
        },
        "status": "draft" if kb.status == "draft" else "active",
        "experimental": kb.status == "draft",
        "publisher": "Spinefoot",
        "description": (
            "Back-related foot pain: lumbar radiculopathy and its root, red flags (above all "
            "cauda equina), local causes and the care pathway. One action per pathway, most "
            "urgent first: the first whose conditions hold applies. Decision support only; "
            "not clinically signed off."
        ),
        "relatedArtifact": [_citation(s) for s in guidelines],
        "library": [f"{LIBRARY_URL}/{kb.id}|{kb.version}"],
        "action": [_action(kb, pathway) for pathway in kb.pathways.values()],
    }


def _action(kb: Knowledge, pathway: PathwayDef) -> dict[str, Any]:
    rules = [r for r in kb.rules if r.then.fact == "pathway" and r.then.name == pathway.code]
    conditions = [f"{r.id}: {r.title}" for r in rules] or ["No rule proposes another pathway (the default)."]
    return {
        "id": pathway.code,
        "title": pathway.display,
        "description": pathway.mitigation,
        "code": [
            {
                "coding": [
                    {
                        "system": f"{BASE}/CodeSystem/care-pathway",
                        "code": pathway.code,
                        "display": pathway.display,
                    }
                ]
            }
        ],
        "priority": _PRIORITY[pathway.card],
        "documentation": [_citation(kb.sources[s]) for s in pathway.sources],
        "trigger": [{"type": "named-event", "name": hook} for hook in HOOKS],
        "condition": [
            {"kind": "applicability", "expression": {"language": "text/plain", "expression": text}}
            for text in conditions
        ],
    }


def _citation(source: Source) -> dict[str, Any]:
    return {
        "type": "citation",
        "label": source.id,
        "display": source.title,
        **({"url": source.url} if source.url else {}),
    }


# ---------------------------------------------------------------- Library


def _library(kb: Knowledge, value_sets: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Library",
        "id": kb.id,
        "url": f"{LIBRARY_URL}/{kb.id}",
        "version": kb.version,
        "name": _pascal(f"{kb.id}-knowledge"),
        "title": f"{kb.title} (knowledge base)",
        "status": "draft" if kb.status == "draft" else "active",
        "experimental": kb.status == "draft",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/library-type",
                    "code": "asset-collection",
                    "display": "Asset Collection",
                }
            ]
        },
        "description": (
            "The knowledge base as its YAML files (one attachment each, as reviewed by "
            "clinicians), and the data it reads: the resource types and, for each, the value "
            "sets its codes are looked up in."
        ),
        "dataRequirement": _data_requirements(kb, value_sets),
        "content": [
            _attachment(Path(kb.directory), path) for path in sorted(Path(kb.directory).rglob("*.yaml"))
        ],
    }


def _data_requirements(kb: Knowledge, value_sets: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    clinical = [c for c in kb.concepts.values() if c.kind == "clinical"]
    qualifiers = [c for c in kb.concepts.values() if c.kind == "qualifier"]
    requirements: list[dict[str, Any]] = []
    for rtype, path in READ_TYPES.items():
        filters = (
            [{"path": path, "valueSet": value_sets[fhir_id(c.name)]["url"]} for c in clinical] if path else []
        )
        if rtype in ("Condition", "Observation"):
            filters += [
                {
                    "path": _QUALIFIER_PATH.get(c.role or "", "bodySite"),
                    "valueSet": value_sets[fhir_id(c.name)]["url"],
                }
                for c in qualifiers
            ]
        requirements.append({"type": rtype, **({"codeFilter": filters} if filters else {})})
    return requirements


def _attachment(root: Path, path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        "contentType": "application/yaml",
        "title": path.relative_to(root).as_posix(),
        "size": len(data),
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(),
        "data": base64.b64encode(data).decode(),
    }


# ---------------------------------------------------------------- ValueSets


def _value_sets(kb: Knowledge) -> list[dict[str, Any]]:
    named = [(c.name, c.display, c.codes) for c in kb.concepts.values()]
    named += [(o.name, o.display, o.codes) for o in kb.orders.values()]
    return [_value_set(kb, name, display, codes) for name, display, codes in sorted(named)]


def _value_set(kb: Knowledge, name: str, display: str, codes: tuple[Coding, ...]) -> dict[str, Any]:
    include: dict[str, list[Coding]] = {}
    for coding in codes:
        include.setdefault(coding.system, []).append(coding)
    return {
        "resourceType": "ValueSet",
        "id": fhir_id(name),
        "url": f"{VALUESET_URL}/{fhir_id(name)}",
        "version": kb.version,
        "name": _pascal(name),
        "title": display,
        "status": "draft" if kb.status == "draft" else "active",
        "experimental": kb.status == "draft",
        "description": f"The codes Spinefoot reads as '{display}' (knowledge {kb.id} {kb.version}).",
        "compose": {
            "include": [item for system, coded in include.items() for item in _includes(system, coded)]
        },
    }


def _includes(system: str, codes: list[Coding]) -> list[dict[str, Any]]:
    """One include of the listed codes, and one per code that stands for its descendants."""
    listed = list(dict.fromkeys((c.code, c.display) for c in codes))
    items: list[dict[str, Any]] = [
        {"system": system, "concept": [{"code": code, "display": display} for code, display in listed]}
    ]
    items += [
        {"system": system, "filter": [{"property": "concept", "op": "is-a", "value": c.code}]}
        for c in codes
        if c.descendants
    ]
    return items
