"""How the engines read export lines: placed by a skimmed header, joined into one patient's
Bundle as they are, and assessed exactly as `$assess` assesses that Bundle."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.assess.dates import parse_instant
from service.assess.pipeline import Pipeline
from service.knowledge import Knowledge
from service.screen.partition import NO_PATIENT, NOT_JSON, classify
from service.screen.patient import (
    OPERATION_OUTCOME,
    RISK_ASSESSMENT,
    PatientAssessor,
    line_header,
    patient_body,
)
from tests.support.export import as_bundle, sample_patients

HEADER = ("resourceType", "id", "subject", "patient")
AS_OF = "2026-03-01T09:00:00Z"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
resources = st.fixed_dictionaries(
    {},
    optional={
        "resourceType": st.sampled_from(["Observation", "Patient", "Encounter"]) | json_values,
        "id": st.text(max_size=8) | json_values,
        "subject": st.fixed_dictionaries({"reference": st.text(max_size=12)}) | json_values,
        "patient": json_values,
        "valueQuantity": json_values,
        "note": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(resource=resources, ascii_only=st.booleans())
def test_a_line_header_is_what_the_full_decode_reads(resource: dict[str, Any], ascii_only: bool) -> None:
    text = json.dumps(resource, ensure_ascii=ascii_only).encode()
    decoded = json.loads(text)
    assert line_header(text) == {name: decoded[name] for name in HEADER if name in decoded}


@pytest.mark.parametrize(
    "text,expected",
    [
        (b'{"resourceType":"Observation","id":"a","id":"b"}', {"resourceType": "Observation", "id": "b"}),
        (b'{"resourceType":"Observation","valueQuantity":{"value":NaN}}', {"resourceType": "Observation"}),
        (b'{"resourceType":"Observation","note":"\\ud800"}', {"resourceType": "Observation"}),
        (b'{"id":123456789012345678901234567890}', {"id": 123456789012345678901234567890}),
        (b'{"resourceType":"Observation","note":"caf\xc3\xa9"}', {"resourceType": "Observation"}),
        (b'["not", "an", "object"]', None),
    ],
    ids=["duplicate-key", "nan", "lone-surrogate", "long-integer", "non-ascii", "array"],
)
def test_a_line_header_follows_the_standard_library_where_it_is_lenient(
    text: bytes, expected: dict[str, Any] | None
) -> None:
    assert line_header(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        b"{not json",
        b'{"resourceType":"Observation"} {"resourceType":"Observation"}',
        b'{"resourceType":"Observation","note":"\xff"}',  # not UTF-8, inside a string msgspec skips
        b'{"resourceType":"Observation","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"resourceType":"Observation","x":"\xc3\xa9","y":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"[1, 2]",
    ],
    ids=["broken", "two-values", "not-utf8", "deep", "deep-non-ascii", "array"],
)
def test_a_line_that_is_not_one_json_resource_is_counted_not_placed(text: bytes) -> None:
    """A line too deep for any decoder stopped the whole split with a RecursionError."""
    assert classify(text, None) == (None, NOT_JSON)


def test_a_line_is_placed_by_its_patient() -> None:
    obs = b'{"resourceType":"Observation","id":"o1","subject":{"reference":"https://x.org/fhir/Patient/p1"}}'
    assert classify(obs, None) == ("p1", "")
    assert classify(b'{"resourceType":"Patient","id":"p1"}', "Patient") == ("p1", "")
    assert classify(b'{"resourceType":"Observation","subject":{"reference":"Group/g"}}', None) == (
        None,
        NO_PATIENT,
    )
    assert classify(b'{"resourceType":"Encounter","subject":{"reference":"Patient/p1"}}', None) == (None, "")
    assert classify(b"anything", "Encounter") == (None, "")


def test_a_patient_body_keeps_the_first_of_each_type_and_id_in_export_order() -> None:
    lines = [
        ((1, 0), b'{"resourceType":"Condition","id":"c1","code":{"text":"second file"}}'),
        ((0, 1), b'{"resourceType":"Condition","id":"c1","code":{"text":"first file"}}'),
        ((0, 0), b'{"resourceType":"Patient","id":"p1"}'),
        ((0, 2), b'{"resourceType":"Condition"}'),
        ((0, 3), b'{"resourceType":"Condition","id":"None"}'),  # not a copy of the one without id
        ((0, 4), b'{"resourceType":"Observation","id":"c1"}'),  # another type, the same id
    ]
    body, duplicates = patient_body(lines)
    assert duplicates == 1
    assert json.loads(body) == {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1"}},
            {"resource": {"resourceType": "Condition", "id": "c1", "code": {"text": "first file"}}},
            {"resource": {"resourceType": "Condition"}},
            {"resource": {"resourceType": "Condition", "id": "None"}},
            {"resource": {"resourceType": "Observation", "id": "c1"}},
        ],
    }


@pytest.fixture(scope="module")
def patient_assessor(kb: Knowledge) -> PatientAssessor:
    return PatientAssessor(Pipeline(kb), parse_instant(AS_OF))


def test_a_patient_is_assessed_as_assess_assesses_its_bundle(patient_assessor: PatientAssessor) -> None:
    resources = sample_patients()[4]
    lines = [((0, i), json.dumps(r).encode()) for i, r in enumerate(resources)]
    before = patient_assessor.pipeline_seconds
    result = patient_assessor.assess("p", lines)
    expected = patient_assessor.pipeline.assess_bundle(as_bundle(resources), patient_assessor.as_of).resource
    assert result.kind == RISK_ASSESSMENT
    assert json.loads(result.line) == expected
    assert patient_assessor.pipeline_seconds > before


def test_a_patient_nested_past_the_limit_is_reported_not_raised(patient_assessor: PatientAssessor) -> None:
    deep = b'{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/p"},"x":' + b"[" * 70
    lines = [((0, 0), b'{"resourceType":"Patient","id":"p"}'), ((1, 0), deep + b"]" * 70 + b"}")]
    result = patient_assessor.assess("p", lines)
    assert result.kind == OPERATION_OUTCOME
    assert "nested more than 64 levels" in result.line
