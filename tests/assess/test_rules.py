"""Each rule fires on the smallest set of facts that should trigger it, and the reasoner's
own decisions (withdrawal, pathway rank, risk) follow the knowledge."""

from __future__ import annotations

from typing import Any

import pytest

from service.assess.fact import FactSet, InputFact
from service.assess.reasoning import Inference, Reasoner
from service.knowledge import Knowledge

_DEFAULTS: dict[str, Any] = {
    "site": "none",
    "side": "unspecified",
    "status": "active",
    "recent": True,
    "new": True,
    "current": True,
    "persisting": False,
    "level": "none",
    "symmetric": False,
    "explained": False,
    "result": False,
    "progressive": False,
    "contradicted": False,
    "long_standing": False,
}


def finding(concept: str, **attrs: Any) -> InputFact:
    values = {**_DEFAULTS, "concept": concept, **attrs}
    return InputFact("finding", tuple(sorted(values.items())), concept, f"Observation/{concept}")


def treatment(
    concept: str, status: str = "active", long_term: bool = False, recent: bool = True
) -> InputFact:
    return InputFact(
        "treatment",
        (("concept", concept), ("long_term", long_term), ("recent", recent), ("status", status)),
        concept,
        f"Procedure/{concept}",
    )


OLDER = InputFact("patient", (("older", True),), "Age 70 years", None)
LBP = finding("low_back_pain")
OLD_LBP = finding("low_back_pain", current=False, recent=False, new=False, persisting=True)
NO_PULSE = finding("absent_foot_pulse", side="left")


@pytest.fixture(scope="module")
def reasoner(kb: Knowledge) -> Reasoner:
    return Reasoner(kb)


def infer(reasoner: Reasoner, *facts: InputFact) -> Inference:
    return reasoner.infer(FactSet(tuple(facts), frozenset(), ()))


# rule id -> the facts that must make it fire
SCENARIOS: dict[str, list[InputFact]] = {
    "E-SPINAL-CONTEXT": [LBP],
    "E-SPINAL-SURGERY": [treatment("spinal_surgery"), finding("bladder_dysfunction")],
    "E-SPINAL-HISTORY-SURGERY": [treatment("spinal_surgery", status="completed", recent=False)],
    "E-SPINAL-HISTORY-IMAGING": [finding("incidental_disc_degeneration")],
    "E-SPINAL-CONTEXT-RESULT": [finding("lumbar_radiculopathy", result=True)],
    "E-SPINAL-HISTORY-RESULT": [finding("disc_degeneration", result=True)],
    "E-CURRENT-BACK-PROBLEM": [LBP],
    "E-SERIOUS-FLAG-CHRONIC-PAIN": [OLD_LBP, finding("osteoporosis")],
    "E-RADICULAR-CODED": [finding("sciatica", side="left")],
    "E-RADICULAR": [finding("radiating_leg_pain", side="left")],
    "E-RADICULAR-PERSISTING": [finding("sciatica", persisting=True)],
    "E-BACK-FOOT": [LBP, finding("foot_pain", side="left"), finding("sciatica", side="left")],
    "E-BACK-FOOT-POSSIBLE": [LBP, finding("foot_pain", side="left")],
    "E-LOCAL-CAUSE": [finding("vascular_claudication")],
    "E-LOCAL-CAUSE-POLYNEUROPATHY": [finding("numbness", side="bilateral"), finding("diabetes")],
    "E-LOCAL-CAUSE-VASCULAR": [NO_PULSE],
    "E-CES-BLADDER": [LBP, finding("bladder_dysfunction")],
    "E-CES-BOWEL": [LBP, finding("bowel_dysfunction")],
    "E-CES-SADDLE": [LBP, finding("saddle_sensory_loss")],
    "E-CES-SADDLE-SITE": [LBP, finding("other_sensory_disturbance", site="perineum")],
    "E-CES-RETENTION-MEASURED": [LBP, finding("post_void_residual", grade="high")],
    "E-CES-SEXUAL": [LBP, finding("sexual_dysfunction")],
    "E-MOTOR-SEVERE": [finding("strength_great_toe_extension", grade="severe")],
    "E-MOTOR-PROGRESSIVE": [finding("strength_great_toe_extension", grade="weak", progressive=True)],
    "E-FOOT-DROP": [finding("foot_drop")],
    "E-BILATERAL-RADICULAR": [finding("sciatica", side="bilateral")],
    "E-BILATERAL-RADICULAR-SIDES": [
        finding("sciatica", side="left"),
        finding("radiating_leg_pain", side="right"),
    ],
    "E-BILATERAL-ROOT": [
        finding("numbness", site="dorsum_of_foot", side="left"),
        finding("numbness", site="heel", side="right"),
    ],
    "E-FLAG-MALIGNANCY-HISTORY": [LBP, finding("history_of_cancer", status="history")],
    "E-FLAG-MALIGNANCY-WEIGHT": [LBP, finding("unexplained_weight_loss"), OLDER],
    "E-FLAG-INFECTION": [LBP, finding("fever")],
    "E-FLAG-INFECTION-TEMPERATURE": [LBP, finding("body_temperature", grade="high")],
    "E-FLAG-INFECTION-TREATMENT": [LBP, treatment("immunosuppression")],
    "E-FLAG-FRACTURE-STEROID-MEDICINE": [LBP, treatment("systemic_corticosteroid", long_term=True)],
    "E-FLAG-FRACTURE": [LBP, finding("osteoporosis")],
    "E-DIABETES-CODED": [finding("diabetes")],
    "E-DIABETES-HBA1C": [finding("hba1c", grade="high")],
    "E-BILATERAL-SENSORY": [finding("paresthesia", side="bilateral")],
    "E-BILATERAL-SENSORY-SIDES": [finding("numbness", side="left"), finding("numbness", side="right")],
    "E-BILATERAL-ANKLE-REFLEX": [
        finding("ankle_reflex", grade="reduced", side="left"),
        finding("ankle_reflex", grade="reduced", side="right"),
    ],
    "E-POLYNEUROPATHY-CODED": [finding("diabetic_neuropathy")],
    "E-POLYNEUROPATHY-PATTERN": [finding("numbness", side="bilateral"), finding("diabetes")],
    "E-INVERSION-PRESERVED": [finding("strength_foot_inversion", grade="normal")],
    "E-DORSIFLEXION-WEAK": [finding("strength_ankle_dorsiflexion", grade="weak")],
    "E-DORSIFLEXION-FOOT-DROP": [finding("foot_drop")],
    "C-CES": [LBP, finding("bladder_dysfunction")],
    "C-CES-CODED": [finding("cauda_equina_syndrome")],
    "C-RADICULOPATHY": [LBP, finding("ankle_reflex", grade="reduced", side="right")],
    "E-IMAGING-CONCORDANT": [
        finding("disc_herniation", level="L4_L5"),
        finding("numbness", site="dorsum_of_foot", side="left"),
    ],
    "C-RADICULOPATHY-IMAGING": [
        finding("disc_herniation", level="L4_L5"),
        finding("numbness", site="dorsum_of_foot", side="left"),
    ],
    "C-MALIGNANCY": [LBP, finding("history_of_cancer", status="history")],
    "C-BILATERAL-RADICULAR": [finding("sciatica", side="bilateral")],
    "E-NEUROGENIC-CLAUDICATION": [finding("neurogenic_claudication")],
    "E-STENOSIS-LEG-SYMPTOM": [finding("leg_pain")],
    "E-VASCULAR-CAUSE": [finding("peripheral_arterial_disease")],
    "E-VASCULAR-PULSES": [NO_PULSE],
    "E-VASCULAR-ABI": [finding("ankle_brachial_index", grade="low")],
    "E-VASCULAR-CAUSE-SIGNS": [finding("ankle_brachial_index", grade="low")],
    "C-STENOSIS-CLAUDICATION-VASCULAR": [
        finding("spinal_stenosis"),
        finding("neurogenic_claudication"),
        NO_PULSE,
    ],
    "C-PAD-SIGNS": [NO_PULSE],
    "C-STENOSIS-CLAUDICATION": [finding("spinal_stenosis"), finding("neurogenic_claudication")],
    "C-STENOSIS-LEG": [finding("spinal_stenosis"), finding("leg_pain", side="left")],
    "E-STENOSIS-PERSISTING": [finding("spinal_stenosis", current=False, long_standing=True)],
    "P-SURGICAL-STENOSIS": [
        finding("spinal_stenosis", current=False, long_standing=True),
        finding("neurogenic_claudication"),
        treatment("conservative_care"),
    ],
    "P-CONSERVATIVE-STENOSIS": [finding("spinal_stenosis"), finding("neurogenic_claudication")],
    "C-MALIGNANCY-CODED": [finding("spinal_malignancy")],
    "C-INFECTION": [LBP, finding("iv_drug_use")],
    "C-INFECTION-CODED": [finding("vertebral_infection")],
    "C-FRACTURE": [LBP, finding("long_term_steroids")],
    "C-FRACTURE-CODED": [finding("vertebral_fracture")],
    "C-PLANTAR-FASCIITIS": [finding("plantar_fasciitis", side="right")],
    "C-DPN-CODED": [finding("diabetic_neuropathy")],
    "C-DPN-PATTERN": [finding("numbness", side="bilateral"), finding("hba1c", grade="high")],
    "C-PAD": [finding("vascular_claudication")],
    "C-PERONEAL-CODED": [finding("peroneal_neuropathy")],
    "C-PERONEAL-PATTERN": [
        finding("strength_ankle_dorsiflexion", grade="weak", side="left"),
        finding("strength_foot_inversion", grade="normal", side="left"),
    ],
    "C-TARSAL-TUNNEL": [finding("tarsal_tunnel_syndrome")],
    "P-EMERGENCY-CES": [LBP, finding("bladder_dysfunction", recent=True)],
    "P-URGENT-CES-ESTABLISHED": [LBP, finding("bladder_dysfunction", recent=False)],
    "P-URGENT-DEFICIT": [LBP, finding("foot_drop")],
    "P-URGENT-BILATERAL": [finding("sciatica", side="bilateral")],
    "P-URGENT-SERIOUS": [finding("vertebral_fracture")],
    "P-SURGICAL": [
        finding("sciatica", persisting=True),
        finding("ankle_reflex", grade="reduced"),
        treatment("conservative_care"),
    ],
    "P-CONSERVATIVE-RADICULOPATHY": [LBP, finding("knee_reflex", grade="reduced")],
    "P-CONSERVATIVE-RADICULAR": [finding("radiating_leg_pain")],
    "P-CONSERVATIVE-BACK-FOOT": [LBP, finding("paresthesia"), finding("sciatica")],
    "P-CONSERVATIVE-BACK-FOOT-POSSIBLE": [LBP, finding("paresthesia")],
    "P-LOCAL-CAUSE": [finding("tarsal_tunnel_syndrome")],
    "P-LOCAL-OTHER": [finding("other_local_foot_condition")],
    "ROOT-L4-SENSORY": [finding("numbness", site="medial_ankle")],
    "ROOT-L4-MOTOR": [finding("strength_knee_extension", grade="weak")],
    "ROOT-L4-REFLEX": [finding("knee_reflex", grade="reduced")],
    "ROOT-L4-IMAGING": [finding("disc_herniation", level="L3_L4")],
    "ROOT-L5-SENSORY": [finding("paresthesia", site="great_toe")],
    "ROOT-L5-MOTOR": [finding("strength_great_toe_extension", grade="severe")],
    "ROOT-L5-MOTOR-FINDING": [finding("foot_drop")],
    "ROOT-L5-IMAGING": [finding("disc_herniation", level="L4_L5")],
    "ROOT-S1-SENSORY": [finding("reduced_sensation", site="lateral_sole")],
    "ROOT-S1-MOTOR": [finding("strength_foot_eversion", grade="weak")],
    "ROOT-S1-REFLEX": [finding("ankle_reflex", grade="reduced")],
    "ROOT-S1-IMAGING": [finding("disc_herniation", level="L5_S1")],
    "ROOT-L4-SENSORY-SYMMETRIC": [finding("numbness", site="medial_ankle", symmetric=True)],
    "ROOT-L5-SENSORY-SYMMETRIC": [finding("numbness", site="great_toe", symmetric=True)],
    "ROOT-S1-SENSORY-SYMMETRIC": [finding("numbness", site="heel", symmetric=True)],
    "ROOT-L4-REFLEX-SYMMETRIC": [finding("knee_reflex", grade="reduced", symmetric=True)],
    "ROOT-S1-REFLEX-SYMMETRIC": [finding("ankle_reflex", grade="reduced", symmetric=True)],
}


def test_every_rule_has_a_scenario(kb: Knowledge) -> None:
    assert {r.id for r in kb.rules} == set(SCENARIOS)


@pytest.mark.parametrize("rule_id", sorted(SCENARIOS))
def test_rule_fires(reasoner: Reasoner, rule_id: str) -> None:
    assert rule_id in infer(reasoner, *SCENARIOS[rule_id]).fired


# Near misses: one field short of the scenario, the rule must stay silent.
NEAR_MISSES: dict[str, list[InputFact]] = {
    "C-CES": [finding("bladder_dysfunction")],  # no spinal context
    "C-RADICULOPATHY": [finding("ankle_reflex", grade="reduced")],  # no spinal context
    "C-RADICULOPATHY-IMAGING": [LBP, finding("disc_herniation", level="L4_L5")],  # imaging only
    "E-IMAGING-CONCORDANT": [
        finding("disc_herniation", level="L4_L5"),
        finding("numbness", site="heel"),
    ],  # S1 signs, L5 level
    "E-CES-BLADDER": [LBP, finding("bladder_dysfunction", status="history")],
    "ROOT-L5-SENSORY": [finding("numbness", site="heel")],
    "ROOT-S1-REFLEX": [finding("ankle_reflex", grade="normal")],
    "E-MOTOR-SEVERE": [finding("strength_great_toe_extension", grade="weak")],
    "E-BILATERAL-RADICULAR-SIDES": [
        finding("sciatica", side="left"),
        finding("sciatica", side="left", persisting=True),
    ],
    "C-PERONEAL-PATTERN": [
        finding("strength_ankle_dorsiflexion", grade="weak", side="left"),
        finding("strength_foot_inversion", grade="normal", side="right"),
    ],
    "P-SURGICAL": [finding("sciatica", persisting=True), finding("ankle_reflex", grade="reduced")],
    "E-FLAG-MALIGNANCY-WEIGHT": [LBP, finding("unexplained_weight_loss")],
    "E-CES-RETENTION-MEASURED": [LBP, finding("post_void_residual", grade="normal")],
    "E-CES-SEXUAL": [LBP, finding("sexual_dysfunction", new=False, recent=False)],  # long-standing
    "E-FLAG-INFECTION-TEMPERATURE": [
        LBP,
        finding("body_temperature", grade="high", recent=False),
    ],  # a fever years ago
    "E-FLAG-INFECTION-TREATMENT": [LBP, treatment("immunosuppression", status="completed")],
    "E-FLAG-FRACTURE-STEROID-MEDICINE": [LBP, treatment("systemic_corticosteroid")],  # short course
    "E-CES-SADDLE-SITE": [LBP, finding("paresthesia", site="great_toe")],
    # serial examinations: an earlier grade of a series is superseded by the latest
    "E-MOTOR-SEVERE#superseded": [LBP, finding("strength_ankle_dorsiflexion", grade="superseded")],
    "ROOT-L5-MOTOR": [finding("strength_great_toe_extension", grade="superseded")],
    # serious-pathology flags need new or recent back pain, not pain documented for years
    "C-FRACTURE": [OLD_LBP, finding("osteoporosis")],
    "C-MALIGNANCY": [OLD_LBP, finding("history_of_cancer", status="history")],
    "C-INFECTION": [OLD_LBP, finding("iv_drug_use")],
    "E-SERIOUS-FLAG-CHRONIC-PAIN": [LBP, OLD_LBP, finding("osteoporosis")],  # pain is recent
    # spinal context means current: old surgery and degeneration without pain are history
    "E-SPINAL-SURGERY": [treatment("spinal_surgery", status="completed", recent=False)],
    "E-SPINAL-CONTEXT": [finding("incidental_disc_degeneration")],
    "E-SPINAL-CONTEXT#scan": [finding("disc_degeneration", result=True)],
    "E-SPINAL-CONTEXT-RESULT": [finding("spondylolisthesis", result=True)],
    "C-STENOSIS-LEG#scan": [finding("spinal_stenosis", result=True), finding("leg_pain")],
    "E-SPINAL-HISTORY-SURGERY": [treatment("spinal_surgery", status="completed")],
    # root attribution respects its mimics
    "ROOT-S1-REFLEX#symmetric": [finding("ankle_reflex", grade="reduced", symmetric=True)],
    "ROOT-S1-REFLEX-SYMMETRIC": [
        finding("ankle_reflex", grade="reduced", symmetric=True),
        finding("diabetic_neuropathy"),
    ],  # length-dependent
    "ROOT-S1-SENSORY-SYMMETRIC": [
        finding("numbness", site="heel", symmetric=True),
        finding("numbness", side="bilateral"),
        finding("diabetes"),
    ],
    "ROOT-L4-MOTOR": [finding("strength_ankle_dorsiflexion", grade="weak", explained=True)],
    "ROOT-L5-MOTOR-FINDING": [finding("foot_drop", explained=True)],
    "ROOT-L5-SENSORY#explained": [finding("numbness", site="dorsum_of_foot", explained=True)],
    "E-POLYNEUROPATHY-PATTERN": [finding("numbness", side="left"), finding("diabetes")],
    # a radicular pattern that evidence can defeat
    "E-BACK-FOOT": [LBP, finding("foot_pain", side="left")],  # no radicular pattern
    "E-BACK-FOOT-POSSIBLE": [LBP, finding("foot_pain"), finding("plantar_fasciitis")],
    "E-BACK-FOOT-POSSIBLE#contradicted": [LBP, finding("foot_pain", side="left", contradicted=True)],
    "E-BACK-FOOT-POSSIBLE#radicular": [LBP, finding("foot_pain"), finding("sciatica")],
    "E-RADICULAR": [finding("radiating_leg_pain", status="absent")],
    "E-RADICULAR#contradicted": [finding("radiating_leg_pain", side="left", contradicted=True)],
    "E-RADICULAR-CODED": [finding("sciatica", status="history")],
    # a negative examination never withdraws a red flag: both legs count as documented
    "E-BILATERAL-RADICULAR-SIDES#absent": [
        finding("sciatica", side="left"),
        finding("radiating_leg_pain", side="right", status="absent"),
    ],
    "E-FLAG-MALIGNANCY-HISTORY": [LBP, finding("history_of_cancer", status="absent")],
    "E-DIABETES-CODED": [finding("diabetes", status="absent")],
    # stenosis is a conclusion, with vascular claudication as its differential
    "C-STENOSIS-CLAUDICATION": [finding("spinal_stenosis"), finding("leg_pain")],
    "C-STENOSIS-LEG": [finding("spinal_stenosis"), finding("leg_pain"), finding("vascular_claudication")],
    "C-STENOSIS-LEG#imaging-only": [finding("spinal_stenosis")],
    "E-STENOSIS-PERSISTING": [finding("spinal_stenosis")],  # onset recent or unknown
    "E-STENOSIS-PERSISTING#12-weeks": [finding("spinal_stenosis", current=False)],  # not 3 months
    # vascular signs make a vascular cause documented and count against neurogenic claudication
    "E-VASCULAR-PULSES": [finding("absent_foot_pulse", status="absent")],  # pulses felt
    "E-VASCULAR-ABI": [finding("ankle_brachial_index", grade="normal")],
    "C-PAD-SIGNS": [finding("ankle_brachial_index", grade="normal"), LBP],
    "C-STENOSIS-CLAUDICATION#vascular": [
        finding("spinal_stenosis"),
        finding("neurogenic_claudication"),
        NO_PULSE,
    ],
    "C-STENOSIS-CLAUDICATION-VASCULAR": [finding("spinal_stenosis"), finding("neurogenic_claudication")],
    "P-SURGICAL-STENOSIS#vascular": [
        finding("spinal_stenosis", long_standing=True),
        finding("neurogenic_claudication"),
        treatment("conservative_care"),
        finding("ankle_brachial_index", grade="low"),
    ],
    "P-SURGICAL-STENOSIS": [
        finding("spinal_stenosis", long_standing=True),
        finding("neurogenic_claudication"),
    ],  # no conservative care yet
    "P-SURGICAL-STENOSIS#recent": [
        finding("spinal_stenosis"),
        finding("neurogenic_claudication"),
        treatment("conservative_care"),
    ],
}


@pytest.mark.parametrize("rule_id", sorted(NEAR_MISSES))
def test_rule_stays_silent_on_a_near_miss(reasoner: Reasoner, rule_id: str) -> None:
    assert rule_id.split("#")[0] not in infer(reasoner, *NEAR_MISSES[rule_id]).fired


def test_unless_withdraws_the_peroneal_pattern_when_there_is_back_pain(reasoner: Reasoner) -> None:
    facts = SCENARIOS["C-PERONEAL-PATTERN"] + [LBP]
    result = infer(reasoner, *facts)
    assert "C-PERONEAL-PATTERN" not in result.fired
    assert not any(c.definition.name == "peroneal_neuropathy" for c in result.conclusions)


def test_most_urgent_pathway_wins(reasoner: Reasoner) -> None:
    result = infer(
        reasoner,
        LBP,
        finding("bladder_dysfunction"),
        finding("numbness", site="dorsum_of_foot", side="left"),
        finding("plantar_fasciitis"),
    )
    assert result.pathway.code == "emergency-assessment"
    assert [c.definition.name for c in result.conclusions] == [
        "cauda_equina",
        "radiculopathy",
        "plantar_fasciitis",
    ]


def test_nothing_relevant_gives_insufficient_information(reasoner: Reasoner) -> None:
    result = infer(reasoner, finding("hba1c", grade="normal"))
    assert result.pathway.code == "insufficient-information" and result.pathway_why is None
    assert not result.conclusions


def test_radiculopathy_risk_rises_with_kinds_of_evidence(reasoner: Reasoner) -> None:
    one = infer(reasoner, LBP, finding("ankle_reflex", grade="reduced", side="right"))
    two = infer(
        reasoner,
        LBP,
        finding("ankle_reflex", grade="reduced", side="right"),
        finding("numbness", site="heel", side="right"),
    )
    assert [c.risk for c in one.conclusions] == ["moderate"]
    assert [(c.root, c.risk, c.sides) for c in two.conclusions] == [("S1", "high", ("right",))]


def test_provenance_reaches_the_source_findings(reasoner: Reasoner) -> None:
    result = infer(reasoner, LBP, finding("bladder_dysfunction"))
    why = result.conclusions[0].why
    assert {f.source for f in why.findings} == {
        "Observation/low_back_pain",
        "Observation/bladder_dysfunction",
    }
    assert why.rules == ("E-SPINAL-CONTEXT", "E-CES-BLADDER", "C-CES")


def test_an_old_flag_with_chronic_pain_is_a_note_not_urgent(reasoner: Reasoner) -> None:
    result = infer(reasoner, OLD_LBP, finding("osteoporosis"), OLDER)
    assert result.pathway.code == "insufficient-information" and not result.conclusions
    assert "serious_flag_chronic_pain" in result.present
    recent = infer(reasoner, LBP, finding("osteoporosis"))
    assert recent.pathway.code == "urgent-specialist-referral"
    assert "serious_flag_chronic_pain" not in recent.present


def test_coded_serious_pathology_needs_no_current_pain(reasoner: Reasoner) -> None:
    for concept in ("spinal_malignancy", "vertebral_infection", "vertebral_fracture"):
        result = infer(reasoner, OLD_LBP, finding(concept))
        assert result.pathway.code == "urgent-specialist-referral", concept


def test_old_spine_surgery_is_no_context_for_foot_symptoms(reasoner: Reasoner) -> None:
    old = infer(
        reasoner,
        treatment("spinal_surgery", status="completed", recent=False),
        finding("bladder_dysfunction"),
    )
    assert old.pathway.code == "insufficient-information" and "spinal_history" in old.present
    recent = infer(reasoner, treatment("spinal_surgery", status="completed"), finding("bladder_dysfunction"))
    assert recent.pathway.code == "emergency-assessment"


def test_symmetric_ankle_jerk_loss_in_a_diabetic_is_no_bilateral_s1_radiculopathy(reasoner: Reasoner) -> None:
    """The issue's case: ankle reflexes lost left and right (recorded separately) in a diabetic
    with back pain: diabetic neuropathy, never "S1 radiculopathy, both sides" sent urgently."""
    reflexes = [
        finding("ankle_reflex", grade="reduced", side=side, symmetric=True) for side in ("left", "right")
    ]
    result = infer(reasoner, LBP, *reflexes, finding("diabetes"))
    assert "radiculopathy" not in {c.definition.name for c in result.conclusions}
    assert result.pathway.code != "urgent-specialist-referral"
    assert "diabetic_neuropathy" in {c.definition.name for c in result.conclusions}
    own = infer(
        reasoner, LBP, *reflexes, finding("diabetes"), finding("numbness", site="dorsum_of_foot", side="left")
    )
    assert [(c.root, c.sides) for c in own.conclusions if c.root] == [("L5", ("left",))]


def test_a_peripheral_lesion_explains_signs_on_its_side_only(reasoner: Reasoner) -> None:
    left = infer(
        reasoner,
        LBP,
        finding("strength_ankle_dorsiflexion", grade="weak", side="left", explained=True),
        finding("strength_ankle_dorsiflexion", grade="weak", side="right"),
    )
    assert [(c.root, c.sides) for c in left.conclusions if c.root] == [("L4", ("right",))]


def test_foot_symptoms_without_a_radicular_pattern_go_to_the_local_cause(reasoner: Reasoner) -> None:
    local = infer(
        reasoner, LBP, finding("foot_pain", side="left"), finding("peripheral_arterial_disease", side="left")
    )
    assert local.pathway.code == "evaluate-local-cause"
    radicular = infer(
        reasoner,
        LBP,
        finding("foot_pain", side="left"),
        finding("peripheral_arterial_disease", side="left"),
        finding("radiating_leg_pain", side="left"),
    )
    assert radicular.pathway.code == "conservative-care"
    denied = infer(
        reasoner,
        LBP,
        finding("foot_pain", side="left", contradicted=True),
        finding("positive_straight_leg_raise", side="left", status="absent"),
    )
    assert denied.pathway.code == "insufficient-information"


def test_a_negative_on_one_side_leaves_the_other_side_possible(reasoner: Reasoner) -> None:
    """SLR negative on the left: the left foot is not possibly back-related, the right one is."""
    result = infer(
        reasoner,
        LBP,
        finding("foot_pain", side="left", contradicted=True),
        finding("foot_pain", side="right"),
        finding("positive_straight_leg_raise", side="left", status="absent"),
    )
    assert result.pathway.code == "conservative-care" and result.pathway_why is not None
    assert [f.get("side") for f in result.pathway_why.findings if f.get("concept") == "foot_pain"] == [
        "right"
    ]
    assert "possible_back_related_foot_symptom" in result.present


def test_coded_sciatica_stands_against_a_negative_exam_a_lone_symptom_does_not(reasoner: Reasoner) -> None:
    slr = finding("positive_straight_leg_raise", side="left", status="absent")
    coded = infer(reasoner, LBP, finding("sciatica", side="left", contradicted=True), slr)
    assert coded.pathway.code == "conservative-care" and "radicular_symptom" in coded.present
    lone = infer(reasoner, LBP, finding("radiating_leg_pain", side="left", contradicted=True), slr)
    assert "radicular_symptom" not in lone.present
    assert lone.pathway.code == "insufficient-information"
    other_side = infer(reasoner, LBP, finding("radiating_leg_pain", side="right"), slr)
    assert other_side.pathway.code == "conservative-care"


def test_a_negative_exam_never_withdraws_bilateral_radicular_symptoms(reasoner: Reasoner) -> None:
    result = infer(
        reasoner,
        finding("radiating_leg_pain", side="left", contradicted=True),
        finding("radiating_leg_pain", side="right"),
        finding("positive_straight_leg_raise", side="left", status="absent"),
    )
    assert result.pathway.code == "urgent-specialist-referral"


def test_vascular_signs_document_a_vascular_cause_against_neurogenic_claudication(reasoner: Reasoner) -> None:
    pulses = infer(reasoner, LBP, finding("foot_pain", side="left"), NO_PULSE)
    assert pulses.pathway.code == "evaluate-local-cause"
    assert [(c.definition.name, c.risk, c.sides) for c in pulses.conclusions] == [
        ("peripheral_arterial_disease", "moderate", ("left",))
    ]
    stenosis = [
        finding("spinal_stenosis", long_standing=True),
        finding("neurogenic_claudication"),
        treatment("conservative_care"),
    ]
    alone = infer(reasoner, *stenosis)
    assert alone.pathway.code == "surgical-consultation"
    assert [(c.definition.name, c.risk) for c in alone.conclusions] == [
        ("lumbar_stenosis_claudication", "high")
    ]
    mixed = infer(reasoner, *stenosis, finding("ankle_brachial_index", grade="low"))
    assert mixed.pathway.code == "conservative-care"
    assert [(c.definition.name, c.risk) for c in mixed.conclusions] == [
        ("lumbar_stenosis_claudication", "moderate"),
        ("peripheral_arterial_disease", "moderate"),
    ]


def test_stenosis_with_claudication_is_a_conclusion_with_its_own_pathway(reasoner: Reasoner) -> None:
    result = infer(
        reasoner,
        finding("spinal_stenosis", current=False, long_standing=True),
        finding("neurogenic_claudication", current=False, long_standing=True),
    )
    assert [(c.definition.name, c.risk) for c in result.conclusions] == [
        ("lumbar_stenosis_claudication", "high")
    ]
    assert result.pathway.code == "conservative-care"


def test_bilateral_radicular_symptoms_are_a_prediction_without_a_root(reasoner: Reasoner) -> None:
    result = infer(reasoner, finding("sciatica", side="left"), finding("radiating_leg_pain", side="right"))
    assert [(c.definition.name, c.root) for c in result.conclusions] == [("bilateral_radicular", None)]
    assert result.pathway.code == "urgent-specialist-referral"
    assert result.conclusions[0].definition.outcome.code == "128196005"


def test_stenosis_on_a_scan_needs_neurogenic_claudication(reasoner: Reasoner) -> None:
    scan = finding("spinal_stenosis", result=True)
    assert not infer(reasoner, scan, finding("leg_pain")).conclusions
    both = infer(reasoner, scan, finding("neurogenic_claudication"))
    assert [c.definition.name for c in both.conclusions] == ["lumbar_stenosis_claudication"]
