"""CDS Hooks cards from an assessment: one card for its care pathway, or none.

The indicator comes from the knowledge base (`pathways.yaml`, `card`); the detail is the
RiskAssessment's own predictions, rationale, mitigation and guidance, in Markdown; the suggestion
creates that RiskAssessment in the EHR. Identifiers are derived from the hook instance, so the same
call gives the same cards and feedback can be matched to them.
"""

from __future__ import annotations

import uuid
from typing import Any

from service.knowledge import Knowledge, PathwayDef
from service.report import BASE

SUMMARY_LIMIT = 140  # CDS Hooks: "<140-character summary"


def build_cards(kb: Knowledge, pathway_code: str, assessment: dict[str, Any],
                hook_instance: str) -> list[dict[str, Any]]:
    pathway = kb.pathways[pathway_code]
    if pathway.card == "none":
        return []
    card_id = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:uuid:{hook_instance}/{pathway.code}")
    card: dict[str, Any] = {
        "uuid": str(card_id),
        "summary": _summary(pathway, assessment),
        "indicator": pathway.card,
        "detail": _detail(pathway, assessment),
        "source": _source(kb, pathway),
        "suggestions": [{
            "label": "Record this risk assessment",
            "uuid": str(uuid.uuid5(card_id, "record")),
            "isRecommended": True,
            "actions": [{"type": "create",
                         "description": "Add the RiskAssessment to the patient's record",
                         "resource": assessment}],
        }],
        "selectionBehavior": "at-most-one",
    }
    links = _links(kb, pathway)
    if links:
        card["links"] = links
    return [card]


def _summary(pathway: PathwayDef, assessment: dict[str, Any]) -> str:
    predictions = assessment.get("prediction") or []
    first = predictions[0]["outcome"]["text"] if predictions else "back-related foot pain"
    text = f"{pathway.display}: {first}"
    return text if len(text) < SUMMARY_LIMIT else text[:SUMMARY_LIMIT - 2].rstrip() + "…"


def _detail(pathway: PathwayDef, assessment: dict[str, Any]) -> str:
    lines = [f"**{pathway.display}.** {assessment.get('mitigation', pathway.mitigation)}", ""]
    predictions = assessment.get("prediction") or []
    if predictions:
        lines += ["**Why**", ""]
        for prediction in predictions:
            risk = prediction["qualitativeRisk"]["coding"][0]["display"]
            lines.append(f"- **{prediction['outcome']['text']}** ({risk.lower()}). "
                         f"{prediction.get('rationale', '')}".rstrip())
        lines.append("")
    notes = [note["text"] for note in assessment.get("note") or []]
    if notes:
        lines += ["**Notes and guidance**", ""] + [f"- {text}" for text in notes]
    return "\n".join(lines).strip()


def _guidelines(kb: Knowledge, pathway: PathwayDef) -> list[tuple[str, str]]:
    return [(kb.sources[sid].title, kb.sources[sid].url or "") for sid in pathway.sources
            if kb.sources[sid].url]


def _source(kb: Knowledge, pathway: PathwayDef) -> dict[str, Any]:
    source: dict[str, Any] = {
        "label": f"Spinefoot ({kb.id} {kb.version})",
        "topic": {"system": f"{BASE}/CodeSystem/care-pathway", "code": pathway.code,
                  "display": pathway.display},
    }
    guidelines = _guidelines(kb, pathway)
    if guidelines:
        source["url"] = guidelines[0][1]
    return source


def _links(kb: Knowledge, pathway: PathwayDef) -> list[dict[str, str]]:
    return [{"label": title, "url": url, "type": "absolute"}
            for title, url in _guidelines(kb, pathway)]
