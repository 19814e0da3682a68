"""CDS Hooks cards from an assessment: one card for its care pathway, or none.

The indicator comes from the knowledge base (`pathways.yaml`, `card`). The detail is short
(under `DETAIL_LIMIT` characters, so an EHR shows it without scrolling): the advice, each
conclusion with its first reasons, the data gaps and safety-netting; the full explanation is the
narrative of the RiskAssessment the suggestion records. Identifiers are derived from the hook
instance, so the same call gives the same cards and feedback can be matched to them.
"""

from __future__ import annotations

import uuid
from typing import Any

from service.assess.explain import Explanation, Finding
from service.assess.report import BASE
from service.knowledge import Knowledge, PathwayDef

SUMMARY_LIMIT = 140  # CDS Hooks: "<140-character summary"
DETAIL_LIMIT = 1000
REASONS_SHOWN = 3  # per conclusion; the narrative has them all
OVERRIDE_SYSTEM = f"{BASE}/CodeSystem/override-reason"
OVERRIDE_REASONS = {
    "already-addressed": "Already addressed",
    "not-relevant": "Not relevant",
    "patient-declined": "Patient declined",
    "information-incorrect": "Information incorrect",
}
_FULL = (
    "*Every finding, the guidance and the sources: in the narrative of the RiskAssessment "
    "that the suggestion records.*"
)
_NOT_DOCUMENTED = (" is not documented.", " are not documented.")


def build_cards(
    kb: Knowledge, explanation: Explanation, assessment: dict[str, Any], hook_instance: str
) -> list[dict[str, Any]]:
    pathway = explanation.pathway
    if pathway.card == "none":
        return []
    card_id = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:uuid:{hook_instance}/{pathway.code}")
    card: dict[str, Any] = {
        "uuid": str(card_id),
        "summary": _summary(explanation),
        "indicator": pathway.card,
        "detail": card_detail(explanation),
        "source": _source(kb, pathway),
        "suggestions": [
            {
                "label": "Record this risk assessment",
                "uuid": str(uuid.uuid5(card_id, "record")),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "create",
                        "description": "Add the RiskAssessment to the patient's record",
                        "resource": assessment,
                    }
                ],
            }
        ],
        "selectionBehavior": "at-most-one",
        "overrideReasons": [
            {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
            for code, display in OVERRIDE_REASONS.items()
        ],
    }
    links = _links(kb, pathway)
    if links:
        card["links"] = links
    return [card]


def _summary(explanation: Explanation) -> str:
    first = explanation.findings[0].title if explanation.findings else "back-related foot pain"
    text = f"{explanation.pathway.display}: {first}"
    return text if len(text) < SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 2].rstrip() + "…"


def card_detail(explanation: Explanation) -> str:
    """Markdown within DETAIL_LIMIT: the first reasons of each conclusion and what is not
    documented if they fit, else fewer; the advice, conclusions and safety-netting always."""
    for shown, gaps_named in ((REASONS_SHOWN, True), (1, True), (0, True), (0, False)):
        text = _detail(explanation, shown, gaps_named)
        if len(text) <= DETAIL_LIMIT:
            break
    return text


def _detail(explanation: Explanation, shown: int, gaps_named: bool) -> str:
    pathway = explanation.pathway
    lines = [f"**{pathway.display}.** {pathway.mitigation}", ""]
    lines += [_finding_line(finding, shown) for finding in explanation.findings]
    gaps = [_missing(note.text) for note in explanation.notes_of("data-gap")]
    if gaps:
        lines += [
            "",
            "**Not documented:** "
            + ("; ".join(gaps) + "." if gaps_named else f"{len(gaps)} items (see the narrative)."),
        ]
    lines += ["", f"**Safety-netting:** {pathway.safety_net}", "", _FULL]
    return "\n".join(lines).strip()


def _missing(gap: str) -> str:
    """'Bladder function is not documented. Ask ...' -> 'bladder function'."""
    first = gap.split(". ")[0] + "."
    for ending in _NOT_DOCUMENTED:
        if first.endswith(ending):
            subject = first.removesuffix(ending)
            return subject[:1].lower() + subject[1:]
    return first.rstrip(".")


def _finding_line(finding: Finding, shown: int) -> str:
    line = f"- **{finding.title}** ({finding.risk.lower()})"
    if shown and finding.reasons:
        reasons = [r.text for r in finding.reasons[:shown]]
        more = len(finding.reasons) - shown
        line += ": " + "; ".join(reasons) + (f"; and {more} more" if more > 0 else "")
    return line


def _guidelines(kb: Knowledge, pathway: PathwayDef) -> list[tuple[str, str]]:
    return [
        (kb.sources[sid].title, kb.sources[sid].url or "") for sid in pathway.sources if kb.sources[sid].url
    ]


def _source(kb: Knowledge, pathway: PathwayDef) -> dict[str, Any]:
    source: dict[str, Any] = {
        "label": f"Spinefoot ({kb.id} {kb.version})",
        "topic": {
            "system": f"{BASE}/CodeSystem/care-pathway",
            "code": pathway.code,
            "display": pathway.display,
        },
    }
    guidelines = _guidelines(kb, pathway)
    if guidelines:
        source["url"] = guidelines[0][1]
    return source


def _links(kb: Knowledge, pathway: PathwayDef) -> list[dict[str, str]]:
    return [{"label": title, "url": url, "type": "absolute"} for title, url in _guidelines(kb, pathway)]
