"""Skimming a Bundle body (issue 13): what is read is decoded exactly as the full parse decodes
it, what is not read only as far as its header, and whatever skimming cannot be sure of goes to
the full parse, so that answers and errors are the full parse's."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.assess.fhir import READ_TYPES
from service.assess.parse import Limits, parse_json, read_body
from service.assess.pipeline import Pipeline
from service.assess.relevance import Relevance, unread_entries
from service.assess.skim import skim_bundle
from service.errors import SpinefootError
from service.knowledge import Knowledge, load_knowledge
from tests.support.assess import post_bundle
from tests.support.paths import FIXED_NOW, KNOWLEDGE, REALWORLD, SAMPLE_FILES, SAMPLES

BUNDLES = [
    p
    for p in [*SAMPLE_FILES, *sorted(REALWORLD.glob("synthea/*/*.json"))]
    if json.loads(p.read_bytes())["resourceType"] == "Bundle"
]
PATIENT = "urn:uuid:b0cb9f22-750c-3450-29cb-1a0532d1f750"  # sample 01's Patient
BODY_WEIGHT = {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}
# What the steps after skimming read of a resource that is not read: the notes (type), the
# reference index (type, id), the one-subject check (subject) and relevance (the codes)
HEADER = ("resourceType", "id", "subject", "code", "component", "medicationCodeableConcept")
IGNORED = ("request", "search", "response")  # entry members the service does not read (contract §2)
LIMIT = Limits().max_depth


@pytest.fixture(scope="module")
def relevance(kb: Knowledge) -> Relevance:
    return Relevance(kb)


def with_unread(value: bytes) -> bytes:
    """Sample 01 with one Observation the knowledge base does not use, `value` as its value."""
    bundle = json.loads((SAMPLES / "01-cauda-equina-acute.json").read_text())
    unread = {
        "resourceType": "Observation",
        "status": "final",
        "code": BODY_WEIGHT,
        "subject": {"reference": PATIENT},
        "valueQuantity": "VALUE",
    }
    bundle["entry"].append({"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": unread})
    return json.dumps(bundle).encode().replace(b'"VALUE"', value)


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.stem[:40])
def test_what_is_read_is_decoded_as_the_full_parse_decodes_it(path: Path, relevance: Relevance) -> None:
    body = path.read_bytes()
    full = parse_json(body, Limits())
    skimmed = skim_bundle(body, relevance, LIMIT)
    assert skimmed is not None
    bundle, unread = skimmed
    assert unread == unread_entries(full, relevance)
    assert {k: v for k, v in bundle.items() if k != "entry"} == {
        k: v for k, v in full.items() if k != "entry"
    }
    assert len(bundle["entry"]) == len(full["entry"])
    for i, (entry, whole) in enumerate(zip(bundle["entry"], full["entry"], strict=True)):
        assert entry.keys() == whole.keys() - set(IGNORED)
        assert {k: v for k, v in entry.items() if k != "resource"} == {
            k: v for k, v in whole.items() if k not in ("resource", *IGNORED)
        }
        resource, original = entry["resource"], whole["resource"]
        if i in unread or original["resourceType"] not in READ_TYPES:
            assert resource == {k: original[k] for k in HEADER if k in original}
        else:
            assert resource == original


def test_most_of_a_real_chart_is_only_skimmed(relevance: Relevance) -> None:
    largest = max(REALWORLD.glob("synthea/*/*.json"), key=lambda p: p.stat().st_size)
    skimmed = skim_bundle(largest.read_bytes(), relevance, LIMIT)
    assert skimmed is not None
    bundle, unread = skimmed
    headers = [e for e in bundle["entry"] if "status" not in e["resource"] and "gender" not in e["resource"]]
    assert len(unread) > len(bundle["entry"]) / 2
    assert len(headers) > len(bundle["entry"]) / 2


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (with_unread(b'"\xff"'), "bytes that are not UTF-8, which msgspec skips unchecked"),
        (with_unread(b"NaN"), "NaN, which the standard library reads and msgspec refuses"),
        (with_unread(b"[1,]"), "not JSON at all"),
        (b'{"resourceType": "Parameters", "parameter": []}', "not a Bundle"),
        (b'{"resourceType": "Bundle", "type": "collection"}', "no entries"),
        (b'{"resourceType": "Bundle", "entry": {}}', "entries that are not a list"),
        (b'{"resourceType": "Bundle", "entry": [{"resource": 5}]}', "a resource that is no object"),
        (b'{"resourceType": "Bundle", "entry": [{"fulUrl": "x"}]}', "an entry member R4 does not have"),
        (b'{"resourceType": "Bundle", "entry": [{"link": []}]}', "an entry member bundles rarely use"),
        (b'{"resourceType": "Bundle", "text": {}, "entry": []}', "a member R4's Bundle does not have"),
        (
            b'{"resourceType": "Bundle", "entry": [{"fullUrl": "urn:x"}, {"fullUrl": "urn:x"}]}',
            "entries sharing a fullUrl, which bdl-7 tells apart by meta.versionId",
        ),
        (b'{"resourceType": "Bundle", "entry": [{"fullUrl": {}}]}', "a fullUrl that is no string"),
        (
            b'{"resourceType": "Bundle", "entry": [{"resource": {"id": 1e400}}]}',
            "a header number past a float",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_what_skimming_is_not_sure_of_goes_to_the_full_parse(
    body: bytes, why: str, relevance: Relevance
) -> None:
    assert skim_bundle(body, relevance, LIMIT) is None, why


@pytest.mark.parametrize(
    "value",
    [b"1e400", b"123456789012345678901234567890", b'{"value": -0.0, "unit": "\\u00e9"}', b"[[[[[[1]]]]]]"],
)
def test_an_unread_resource_changes_nothing_whatever_it_holds(value: bytes, client: FlaskClient) -> None:
    """Skimmed or parsed whole, what the unread value is does not reach the answer."""
    plain = post_bundle(client, with_unread(b'{"value": 70, "unit": "kg"}'))
    odd = post_bundle(client, with_unread(value))
    assert odd.status_code == plain.status_code == 200
    assert odd.get_json() == plain.get_json()


def test_an_unread_resource_about_someone_else_is_still_a_422(client: FlaskClient) -> None:
    body = with_unread(b'{"value": 70, "unit": "kg"}').replace(
        b'"subject": {"reference": "urn:uuid:b0cb9f22-750c-3450-29cb-1a0532d1f750"}, "valueQuantity"',
        b'"subject": {"reference": "Patient/someone-else"}, "valueQuantity"',
    )
    assert b"someone-else" in body
    response = post_bundle(client, body)
    assert response.status_code == 422
    assert "a subject other than its Patient" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (b'"\xff"', "not UTF-8"),
        (b"[" * 80 + b"1" + b"]" * 80, "nested more than 64 levels"),
        (b'"\\ud800"', "surrogate"),
    ],
    ids=["not UTF-8", "nested too deep", "unpaired surrogate"],
)
def test_an_unread_resource_is_held_to_the_body_limits(value: bytes, said: str, client: FlaskClient) -> None:
    response = post_bundle(client, with_unread(value))
    assert response.status_code == 400
    assert said in response.get_data(as_text=True)


# ---------------------------------------------------------------- skimmed or whole: one answer

_MEMBERS = [
    "resourceType",
    "type",
    "timestamp",
    "link",
    "request",
    "id",
    "meta",
    "subject",
    "code",
    "component",
    "coding",
    "system",
    "reference",
    "status",
    "valueQuantity",
    "entry",
    "resource",
    "fullUrl",
    "x",
]
_CODES = ["29463-7", "267064002", "M54.16", "M54.1", "G83.4", "8867-4", ""]
_ODD_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(_CODES + ["http://loinc.org", "http://snomed.info/sct", PATIENT, "Observation"])
    | st.sampled_from([{"reference": "Patient/someone-else"}, {"reference": PATIENT}, BODY_WEIGHT]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(_MEMBERS), children, max_size=3)
    ),
    max_leaves=12,
)
_SAMPLES = [json.loads(p.read_text()) for p in SAMPLE_FILES]
_UNREAD = json.loads(with_unread(b'{"value": 70, "unit": "kg"}'))["entry"][-1]  # a body weight


@cache
def _pipeline() -> Pipeline:
    return Pipeline(load_knowledge(KNOWLEDGE))


def _answer(assess: Callable[[], Any]) -> Any:
    """The resource, or the issues of the error: what the service would answer with."""
    try:
        return assess().resource
    except SpinefootError as exc:
        return type(exc).__name__, [(i.code, i.diagnostics, i.expression) for i in exc.issues]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(range(len(_SAMPLES))),
    where=st.integers(min_value=0, max_value=40),
    level=st.sampled_from(["bundle", "entry", "resource"]),
    member=st.sampled_from(_MEMBERS),
    value=_ODD_VALUES,
    ascii_only=st.booleans(),
)
def test_a_skimmed_body_is_answered_as_the_whole_parse_answers_it(
    sample: int, where: int, level: str, member: str, value: Any, ascii_only: bool
) -> None:
    """Any member of the Bundle, of any entry or of its resource set to any JSON value: skimming
    (what $assess does) and parsing whole give the same RiskAssessment or the same errors."""
    pipeline = _pipeline()
    bundle = copy.deepcopy(_SAMPLES[sample])
    if bundle["resourceType"] != "Bundle" or not bundle.get("entry"):
        return
    bundle["entry"].append(copy.deepcopy(_UNREAD))
    entry = bundle["entry"][where % len(bundle["entry"])]
    target = {"bundle": bundle, "entry": entry}.get(level, entry.get("resource"))
    target = target if isinstance(target, dict) else entry
    target[member] = value
    body = json.dumps(bundle, ensure_ascii=ascii_only).encode()
    now = lambda: FIXED_NOW  # noqa: E731
    whole = _answer(
        lambda: pipeline.assess_bundle(read_body(body, None, now, pipeline.limits).bundle, FIXED_NOW)
    )
    skimmed = _answer(lambda: pipeline.assess_body(body, None, now))
    assert skimmed == whole


def _nested(levels: int) -> Any:
    """A JSON value `levels` deep, objects and arrays in turn."""
    value: Any = "x"
    for i in range(levels):
        value = [value] if i % 2 else {"x": value}
    return value


@pytest.mark.parametrize("over", [0, 1], ids=["at the limit", "one past it"])
@pytest.mark.parametrize(
    ("where", "above"),
    [("Bundle.meta", 1), ("an entry's request", 3), ("an unread resource", 4), ("a read resource", 4)],
)
def test_every_part_of_a_skimmed_body_is_held_to_the_nesting_limit(where: str, above: int, over: int) -> None:
    """Each raw value is checked by itself: the body's depth is the levels above it plus its own."""
    pipeline = _pipeline()
    bundle = copy.deepcopy(_SAMPLES[0])
    bundle["entry"].append(copy.deepcopy(_UNREAD))
    value = _nested(pipeline.limits.max_depth - above + over)
    target = {
        "Bundle.meta": bundle,
        "an entry's request": bundle["entry"][1],
        "an unread resource": bundle["entry"][-1]["resource"],
        "a read resource": bundle["entry"][1]["resource"],
    }[where]
    target["meta" if where == "Bundle.meta" else "request" if "request" in where else "note"] = value
    body = json.dumps(bundle).encode()
    now = lambda: FIXED_NOW  # noqa: E731
    skimmed = _answer(lambda: pipeline.assess_body(body, None, now))
    whole = _answer(
        lambda: pipeline.assess_bundle(read_body(body, None, now, pipeline.limits).bundle, FIXED_NOW)
    )
    assert skimmed == whole
    assert ("nested more than 64 levels" in str(skimmed)) == bool(over)
