"""orders.yaml: the draft orders CDS Hooks order-sign relates to the assessment, and the advice.

The order sets name existing concepts (their codes) and codes of their own, checked like every
other code; the advice names orders, conclusions and sources that must exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.errors import KnowledgeError
from service.knowledge.codes import read_codings
from service.knowledge.files import check_known, check_sources, load_file
from service.knowledge.model import Concept, ConclusionDef, OrderAdvice, OrderSet, PathwayDef
from service.knowledge.schemas import OrdersFileSchema


def load_orders(
    root: Path,
    systems: Mapping[str, str],
    source_ids: set[str],
    conclusions: Mapping[str, ConclusionDef],
    pathways: Mapping[str, PathwayDef],
    concepts: Mapping[str, Concept],
) -> dict[str, Any]:
    """orders.yaml: the order value sets (named apart from the concepts: both are published as
    ValueSets), the advice and the pathways whose own card any order gets, all cross-checked."""
    file = "orders.yaml"
    data = load_file(root, file, OrdersFileSchema())
    for name in data["pathway_card"]:
        if name not in pathways:
            raise KnowledgeError(file, "pathway_card", f"unknown pathway {name!r}")
    orders = {}
    for name, raw in data["orders"].items():
        if name in concepts:
            raise KnowledgeError(file, f"orders.{name}", "already the name of a concept")
        check_known(file, f"orders.{name}.concepts", raw["concepts"], concepts, "concept")
        codes = [code for concept in raw["concepts"] for code in concepts[concept].codes]
        codes += read_codings(file, f"orders.{name}", raw["codes"], systems, source_ids)
        if not codes:
            raise KnowledgeError(file, f"orders.{name}", "names no concept and no code")
        orders[name] = OrderSet(name, raw["display"], raw["resource"], tuple(codes))
    advice = []
    for i, raw in enumerate(data["advice"]):
        where = f"advice.{i}"
        for field, known in (("orders", orders), ("conclusions", conclusions)):
            check_known(file, f"{where}.{field}", raw[field], known, "name")
        check_sources(file, f"{where}.sources", raw["sources"], source_ids)
        advice.append(
            OrderAdvice(
                raw["id"],
                tuple(raw["orders"]),
                tuple(raw["conclusions"]),
                raw["early_only"],
                raw["indicator"],
                raw["summary"],
                " ".join(raw["text"].split()),
                tuple(raw["sources"]),
            )
        )
    return {
        "orders": orders,
        "order_advice": tuple(advice),
        "order_pathway_card": frozenset(data["pathway_card"]),
    }
