"""CDS Hooks order-sign: each draft order related to the assessment as orders.yaml says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask.testing import FlaskClient

from service.errors import KnowledgeError
from service.knowledge import Knowledge, load_knowledge
from tests.support.cds import hook_request, patient_id, server_style
from tests.support.cds_hooks_schema import CARDS_RESPONSE
from tests.support.paths import SAMPLES
from tests.web.cds.test_cds import assert_no_empty_values

ORDER_SIGN = "/cds-services/spinefoot-order-sign"
LOINC, SCT = "http://loinc.org", "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MRI = {"resourceType": "ServiceRequest", "system": LOINC, "code": "24968-0", "display": "MR Lumbar spine"}
PHYSIO = {
    "resourceType": "ServiceRequest",
    "system": SCT,
    "code": "308447003",
    "display": "Referral to physiotherapist",
}
EPIDURAL = {
    "resourceType": "ServiceRequest",
    "system": SCT,
    "code": "171787008",
    "display": "Therapeutic epidural injection",
}
REFERRAL = {
    "resourceType": "ServiceRequest",
    "system": SCT,
    "code": "308481009",
    "display": "Referral to orthopedic surgeon",
}
GABAPENTIN = {"resourceType": "MedicationRequest", "system": RXNORM, "code": "25480", "display": "gabapentin"}
PREDNISONE = {**GABAPENTIN, "code": "8640", "display": "prednisone"}
KNEE_XRAY = {
    "resourceType": "ServiceRequest",
    "system": LOINC,
    "code": "26127-1",
    "display": "XR Foot - bilateral Views",
}


def draft(order: dict[str, Any], patient: str, rid: str = "draft-1") -> dict[str, Any]:
    """A draft order as an EHR sends it in context.draftOrders."""
    coding = {k: order[k] for k in ("system", "code", "display")}
    resource: dict[str, Any] = {
        "resourceType": order["resourceType"],
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
    }
    key = "code" if order["resourceType"] == "ServiceRequest" else "medicationCodeableConcept"
    resource[key] = {"coding": [coding]}
    return resource


def sign(client: FlaskClient, sample: str, *orders: dict[str, Any], **extra: Any) -> Any:
    entries = server_style(SAMPLES / f"{sample}.json")
    pid = patient_id(entries)
    request = hook_request(entries, hook="order-sign")
    request["context"]["draftOrders"] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": draft(o, pid, f"draft-{i}")} for i, o in enumerate(orders)],
    }
    request["context"].update(extra)
    response = client.post(ORDER_SIGN, json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    jsonschema.validate(body, CARDS_RESPONSE, format_checker=jsonschema.FormatChecker())
    for card in body["cards"]:
        assert_no_empty_values(card)
    return body["cards"]


def test_discovery_lists_order_sign_beside_order_select(client: FlaskClient) -> None:
    hooks = {s["id"]: s["hook"] for s in client.get("/cds-services").get_json()["services"]}
    assert hooks["spinefoot-order-sign"] == "order-sign"
    assert hooks["spinefoot-order-select"] == "order-select"


def test_early_lumbar_mri_without_red_flags_gets_nice_advice(client: FlaskClient) -> None:
    [card] = sign(client, "04-l5-radiculopathy-conservative", MRI)
    assert card["indicator"] == "warning"
    assert card["summary"] == ("Lumbar imaging in the first 6 weeks of radicular pain without red flags")
    assert "NICE NG59 advises against routine imaging" in card["detail"]
    assert "Lumbar radiculopathy, L5" in card["detail"] and "no red flags" in card["detail"]
    assert card["source"]["topic"]["code"] == "imaging-early-radicular-pain"
    assert card["source"]["url"] == "https://www.nice.org.uk/guidance/ng59"
    assert {r["code"] for r in card["overrideReasons"]} >= {"already-addressed", "not-relevant"}
    [suggestion] = card["suggestions"]
    assert suggestion["actions"] == [
        {
            "type": "delete",
            "resourceId": ["ServiceRequest/draft-0"],
            "description": "Remove Imaging of the lumbar spine (MRI, CT or X-ray) from the orders",
        }
    ]


def test_mri_after_six_weeks_of_radicular_pain_gets_no_card(client: FlaskClient) -> None:
    # the S1 sample's sciatica has persisted past 42 days despite physiotherapy: MRI is apt
    assert sign(client, "05-s1-radiculopathy-surgical", MRI) == []


@pytest.mark.parametrize(
    ("sample", "indicator"),
    [
        ("01-cauda-equina-acute", "critical"),
        ("07-foot-drop-urgent", "warning"),
        ("10-malignancy-flag-urgent", "warning"),
    ],
)
def test_red_flags_give_the_emergency_or_urgent_card_whatever_was_ordered(
    client: FlaskClient, sample: str, indicator: str
) -> None:
    for order in (MRI, PHYSIO):
        [card] = sign(client, sample, order)
        assert card["indicator"] == indicator
        assert card["source"]["topic"]["system"].endswith("/CodeSystem/care-pathway")


def test_red_flag_card_is_the_same_as_patient_views(client: FlaskClient) -> None:
    entries = server_style(SAMPLES / "01-cauda-equina-acute.json")
    [viewed] = client.post("/cds-services/spinefoot-back-foot", json=hook_request(entries)).get_json()[
        "cards"
    ]
    assert sign(client, "01-cauda-equina-acute", MRI) == [viewed]


@pytest.mark.parametrize("medicine", [GABAPENTIN, PREDNISONE], ids=lambda m: m["display"])
def test_a_gabapentinoid_or_oral_steroid_for_sciatica_is_a_warning(
    client: FlaskClient, medicine: dict[str, Any]
) -> None:
    [card] = sign(client, "04-l5-radiculopathy-conservative", medicine)
    assert card["indicator"] == "warning"
    assert "not advised for sciatica" in card["summary"]
    assert "do not offer gabapentinoids" in card["detail"]
    assert card["suggestions"][0]["actions"][0]["resourceId"] == ["MedicationRequest/draft-0"]


def test_gabapentin_for_diabetic_neuropathy_is_not_second_guessed(client: FlaskClient) -> None:
    assert sign(client, "14-diabetic-neuropathy-pattern", GABAPENTIN) == []


def test_epidural_for_stenosis_claudication_is_a_warning(client: FlaskClient) -> None:
    [card] = sign(client, "51-stenosis-neurogenic-claudication", EPIDURAL)
    assert card["source"]["topic"]["code"] == "epidural-for-stenosis-claudication"
    assert "neurogenic claudication" in card["detail"]


def test_an_early_surgical_referral_is_information(client: FlaskClient) -> None:
    [card] = sign(client, "04-l5-radiculopathy-conservative", REFERRAL)
    assert card["indicator"] == "info" and "spinal decompression" in card["detail"]


def test_physiotherapy_or_an_unrelated_order_gets_no_card(client: FlaskClient) -> None:
    assert sign(client, "04-l5-radiculopathy-conservative", PHYSIO) == []
    assert sign(client, "04-l5-radiculopathy-conservative", KNEE_XRAY) == []


def test_two_orders_give_one_card_each(client: FlaskClient) -> None:
    cards = sign(client, "04-l5-radiculopathy-conservative", MRI, GABAPENTIN)
    assert [c["source"]["topic"]["code"] for c in cards] == [
        "imaging-early-radicular-pain",
        "medicine-not-advised-for-sciatica",
    ]
    assert len({c["uuid"] for c in cards}) == 2


def test_draft_orders_are_required_and_must_be_about_the_patient(client: FlaskClient) -> None:
    entries = server_style(SAMPLES / "04-l5-radiculopathy-conservative.json")
    request = hook_request(entries, hook="order-sign")
    response = client.post(ORDER_SIGN, json=request)
    assert response.status_code == 400
    assert "context.draftOrders" in response.get_json()["issue"][0]["diagnostics"]
    request["context"]["draftOrders"] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": draft(MRI, "someone-else")}],
    }
    response = client.post(ORDER_SIGN, json=request)
    assert response.status_code == 412
    assert "not about context.patientId" in response.get_json()["issue"][0]["diagnostics"]


def test_order_codes_come_from_the_knowledge_base(kb: Knowledge) -> None:
    imaging = kb.orders["lumbar_spine_imaging_order"]
    assert imaging.codes == kb.concepts["lumbar_spine_imaging"].codes  # listed once
    assert {c.code for c in kb.orders["sciatica_medicine_order"].codes} == {"25480", "187832", "8640"}
    assert all(c.tag in ("A", "B") for o in kb.orders.values() for c in o.codes)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("orders: [lumbar_spine_imaging_order]", "orders: [imaging]", "unknown name 'imaging'"),
        ("conclusions: [lumbar_stenosis_claudication]", "conclusions: [stenosis]", "unknown name 'stenosis'"),
        ("concepts: [spinal_surgery]", "concepts: [surgery]", "unknown concept 'surgery'"),
        ("  physiotherapy_order:", "  spinal_surgery:", "already the name of a concept"),
        ("indicator: info", "indicator: loud", "Must be one of"),
        ("pathway_card: [emergency-assessment,", "pathway_card: [emergency,", "unknown pathway"),
    ],
)
def test_a_wrong_orders_file_names_the_field(knowledge_copy: Path, old: str, new: str, message: str) -> None:
    path = knowledge_copy / "orders.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(KnowledgeError, match=message) as error:
        load_knowledge(knowledge_copy)
    assert str(error.value).startswith("orders.yaml")


def test_the_shipped_order_sign_call_gives_its_two_cards(client: FlaskClient) -> None:
    path = SAMPLES / "cds-hooks" / "order-sign" / "04-l5-radiculopathy-mri-and-gabapentin.json"
    response = client.post(ORDER_SIGN, json=json.loads(path.read_text()))
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    assert [(c["indicator"], c["source"]["topic"]["code"]) for c in cards] == [
        ("warning", "imaging-early-radicular-pain"),
        ("warning", "medicine-not-advised-for-sciatica"),
    ]
    assert "**Ordered:** MRI lumbar spine." in cards[0]["detail"]
    assert cards[1]["suggestions"][0]["actions"][0]["resourceId"] == ["MedicationRequest/draft-gabapentin"]
