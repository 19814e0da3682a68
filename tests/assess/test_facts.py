"""Normalisation: codes -> concepts, sides, sites, absent values, grades, timing, progression."""

from __future__ import annotations

from typing import Any

from service.assess.reasoning import Reasoner
from service.knowledge import Knowledge
from tests.support.records import (
    EXAM,
    ICD,
    SCT,
    coded,
    condition,
    facts_of,
    findings,
    observation,
    present,
)


def test_side_comes_from_a_sided_icd_code(kb: Knowledge) -> None:
    [fact] = findings(facts_of(kb, condition(coded(ICD, "M54.32"))))
    assert (fact["concept"], fact["side"]) == ("sciatica", "left")


def test_side_and_site_come_from_body_site_codings(kb: Knowledge) -> None:
    site = {"coding": [{"system": SCT, "code": "2402003"}, {"system": SCT, "code": "51440002"}]}
    [fact] = findings(facts_of(kb, observation(coded(SCT, "309538000"), bodySite=site)))
    assert (fact["site"], fact["side"]) == ("dorsum_of_foot", "bilateral")


def test_one_code_can_mean_two_concepts(kb: Knowledge) -> None:
    concepts = {f["concept"] for f in findings(facts_of(kb, condition(coded(SCT, "202735001"))))}
    assert concepts == {"disc_herniation", "lumbar_radiculopathy"}


def test_absent_values_make_only_absent_findings_and_count_as_documented(kb: Knowledge) -> None:
    result = facts_of(
        kb,
        observation(coded(SCT, "267064002"), valueBoolean=False),
        observation(coded(SCT, "72042002"), valueCodeableConcept=coded(SCT, "260385009")),
        observation(
            coded(EXAM, "saddle-sensory-loss"),
            interpretation=[
                coded("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "NEG")
            ],
        ),
        observation(
            coded(EXAM, "straight-leg-raise"),
            valueCodeableConcept=coded("http://terminology.hl7.org/CodeSystem/v2-0136", "N"),
        ),
    )
    assert {f["status"] for f in findings(result)} == {"absent"}
    assert {
        "bladder_dysfunction",
        "bowel_dysfunction",
        "saddle_sensory_loss",
        "positive_straight_leg_raise",
    } <= result.documented


def test_reflex_and_strength_grades_are_classified(kb: Knowledge) -> None:
    result = facts_of(
        kb,
        observation(coded(EXAM, "ankle-reflex"), valueInteger=1),
        observation(coded(EXAM, "knee-reflex"), valueCodeableConcept=coded(EXAM, "brisk")),
        observation(coded(EXAM, "strength-foot-eversion"), valueQuantity={"value": 3, "unit": "{score}"}),
        observation(coded(EXAM, "strength-foot-inversion"), valueInteger=4),
    )
    grades = {f["concept"]: f["grade"] for f in findings(result)}
    assert grades == {
        "ankle_reflex": "reduced",
        "knee_reflex": "brisk",
        "strength_foot_eversion": "severe",
        "strength_foot_inversion": "weak",
    }


def test_out_of_range_grade_is_not_used_and_is_a_data_gap(kb: Knowledge) -> None:
    result = facts_of(kb, observation(coded(EXAM, "strength-knee-extension"), valueInteger=9))
    assert findings(result) == [] and result.notes == ()
    assert result.unreadable == (
        "Knee extension strength is recorded in an Observation but it has no "
        "MRC grade 0-5, so it was not used: check it and record it in "
        "coded form.",
    )


def serial(kb: Knowledge, *grades: tuple[str, int]) -> list[tuple[str, bool, str]]:
    """(grade, progressive, label) of each left ankle plantarflexion grade, by date."""
    left = {"coding": [{"system": SCT, "code": "7771000"}]}
    result = facts_of(
        kb,
        *(
            observation(
                coded(EXAM, "strength-ankle-plantarflexion"),
                valueInteger=g,
                effectiveDateTime=d,
                bodySite=left,
            )
            for d, g in grades
        ),
    )
    return sorted(
        (str(f.get("grade")), bool(f.get("progressive")), f.label)
        for f in result.facts
        if f.kind == "finding"
    )


def test_falling_serial_grades_mark_the_latest_progressive(kb: Knowledge) -> None:
    read = serial(kb, ("2026-02-20", 4), ("2026-01-10", 5))
    assert [(g, p) for g, p, _ in read] == [("superseded", False), ("weak", True)]
    assert ", falling [" in read[1][2]


def test_a_rising_series_is_recovering_and_the_latest_grade_decides(kb: Knowledge) -> None:
    read = serial(kb, ("2026-01-10", 3), ("2026-02-01", 4), ("2026-02-20", 5))
    assert [(g, p) for g, p, _ in read] == [("normal", False), ("superseded", False), ("superseded", False)]
    assert ", recovering [" in read[0][2] and "superseded by a later grade" in read[1][2]
    still_weak = serial(kb, ("2026-01-10", 2), ("2026-02-20", 3))
    assert [(g, p) for g, p, _ in still_weak] == [("severe", False), ("superseded", False)]


def test_an_unchanged_series_is_neither_falling_nor_recovering(kb: Knowledge) -> None:
    read = serial(kb, ("2026-01-10", 4), ("2026-02-20", 4))
    assert [(g, p) for g, p, _ in read] == [("superseded", False), ("weak", False)]
    assert not any("recovering" in label or "falling" in label for _, _, label in read)


def test_back_pain_is_current_within_twelve_weeks_or_when_onset_is_unknown(kb: Knowledge) -> None:
    result = facts_of(
        kb,
        condition(coded(SCT, "279039007"), onsetDateTime="2014-03-10"),
        condition(coded(SCT, "23056005"), onsetDateTime="2025-12-10"),
        condition(coded(ICD, "M54.50")),
    )
    current = sorted((f["concept"], f["current"]) for f in findings(result))
    assert current == [("low_back_pain", False), ("low_back_pain", True), ("sciatica", True)]


def test_spine_surgery_is_recent_within_twelve_months(kb: Knowledge) -> None:
    def surgery(when: str) -> dict[str, Any]:
        return {
            "resourceType": "Procedure",
            "status": "completed",
            "performedDateTime": when,
            "code": coded(SCT, "178618008"),
            "subject": {"reference": "urn:uuid:p"},
        }

    result = facts_of(kb, surgery("2020-02-11"), surgery("2025-06-01"))
    recent = sorted((f.get("recent"), f.label.split(" [")[0]) for f in result.facts if f.kind == "treatment")
    assert recent == [
        (False, "Previous lumbar spine surgery (coded, 2020-02-11)"),
        (True, "Previous lumbar spine surgery (coded, 2025-06-01)"),
    ]


def test_timing_from_onset_age_history_and_unknown_onset(kb: Knowledge) -> None:
    result = facts_of(
        kb,
        condition(coded(SCT, "64859006"), onsetAge={"value": 55, "unit": "a"}),
        condition(
            coded(SCT, "266987004"),
            clinicalStatus=coded("http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved"),
        ),
        condition(coded(SCT, "23056005"), onsetDateTime="2026-02-25"),
    )
    by_concept = {f["concept"]: f for f in findings(result)}
    assert by_concept["osteoporosis"]["persisting"] and not by_concept["osteoporosis"]["recent"]
    assert by_concept["history_of_cancer"]["status"] == "history"
    assert by_concept["history_of_cancer"]["recent"]  # onset unknown counts as recent
    assert by_concept["sciatica"]["recent"] and not by_concept["sciatica"]["persisting"]


def test_age_becomes_a_patient_fact(kb: Knowledge) -> None:
    [patient] = [f for f in facts_of(kb).facts if f.kind == "patient"]
    assert patient.attrs == (("older", True),) and patient.label == "Age 55 years"


def test_unknown_codes_make_no_facts(kb: Knowledge) -> None:
    assert findings(facts_of(kb, condition(coded(SCT, "444814009")))) == []


def test_a_peroneal_lesion_explains_the_signs_on_its_side(kb: Knowledge) -> None:
    left, right = ({"coding": [{"system": SCT, "code": code}]} for code in ("7771000", "24028007"))
    result = facts_of(
        kb,
        condition(coded(ICD, "G57.32")),
        *(
            observation(coded(EXAM, "strength-ankle-dorsiflexion"), valueInteger=4, bodySite=site)
            for site in (left, right)
        ),
    )
    explained = sorted(
        (f["side"], f["explained"]) for f in findings(result) if f["concept"] == "strength_ankle_dorsiflexion"
    )
    assert explained == [("left", True), ("right", False)]


def test_preserved_inversion_explains_weak_dorsiflexion_on_that_side(kb: Knowledge) -> None:
    left = {"coding": [{"system": SCT, "code": "7771000"}]}
    result = facts_of(
        kb,
        observation(coded(EXAM, "strength-ankle-dorsiflexion"), valueInteger=3, bodySite=left),
        observation(coded(EXAM, "strength-foot-inversion"), valueInteger=5, bodySite=left),
    )
    [weak] = [f for f in result.facts if f.get("concept") == "strength_ankle_dorsiflexion"]
    assert weak.get("explained") is True and "points to the peroneal nerve" in weak.label


def test_reflex_loss_recorded_left_and_right_is_symmetric(kb: Knowledge) -> None:
    def reflex(code: str, grade: int) -> dict[str, Any]:
        return observation(
            coded(EXAM, "ankle-reflex"),
            valueInteger=grade,
            bodySite={"coding": [{"system": SCT, "code": code}]},
        )

    both = findings(facts_of(kb, reflex("7771000", 0), reflex("24028007", 1)))
    assert [f["symmetric"] for f in both] == [True, True]  # both reduced
    one = findings(facts_of(kb, reflex("7771000", 0), reflex("24028007", 2)))
    assert [f["symmetric"] for f in one] == [False, False]


def test_a_documented_negative_is_a_fact_with_status_absent(kb: Knowledge) -> None:
    result = facts_of(
        kb,
        observation(coded(EXAM, "straight-leg-raise"), valueBoolean=False),
        observation(coded(EXAM, "radiating-leg-pain"), valueString="denies"),
    )
    assert sorted((f["concept"], f["status"]) for f in findings(result)) == [
        ("positive_straight_leg_raise", "absent"),
        ("radiating_leg_pain", "absent"),
    ]


def test_a_finding_read_from_a_coded_result_is_marked_as_a_result(kb: Knowledge) -> None:
    xray = observation(coded("http://loinc.org", "24972-2"), valueCodeableConcept=coded(SCT, "26538006"))
    result = findings(facts_of(kb, xray, condition(coded(SCT, "26538006"))))
    assert sorted((f["concept"], f["result"]) for f in result) == [
        ("disc_degeneration", False),
        ("disc_degeneration", True),
    ]


def test_a_negative_contradicts_the_radicular_and_foot_symptoms_on_its_side_only(kb: Knowledge) -> None:
    left, right = ({"coding": [{"system": SCT, "code": code}]} for code in ("7771000", "24028007"))
    result = facts_of(
        kb,
        observation(coded(EXAM, "straight-leg-raise"), valueBoolean=False, bodySite=left),
        *(observation(coded(EXAM, "radiating-leg-pain"), bodySite=site) for site in (left, right)),
        condition(coded(ICD, "M54.32")),  # sciatica, left side
        condition(coded(SCT, "47933007"), bodySite=[right]),
    )  # foot pain, right
    marked = sorted((f["concept"], f["side"], f["status"], f["contradicted"]) for f in findings(result))
    assert marked == [
        ("foot_pain", "right", "active", False),
        ("positive_straight_leg_raise", "left", "absent", False),
        ("radiating_leg_pain", "left", "active", True),
        ("radiating_leg_pain", "right", "active", False),
        ("sciatica", "left", "active", True),
    ]
    [coded_sciatica] = [f for f in result.facts if f.get("concept") == "sciatica"]
    assert "straight-leg raise negative on that side" in coded_sciatica.label


def test_a_negative_without_a_side_covers_both_and_a_crossed_one_counts_for_nothing(kb: Knowledge) -> None:
    right = {"coding": [{"system": SCT, "code": "24028007"}]}
    pain = observation(coded(EXAM, "radiating-leg-pain"), bodySite=right)
    unsided = facts_of(
        kb,
        observation(coded(EXAM, "radiating-leg-pain"), valueString="denies"),
        observation(coded(EXAM, "straight-leg-raise"), bodySite=right),
    )
    assert [f["contradicted"] for f in present(unsided)] == [True]
    crossed = facts_of(kb, pain, observation(coded(EXAM, "crossed-straight-leg-raise"), valueBoolean=False))
    assert [f["contradicted"] for f in present(crossed)] == [False]


def test_stenosis_is_long_standing_from_three_months_not_twelve_weeks(kb: Knowledge) -> None:
    def stenosis(onset: str) -> dict[str, Any]:
        return condition(coded(SCT, "18347007"), onsetDateTime=onset)

    read = sorted(
        (f["current"], f["long_standing"])
        for f in findings(
            facts_of(
                kb,
                stenosis("2025-12-03"),
                stenosis("2025-11-30"),
                stenosis("2025-12-01T09:00:00Z"),
                condition(coded(SCT, "18347007")),
            )
        )
    )
    # 88 days: no longer current, not yet 3 months; 91 days and exactly 90: long-standing;
    # unknown onset: current, never long-standing
    assert read == [(False, False), (False, True), (False, True), (True, False)]


def test_tarsal_tunnel_explains_the_sole_not_the_heel(kb: Knowledge) -> None:
    left = {"coding": [{"system": SCT, "code": "7771000"}]}

    def numb(site: str) -> dict[str, Any]:
        return observation(
            coded(SCT, "309538000"), bodySite={"coding": [{"system": SCT, "code": site}, *left["coding"]]}
        )

    result = facts_of(kb, condition(coded(ICD, "G57.52")), numb("37136002"), numb("84607009"))
    assert sorted((f["site"], f["explained"]) for f in findings(result) if f["concept"] == "numbness") == [
        ("heel", False),
        ("sole", True),
    ]


def test_the_rationale_names_the_negative_beside_a_coded_sciatica(kb: Knowledge) -> None:
    left = {"coding": [{"system": SCT, "code": "7771000"}]}
    facts = facts_of(
        kb,
        condition(coded(ICD, "M54.50")),
        condition(coded(ICD, "M54.32")),
        observation(coded(EXAM, "straight-leg-raise"), valueBoolean=False, bodySite=left),
    )
    inference = Reasoner(kb).infer(facts)
    assert inference.pathway.code == "conservative-care" and inference.pathway_why is not None
    assert [
        f.label.split(" [")[0] for f in inference.pathway_why.findings if f.get("concept") == "sciatica"
    ] == ["Sciatica (left), straight-leg raise negative on that side"]
