"""The knowledge base's closed vocabularies: sides, risks, fact kinds and the fields of each fact.

Declared once here; the schemas refuse anything else and the fact builders are typed by them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

Side = Literal["left", "right", "bilateral", "unspecified"]
Risk = Literal["negligible", "low", "moderate", "high", "certain"]
Tag = Literal["A", "B", "L"]  # verified, corroborated, local (site-added); [U] codes are refused
Measure = Literal["reflex", "strength", "quantity", "coded_result"]
QualifierRole = Literal["site", "laterality", "disc_level", "absent_value"]
InputKind = Literal["finding", "treatment", "patient"]  # facts made from the record
DerivedKind = Literal["evidence", "conclusion", "pathway"]  # facts the rules derive
FactKind = InputKind | DerivedKind

# The fields each kind of fact carries: the rules may name only these, the fact builders may
# write only these (mypy checks both through the Literal types).
FindingField = Literal[
    "concept",
    "site",
    "side",
    "status",
    "recent",
    "new",
    "current",
    "persisting",
    "level",
    "grade",
    "progressive",
    "symmetric",
    "explained",
    "contradicted",
    "result",
    "long_standing",
]
TreatmentField = Literal["concept", "status", "long_term", "recent"]
PatientField = Literal["older"]
DerivedField = Literal["name", "root", "side", "kind", "recent"]
InputField = FindingField | TreatmentField | PatientField

SIDES: tuple[Side, ...] = get_args(Side)
RISKS: tuple[Risk, ...] = get_args(Risk)
TAGS: tuple[Tag, ...] = get_args(Tag)
MEASURES: tuple[Measure, ...] = get_args(Measure)
QUALIFIER_ROLES: tuple[QualifierRole, ...] = get_args(QualifierRole)
INPUT_FACTS: tuple[InputKind, ...] = get_args(InputKind)
DERIVED_FACTS: tuple[DerivedKind, ...] = get_args(DerivedKind)
COMPARISONS = (">=", ">", "<=")  # value vs threshold: high (>=, >) or low (<=)
FACT_FIELDS: Mapping[FactKind, tuple[str, ...]] = {
    "finding": get_args(FindingField),
    "treatment": get_args(TreatmentField),
    "patient": get_args(PatientField),
    "evidence": get_args(DerivedField),
    "conclusion": get_args(DerivedField),
    "pathway": ("name",),
}
