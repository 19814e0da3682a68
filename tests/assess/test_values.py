"""Values read the way they are written (contract §2): text, units, components, panels,
derivedFrom, and how long a medicine has been taken."""

from __future__ import annotations

from typing import Any

import pytest

from service.knowledge import Knowledge
from tests.support.records import (
    EXAM,
    SCT,
    coded,
    condition,
    facts_of,
    findings,
    observation,
    present,
)

LOINC, RXNORM = "http://loinc.org", "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
RETENTION = coded(SCT, "267064002")
LEFT, RIGHT = coded(SCT, "7771000"), coded(SCT, "24028007")


def quantity(value: float, code: str | None, unit: str | None = None, **extra: Any) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value, **extra}
    if code is not None:
        q |= {"system": UCUM, "code": code}
    if unit is not None:
        q["unit"] = unit
    return q


# -- free text: the knowledge's lexicon, and everything else a data gap


@pytest.mark.parametrize(
    "text", ["No", "denies", "Denied.", "NEGATIVE", " absent ", "none", "not present", "Normal", "nil"]
)
def test_a_negation_in_text_means_absent(kb: Knowledge, text: str) -> None:
    result = facts_of(kb, observation(RETENTION, valueString=text))
    assert [(f["concept"], f["status"]) for f in findings(result)] == [("bladder_dysfunction", "absent")]
    assert present(result) == [] and "bladder_dysfunction" in result.documented
    assert result.unreadable == ()


@pytest.mark.parametrize("text", ["Yes", "present", "Positive", "y"])
def test_an_affirmation_in_text_means_present(kb: Knowledge, text: str) -> None:
    [fact] = findings(facts_of(kb, observation(RETENTION, valueString=text)))
    assert fact["concept"] == "bladder_dysfunction"


@pytest.mark.parametrize("text", ["denies retention but has hesitancy", "?", "see letter", "N/A", "not sure"])
def test_other_text_is_never_present_and_is_a_data_gap_naming_the_resource(kb: Knowledge, text: str) -> None:
    result = facts_of(kb, observation(RETENTION, valueString=text, effectiveDateTime="2026-02-28"))
    assert findings(result) == []
    [gap] = result.unreadable
    assert "an Observation of 2026-02-28" in gap and "Bladder dysfunction" in gap
    assert text not in gap


# -- measured values: UCUM units converted to the threshold's unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (quantity(38.0, "Cel"), "high"),
        (quantity(37.9, "Cel"), "normal"),
        (quantity(100.4, "[degF]"), "high"),
        (quantity(100.2, "[degF]", "°F"), "normal"),
        (quantity(38.5, None, "°C"), "high"),
        (quantity(39.0, None, "degC"), "high"),
    ],
)
def test_body_temperature_is_read_in_celsius_or_fahrenheit(
    kb: Knowledge, value: dict[str, Any], expected: str
) -> None:
    [fact] = findings(facts_of(kb, observation(coded(LOINC, "8310-5"), valueQuantity=value)))
    assert (fact["concept"], fact["grade"]) == ("body_temperature", expected)


@pytest.mark.parametrize(
    "value",
    [
        quantity(311, "K"),
        quantity(38.5, None),
        quantity(38.5, "mL"),
        quantity(38.5, "Cel", comparator=">"),
        {"unit": "Cel"},
    ],
)
def test_a_temperature_that_cannot_be_converted_is_unreadable_never_present(
    kb: Knowledge, value: dict[str, Any]
) -> None:
    result = facts_of(kb, observation(coded(LOINC, "8310-5"), valueQuantity=value))
    assert findings(result) == [] and len(result.unreadable) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (quantity(250, "mL"), "high"),
        (quantity(200, "mL"), "normal"),
        (quantity(0.25, "L"), "high"),
        (quantity(0.2, "L", "l"), "normal"),
        (quantity(201, None, "ml"), "high"),
    ],
)
def test_post_void_residual_over_200_ml_is_high(kb: Knowledge, value: dict[str, Any], expected: str) -> None:
    [fact] = findings(facts_of(kb, observation(coded(SCT, "700387001"), valueQuantity=value)))
    assert (fact["concept"], fact["grade"]) == ("post_void_residual", expected)


def test_strength_as_a_quantity_needs_a_score_unit(kb: Knowledge) -> None:
    code = coded(EXAM, "strength-ankle-dorsiflexion")
    scored = findings(
        facts_of(
            kb,
            observation(code, valueQuantity=quantity(3, "{score}")),
            observation(code, valueQuantity={"value": 4}),
        )
    )
    assert sorted(f["grade"] for f in scored) == ["severe", "weak"]
    wrong = facts_of(kb, observation(code, valueQuantity=quantity(3, "%")))
    assert findings(wrong) == [] and len(wrong.unreadable) == 1


def test_hba1c_in_mmol_per_mol_is_not_misread_as_percent(kb: Knowledge) -> None:
    result = facts_of(kb, observation(coded(LOINC, "4548-4"), valueQuantity=quantity(30, "mmol/mol")))
    assert findings(result) == [] and len(result.unreadable) == 1


# -- components, panels and derivedFrom


def test_each_mapped_component_is_a_finding_with_its_own_side_and_the_parents_time(kb: Knowledge) -> None:
    panel = observation(
        coded(LOINC, "11450-4"),
        effectiveDateTime="2026-02-27",
        bodySite=RIGHT,
        component=[
            {
                "code": {
                    "coding": [{"system": EXAM, "code": "ankle-reflex"}, {"system": SCT, "code": "7771000"}]
                },
                "valueInteger": 0,
            },
            {"code": coded(EXAM, "knee-reflex"), "valueInteger": 2},
            {
                "code": coded(EXAM, "strength-great-toe-extension"),
                "dataAbsentReason": coded(
                    "http://terminology.hl7.org/CodeSystem/data-absent-reason", "not-performed"
                ),
            },
            {"code": coded(LOINC, "8867-4"), "valueQuantity": quantity(80, "/min")},
        ],
    )
    result = facts_of(kb, panel)
    read = sorted((f["concept"], f["side"], f["grade"], f["recent"]) for f in findings(result))
    assert read == [("ankle_reflex", "left", "reduced", True), ("knee_reflex", "right", "normal", True)]
    assert "strength_great_toe_extension" not in result.documented


def test_a_component_coded_like_its_parent_is_part_of_the_parents_finding(kb: Knowledge) -> None:
    slr = observation(
        coded(EXAM, "straight-leg-raise"),
        valueBoolean=False,
        component=[{"code": coded(EXAM, "straight-leg-raise"), "valueQuantity": quantity(40, "deg")}],
    )
    assert [f["status"] for f in findings(facts_of(kb, slr))] == ["absent"]  # one finding


def test_a_panel_without_a_value_is_a_heading_for_its_members(kb: Knowledge) -> None:
    panel = observation(coded(SCT, "267064002"), hasMember=[{"reference": "urn:uuid:r1"}])
    member = observation(coded(SCT, "267064002"), valueString="No")
    assert [f["status"] for f in findings(facts_of(kb, panel, member))] == ["absent"]


def test_a_restatement_through_derived_from_is_read_once(kb: Knowledge) -> None:
    code = coded(EXAM, "strength-ankle-dorsiflexion")
    source = observation(code, valueInteger=4, effectiveDateTime="2026-02-01", bodySite=LEFT)
    restated = observation(
        code,
        valueInteger=4,
        effectiveDateTime="2026-02-20",
        bodySite=LEFT,
        derivedFrom=[{"reference": "urn:uuid:r0"}],
    )
    result = facts_of(kb, source, restated)
    assert [f.source for f in result.facts if f.kind == "finding"] == ["urn:uuid:r0"]
    assert result.notes == ("Read once: urn:uuid:r1 restates its source (derivedFrom).",)


# -- how long a medicine has been taken


def statement(rxcui: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": status,
        "medicationCodeableConcept": coded(RXNORM, rxcui),
        "subject": {"reference": "urn:uuid:p"},
        **extra,
    }


def long_term(kb: Knowledge, *resources: dict[str, Any]) -> set[tuple[Any, Any]]:
    return {
        (dict(f.attrs)["concept"], dict(f.attrs)["long_term"])
        for f in facts_of(kb, *resources).facts
        if f.kind == "treatment"
    }


def test_a_systemic_steroid_taken_for_three_months_is_long_term(kb: Knowledge) -> None:
    held = statement("8640", "active", effectivePeriod={"start": "2025-11-15"})
    assert ("systemic_corticosteroid", True) in long_term(kb, held)


@pytest.mark.parametrize(
    "resource",
    [
        statement("8640", "active", effectivePeriod={"start": "2026-01-15"}),  # 6 weeks
        statement("8640", "completed", effectivePeriod={"start": "2025-01-01", "end": "2025-03-01"}),
        statement("8640", "active"),  # start unknown
    ],
)
def test_a_short_finished_or_undated_course_is_not_long_term(kb: Knowledge, resource: dict[str, Any]) -> None:
    assert ("systemic_corticosteroid", False) in long_term(kb, resource)


def test_repeat_prescriptions_count_from_the_first(kb: Knowledge) -> None:
    first = {
        "resourceType": "MedicationRequest",
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": coded(RXNORM, "8640"),
        "subject": {"reference": "urn:uuid:p"},
        "authoredOn": "2025-10-01",
    }
    repeat = {**first, "status": "active", "authoredOn": "2026-02-20"}
    assert ("systemic_corticosteroid", True) in long_term(kb, first, repeat)


def test_icd_long_term_steroid_code_is_a_finding(kb: Knowledge) -> None:
    [fact] = findings(facts_of(kb, condition(coded("http://hl7.org/fhir/sid/icd-10-cm", "Z79.52"))))
    assert fact["concept"] == "long_term_steroids"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (quantity(0.7, "1"), "low"),
        (quantity(0.9, None), "low"),
        (quantity(0.91, None), "normal"),
        (quantity(1.1, None, "ratio"), "normal"),
    ],
)
def test_an_ankle_brachial_index_at_or_below_090_is_low(
    kb: Knowledge, value: dict[str, Any], expected: str
) -> None:
    [fact] = findings(facts_of(kb, observation(coded(EXAM, "ankle-brachial-index"), valueQuantity=value)))
    assert (fact["concept"], fact["grade"]) == ("ankle_brachial_index", expected)


def test_an_ankle_brachial_index_in_another_unit_is_unreadable(kb: Knowledge) -> None:
    result = facts_of(
        kb, observation(coded(EXAM, "ankle-brachial-index"), valueQuantity=quantity(0.7, "mm[Hg]"))
    )
    assert findings(result) == [] and len(result.unreadable) == 1


def test_a_coding_whose_code_is_not_text_is_no_coding(kb: Knowledge) -> None:
    """A JSON null code (found by the CDS Hooks fuzz test: it crashed reading the side of an
    ICD-10-CM code) is skipped, never a 500; the other codings still count."""
    code = {
        "coding": [
            {"system": SCT, "code": "23056005"},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": None},
        ]
    }
    assert [f["concept"] for f in findings(facts_of(kb, condition(code)))] == ["sciatica"]
