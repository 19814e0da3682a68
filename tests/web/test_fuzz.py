"""Fuzzing: whatever arrives, the answer is 200 or a 4xx OperationOutcome, never a 500 or a hang.

Bounded for CI (profile `ci`); `HYPOTHESIS_PROFILE=long pytest tests/test_fuzz.py` runs the long
profile by hand. The OpenAPI document is also exercised with schemathesis.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.settings import Settings
from service.web.app import create_app
from tests.support.cds import SERVICE, hook_request, server_style
from tests.support.paths import ASSESS, FIXED_NOW, KNOWLEDGE, SAMPLE_FILES

pytestmark = pytest.mark.slow  # hypothesis and schemathesis

settings.register_profile(
    "ci",
    max_examples=120,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# No time budget here (it is tested in test_api): on a loaded machine a 4,000-entry bundle may
# need more than the default 5 s, and its 503 would hide what these tests look for.
APP: Flask = create_app(Settings(knowledge_dir=KNOWLEDGE, request_budget=3600), now=lambda: FIXED_NOW)
SAMPLES_JSON = [json.loads(path.read_text()) for path in SAMPLE_FILES]


def answered_properly(response: Any) -> None:
    assert response.status_code == 200 or 400 <= response.status_code < 500, (
        response.status_code,
        response.get_data(as_text=True)[:500],
    )
    if response.status_code != 200 and response.status_code != 404:
        body = response.get_json()
        assert body["resourceType"] == "OperationOutcome" and body["issue"]


def post(
    client: FlaskClient, body: bytes, path: str = ASSESS, content_type: str = "application/fhir+json"
) -> Any:
    return client.post(path, data=body, content_type=content_type)


# ---------------------------------------------------------------- mutations of valid bundles

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=50),
    st.just("x" * 200_000),
    st.just("\u202e\u0000\ud7ff\U0001f9b6"),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _locations(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found += _locations(child, (*path, key))
    return found


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        document = document[key]
    return document


@st.composite
def mutated_bundles(draw: st.DrawFn) -> bytes:
    document = copy.deepcopy(draw(st.sampled_from(SAMPLES_JSON)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["drop", "retype", "deep", "duplicate", "dangling", "circular"]))
        locations = _locations(document)
        if not locations:
            break
        path = draw(st.sampled_from(locations))
        parent = _parent(document, path)
        if kind == "drop":
            del parent[path[-1]]
        elif kind == "retype":
            parent[path[-1]] = draw(ODD_VALUES)
        elif kind == "deep":
            nested: Any = "bottom"
            for _ in range(draw(st.integers(10, 300))):
                nested = [nested] if draw(st.booleans()) else {"a": nested}
            parent[path[-1]] = nested
        else:
            _reference_trouble(document, kind)
    return json.dumps(document, ensure_ascii=draw(st.booleans())).encode()


def _reference_trouble(document: dict[str, Any], kind: str) -> None:
    bundle = document
    if document.get("resourceType") == "Parameters":
        bundle = next(
            (
                p.get("resource")
                for p in document.get("parameter") or []
                if isinstance(p, dict) and isinstance(p.get("resource"), dict)
            ),
            {},
        )
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        return
    if kind == "duplicate":  # the same id and fullUrl twice
        entries.append(copy.deepcopy(entries[-1]))
    elif kind == "dangling":
        for entry in entries:
            if isinstance(entry.get("resource"), dict):
                entry["resource"]["subject"] = {"reference": "Patient/nowhere"}
    elif kind == "circular":
        for i, entry in enumerate(entries):
            if isinstance(entry.get("resource"), dict):
                target = entries[(i + 1) % len(entries)].get("fullUrl", "Observation/x")
                entry["resource"]["hasMember"] = [{"reference": target}]
                entry["resource"]["derivedFrom"] = [{"reference": entry.get("fullUrl", "x")}]


@given(body=mutated_bundles())
def test_mutated_bundles(body: bytes) -> None:
    answered_properly(post(APP.test_client(), body))


@settings(max_examples=8)
@given(sample=st.sampled_from(SAMPLES_JSON), copies=st.integers(1000, 4000))
def test_thousands_of_entries(sample: dict[str, Any], copies: int) -> None:
    bundle = copy.deepcopy(sample)
    if bundle["resourceType"] == "Parameters":
        bundle = bundle["parameter"][0]["resource"]
    template = bundle["entry"][-1]
    bundle["entry"] += [
        {**copy.deepcopy(template), "fullUrl": f"urn:uuid:{i:08d}-0000-4000-8000-000000000000"}
        for i in range(copies)
    ]
    response = post(APP.test_client(), json.dumps(bundle).encode())
    answered_properly(response)


# ---------------------------------------------------------------- garbage

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["resourceType", "entry", "resource", "type", "parameter", "id", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@given(body=st.binary(max_size=3000))
def test_raw_bytes(body: bytes) -> None:
    answered_properly(post(APP.test_client(), body))


@given(document=JSON_VALUES, resource_type=st.sampled_from(["Bundle", "Parameters", None]))
def test_json_of_any_shape(document: Any, resource_type: str | None) -> None:
    if resource_type and isinstance(document, dict):
        document["resourceType"] = resource_type
    answered_properly(post(APP.test_client(), json.dumps(document).encode()))


@given(
    text=st.sampled_from(
        [
            '{"resourceType": "Bundle", "entry": [NaN]}',
            "[" * 100_000,
            '{"resourceType": "Bundle", "type": "collection", "total": 1e999}',
            '{"a": "\\ud800"}',
            "\ufeff{}",
            '{"resourceType":"Bundle"}' * 2,
        ]
    )
)
def test_edge_case_texts(text: str) -> None:
    answered_properly(post(APP.test_client(), text.encode("utf-8", "surrogatepass")))


# ---------------------------------------------------------------- classes of former 500s

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
EDGE_INSTANTS = st.one_of(
    st.datetimes(max_value=datetime(1, 1, 3), timezones=_ZONES),
    st.datetimes(min_value=datetime(9999, 12, 29), timezones=_ZONES),
    st.datetimes(timezones=_ZONES),
)
HUGE_NUMBERS = st.one_of(
    st.integers(min_value=10**15, max_value=10**4299),
    st.integers(max_value=-(10**15), min_value=-(10**4299)),
    st.floats(min_value=-1e308, max_value=1e308),
)
ODD_TEXT = st.text(alphabet=st.characters(categories=["Cs", "Co", "Cc", "Cf", "Lo"]), max_size=8)


def _first_of(document: dict[str, Any], rtype: str) -> dict[str, Any] | None:
    entries = document.get("entry") or []
    return next((e["resource"] for e in entries if e["resource"]["resourceType"] == rtype), None)


@given(
    sample=st.sampled_from(SAMPLES_JSON),
    instant=EDGE_INSTANTS,
    where=st.sampled_from(
        [
            "asOf",
            "Patient.birthDate",
            "Condition.onsetDateTime",
            "Observation.effectiveDateTime",
            "Condition.recordedDate",
        ]
    ),
)
def test_dates_at_the_edges_of_the_calendar(sample: dict[str, Any], instant: datetime, where: str) -> None:
    document = copy.deepcopy(sample)
    text = instant.isoformat()
    if where == "asOf":
        answered_properly(
            post(APP.test_client(), json.dumps(document).encode(), f"{ASSESS}?asOf={quote(text)}")
        )
        return
    rtype, member = where.split(".")
    resource = _first_of(document, rtype) if document["resourceType"] == "Bundle" else None
    if resource is not None:
        resource[member] = instant.date().isoformat() if member == "birthDate" else text
    answered_properly(post(APP.test_client(), json.dumps(document).encode()))


@given(
    sample=st.sampled_from(SAMPLES_JSON),
    number=HUGE_NUMBERS,
    where=st.sampled_from(["onsetAge", "valueQuantity", "valueInteger"]),
)
def test_huge_numbers_where_they_are_read(sample: dict[str, Any], number: float, where: str) -> None:
    document = copy.deepcopy(sample)
    resource = (
        _first_of(document, "Condition" if where == "onsetAge" else "Observation")
        if (document["resourceType"] == "Bundle")
        else None
    )
    if resource is not None:
        for name in [k for k in resource if k.startswith("onset" if where == "onsetAge" else "value")]:
            del resource[name]
        resource[where] = number if where == "valueInteger" else {"value": number, "unit": "a"}
    answered_properly(post(APP.test_client(), json.dumps(document).encode()))


@given(sample=st.sampled_from(SAMPLES_JSON), name=ODD_TEXT, text=ODD_TEXT)
def test_unread_resource_types_with_odd_unicode(sample: dict[str, Any], name: str, text: str) -> None:
    document = copy.deepcopy(sample)
    if document["resourceType"] == "Bundle":
        document.setdefault("entry", []).append(
            {"resource": {"resourceType": f"Basic{name}", "id": "b", "code": {"text": text}}}
        )
    answered_properly(post(APP.test_client(), json.dumps(document).encode()))  # \u escapes


# ---------------------------------------------------------------- CDS Hooks calls

HOOK_REQUEST = hook_request(server_style(SAMPLE_FILES[0]))


@given(data=st.data())
def test_mutated_cds_hook_calls(data: st.DataObject) -> None:
    document = copy.deepcopy(HOOK_REQUEST)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_locations(document) or [("hook",)]))
        parent = _parent(document, path)
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(ODD_VALUES)
    answered_properly(post(APP.test_client(), json.dumps(document).encode(), SERVICE, "application/json"))


# ---------------------------------------------------------------- the OpenAPI document

SCHEMA = schemathesis.openapi.from_wsgi("/openapi.json", APP)


@SCHEMA.parametrize()
@settings(max_examples=60, deadline=None)
def test_the_api_as_documented(case: Any) -> None:
    """Schemathesis' checks, except accepting every schema-valid body: a JSON Schema cannot say
    what a valid FHIR Bundle or an assessable patient is, so those get 400/412/422 by design."""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
