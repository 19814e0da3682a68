"""CDS Hooks order-sign: relate the draft orders to the patient's assessment, in cards.

The orders and what to say about them are knowledge (`orders.yaml`): red flags (an emergency or
urgent pathway) always give the pathway's own card, whatever was ordered; otherwise an advice item gives
a card when one of its orders was ordered and one of its conclusions reached (`early_only`: while
no finding behind it has persisted `radicular_persisting_min_days`). An order nothing applies to
gets no card. Card ids derive from the hook instance, as for the other services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.assess.explain import Explanation, Finding
from service.assess.report import BASE
from service.errors import InvalidRequest, PreconditionFailed
from service.knowledge.model import Knowledge, OrderAdvice, OrderSet
from service.web.cds.cards import OVERRIDE_REASONS, OVERRIDE_SYSTEM, SUMMARY_LIMIT, build_cards

ORDER_TYPES = ("ServiceRequest", "MedicationRequest")
ADVICE_SYSTEM = f"{BASE}/CodeSystem/order-advice"
_CODE_ELEMENT = {"ServiceRequest": "code", "MedicationRequest": "medicationCodeableConcept"}


@dataclass(frozen=True)
class DraftOrder:
    """A draft order in a set of orders.yaml, with what identifies it for a delete action."""

    order_set: OrderSet
    reference: str | None  # Type/id, when the draft has an id
    label: str  # the order's own display, else its set's


def read_draft_orders(
    context: dict[str, Any], about: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """`context.draftOrders` (a Bundle, required for order-sign): its ServiceRequests and
    MedicationRequests, each about the patient in context (else 412: never a card about a
    draft order for someone else)."""
    bundle = context.get("draftOrders")
    entries = bundle.get("entry", []) if isinstance(bundle, dict) else None
    if (
        not isinstance(bundle, dict)
        or bundle.get("resourceType") != "Bundle"
        or not isinstance(entries, list)
    ):
        raise InvalidRequest.single(
            "required",
            "context.draftOrders: is required for order-sign: a Bundle of the draft orders",
            "context.draftOrders",
        )
    orders = [
        entry["resource"]
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
        and entry["resource"].get("resourceType") in ORDER_TYPES
    ]
    foreign = [f"{o['resourceType']}/{o.get('id', '?')}" for o in orders if not about(o)]
    if foreign:
        raise PreconditionFailed.single(
            "conflict",
            f"context.draftOrders holds {len(foreign)} order(s) not about "
            f"context.patientId ({', '.join(foreign[:5])}); no card is given",
            "context.draftOrders",
        )
    return orders


def match_orders(kb: Knowledge, orders: list[dict[str, Any]]) -> list[DraftOrder]:
    """The draft orders whose code is in an order set for their resource type."""
    found = []
    for order in orders:
        element = order.get(_CODE_ELEMENT[order["resourceType"]])
        codings = element.get("coding") if isinstance(element, dict) else None
        codes = {(c.get("system"), c.get("code")) for c in codings or [] if isinstance(c, dict)}
        for order_set in kb.orders.values():
            if order_set.resource == order["resourceType"] and codes & {
                (c.system, c.code) for c in order_set.codes
            }:
                rid = order.get("id")
                text = element.get("text") if isinstance(element, dict) else None
                found.append(
                    DraftOrder(
                        order_set,
                        f"{order['resourceType']}/{rid}" if isinstance(rid, str) else None,
                        text if isinstance(text, str) and text.strip() else order_set.display,
                    )
                )
    return found


def order_cards(
    kb: Knowledge,
    explanation: Explanation,
    assessment: dict[str, Any],
    hook_instance: str,
    drafts: list[DraftOrder],
) -> list[dict[str, Any]]:
    if not drafts:
        return []
    if explanation.pathway.code in kb.order_pathway_card:
        return build_cards(kb, explanation, assessment, hook_instance)
    ordered = {draft.order_set.name for draft in drafts}
    cards = []
    for advice in kb.order_advice:
        finding = _reached(advice, explanation)
        if finding is not None and ordered & set(advice.orders):
            cards.append(
                _advice_card(
                    kb,
                    advice,
                    finding,
                    hook_instance,
                    [d for d in drafts if d.order_set.name in advice.orders],
                )
            )
    return cards


def _reached(advice: OrderAdvice, explanation: Explanation) -> Finding | None:
    """The first finding of one of the advice's conclusions (still early, if it must be)."""
    for finding in explanation.findings:
        if finding.conclusion.definition.name in advice.conclusions and not (
            advice.early_only
            and any(fact.get("persisting") is True for fact in finding.conclusion.why.findings)
        ):
            return finding
    return None


def _advice_card(
    kb: Knowledge, advice: OrderAdvice, finding: Finding, hook_instance: str, drafts: list[DraftOrder]
) -> dict[str, Any]:
    card_id = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:uuid:{hook_instance}/{advice.id}")
    weeks = f"{kb.parameter('radicular_persisting_min_days') / 7:g}"
    summary = advice.summary.format(weeks=weeks)[: SUMMARY_LIMIT - 1]
    sources = [kb.sources[s] for s in advice.sources]
    links = [{"label": s.title, "url": s.url, "type": "absolute"} for s in sources if s.url]
    labels = "; ".join(dict.fromkeys(d.label for d in drafts))
    card: dict[str, Any] = {
        "uuid": str(card_id),
        "summary": summary,
        "indicator": advice.indicator,
        "detail": "\n\n".join(
            [
                f"**Ordered:** {labels}.",
                advice.text.format(weeks=weeks),
                f"**Assessment:** {finding.title} ({finding.risk.lower()}), no red flags.",
                "*Sources: " + "; ".join(s.title for s in sources) + ".*",
            ]
        ),
        "source": {
            "label": f"Spinefoot ({kb.id} {kb.version})",
            **({"url": links[0]["url"]} if links else {}),
            "topic": {"system": ADVICE_SYSTEM, "code": advice.id, "display": summary},
        },
        "overrideReasons": [
            {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
            for code, display in OVERRIDE_REASONS.items()
        ],
    }
    removable = [d.reference for d in drafts if d.reference]
    if removable:
        card["suggestions"] = [
            {
                "label": "Remove the draft order" if len(removable) == 1 else "Remove the draft orders",
                "uuid": str(uuid.uuid5(card_id, "remove")),
                "actions": [
                    {
                        "type": "delete",
                        "description": f"Remove {labels} from the orders",
                        "resourceId": removable,
                    }
                ],
            }
        ]
        card["selectionBehavior"] = "at-most-one"
    if links:
        card["links"] = links
    return card
