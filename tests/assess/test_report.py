"""The readable parts of the RiskAssessment: the narrative under the R4 narrative rules, escaping,
what it says, and sources that a clinician can look up."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.knowledge import Knowledge
from tests.support.assess import expected_for, post_bundle
from tests.support.paths import KNOWLEDGE, SAMPLE_FILES

XHTML = "http://www.w3.org/1999/xhtml"
# FHIR R4 narrative (Narrative.div, constraint txt-1/txt-2): basic HTML 4 formatting only
R4_ELEMENTS = {
    "a",
    "abbr",
    "acronym",
    "b",
    "big",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "ul",
    "var",
}
R4_ATTRIBUTES = {
    "abbr",
    "accesskey",
    "align",
    "alt",
    "axis",
    "bgcolor",
    "border",
    "cellhalign",
    "cellpadding",
    "cellspacing",
    "cellvalign",
    "char",
    "charoff",
    "charset",
    "cite",
    "class",
    "colspan",
    "compact",
    "coords",
    "dir",
    "frame",
    "headers",
    "height",
    "href",
    "hreflang",
    "hspace",
    "id",
    "lang",
    "longdesc",
    "name",
    "nowrap",
    "rel",
    "rev",
    "rowspan",
    "rules",
    "scope",
    "shape",
    "span",
    "src",
    "start",
    "style",
    "summary",
    "tabindex",
    "title",
    "type",
    "valign",
    "value",
    "vspace",
    "width",
}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted"'
NOT_XML = "bell\x07 escape\x1b form\x0c feed"  # valid JSON and R4 strings, not XML


def assess(client: FlaskClient, body: Any, as_of: str = "2026-03-01T09:00:00Z") -> dict[str, Any]:
    response = post_bundle(client, body, as_of=as_of)
    assert response.status_code == 200, response.get_data(as_text=True)
    resource: dict[str, Any] = response.get_json()
    return resource


def r4_narrative_problems(div: str) -> list[str]:
    """What breaks the R4 narrative rules: not XML, not an xhtml div, other elements or
    attributes, scripts or event handlers, javascript: links."""
    try:
        root = ET.fromstring(div)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    problems = [] if root.tag == f"{{{XHTML}}}div" else [f"root is {root.tag}"]
    for element in root.iter():
        namespace, _, name = element.tag.partition("}")
        if namespace != "{" + XHTML or name not in R4_ELEMENTS:
            problems.append(f"element {element.tag}")
        for attribute, value in element.attrib.items():
            if attribute not in R4_ATTRIBUTES or attribute.startswith("on"):
                problems.append(f"attribute {attribute} on {name}")
            if value.strip().lower().startswith("javascript:"):
                problems.append(f"javascript: in {attribute}")
    return problems


def text_of(div: str) -> str:
    return " ".join("".join(ET.fromstring(div).itertext()).split())


def load(sample: Path) -> Any:
    return json.loads(sample.read_text())


def sample(prefix: str) -> Path:
    return next(s for s in SAMPLE_FILES if s.stem.startswith(prefix))


# ---------------------------------------------------------------- the narrative


def test_the_checker_rejects_what_r4_forbids() -> None:
    assert r4_narrative_problems(f'<div xmlns="{XHTML}"><p>fine</p></div>') == []
    assert r4_narrative_problems(f'<div xmlns="{XHTML}"><script>x</script></div>')
    assert r4_narrative_problems(f'<div xmlns="{XHTML}"><p onclick="x()">a</p></div>')
    assert r4_narrative_problems(f'<div xmlns="{XHTML}"><a href="javascript:x()">a</a></div>')
    assert r4_narrative_problems("<div><p>no namespace</p></div>")
    assert r4_narrative_problems(f'<div xmlns="{XHTML}"><p>unclosed</div>')


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_every_sample_has_a_valid_generated_narrative(client: FlaskClient, path: Path) -> None:
    resource = assess(client, load(path), expected_for(path)["asOf"])
    assert resource["text"]["status"] == "generated"
    div = resource["text"]["div"]
    assert r4_narrative_problems(div) == []
    text = text_of(div)
    pathway = resource["extension"][0]["valueCodeableConcept"]["text"]
    assert f"Care pathway: {pathway}." in text and "Safety-netting:" in text
    for prediction in resource.get("prediction", []):
        assert prediction["outcome"]["text"] in text
    assert "urn:uuid:" not in text


def test_the_narrative_names_reasons_red_flags_and_gaps(client: FlaskClient) -> None:
    text = text_of(assess(client, load(sample("01-")))["text"]["div"])
    assert "Red flags: Suspected cauda equina syndrome" in text
    assert "Because of:" in text and "urn:uuid:" not in text
    assert not re.search(r"\b(ROOT|C|E|P)-[A-Z]", text)  # rule ids stay out of what people read
    text = text_of(assess(client, load(sample("06-")))["text"]["div"])
    assert "Data gaps" in text and "Bladder function is not documented" in text
    assert "Red flags" not in text


def test_text_from_the_input_is_escaped_in_the_narrative(client: FlaskClient) -> None:
    bundle = load(sample("05-"))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Procedure":
            entry["resource"]["code"]["text"] = HOSTILE
    resource = assess(client, bundle)
    div = resource["text"]["div"]
    assert r4_narrative_problems(div) == []
    assert HOSTILE in text_of(div)  # shown as text, never as markup
    assert "<script" not in div and "&lt;script&gt;" in div


def test_characters_xml_cannot_hold_are_dropped_from_the_narrative(client: FlaskClient) -> None:
    bundle = load(sample("05-"))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Procedure":
            entry["resource"]["code"]["text"] = NOT_XML
    div = assess(client, bundle)["text"]["div"]
    assert r4_narrative_problems(div) == []
    assert "bell escape form feed" in text_of(div)


def test_the_same_input_gives_the_same_narrative(client: FlaskClient) -> None:
    first, second = (assess(client, load(sample("04-")))["text"] for _ in range(2))
    assert first == second


# ---------------------------------------------------------------- references and notes


def test_subject_copies_the_patients_first_identifier(client: FlaskClient) -> None:
    bundle = load(sample("04-"))
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["identifier"] = [
        {"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"},
        {"system": "http://example.org/mrn", "value": "other"},
    ]
    subject = assess(client, bundle)["subject"]
    assert subject == {"reference": f"Patient/{patient['id']}", "identifier": patient["identifier"][0]}


def test_resources_without_ids_keep_the_bundles_reference(client: FlaskClient) -> None:
    bundle = load(sample("04-"))
    for entry in bundle["entry"]:
        entry["resource"].pop("id", None)
    resource = assess(client, bundle)
    assert all(b["reference"].startswith("urn:uuid:") for b in resource["basis"])
    assert resource["subject"]["reference"].startswith("urn:uuid:")


def test_every_note_has_a_kind_and_an_audience(client: FlaskClient) -> None:
    seen = set()
    for path in SAMPLE_FILES:
        for note in assess(client, load(path), expected_for(path)["asOf"])["note"]:
            codes = {x["url"].rsplit("/", 1)[1]: x["valueCoding"]["code"] for x in note["extension"]}
            assert codes["note-audience"] in ("clinician", "patient")
            seen.add(codes["note-kind"])
            assert not note["text"].startswith(("Safety-netting:", "Data gap:", "Input:", "Why"))
    assert seen == {"guidance", "safety-net", "data-gap", "input-ignored"}


# ---------------------------------------------------------------- sources


def test_no_cited_source_is_an_internal_document(kb: Knowledge) -> None:
    for source in kb.sources.values():
        assert ".md" not in source.title and "§" not in source.title, source.id
    shown = {sid for item in (*kb.guidance, *kb.gaps, *kb.pathways.values()) for sid in item.sources}
    for sid in shown:  # what notes cite: a public guideline to look up, or expert consensus
        assert kb.sources[sid].url or kb.sources[sid].kind == "heuristic", sid
    heuristics = [s for s in kb.sources.values() if s.kind == "heuristic"]
    assert heuristics and all(s.title.startswith("Expert consensus") for s in heuristics)


def test_every_expert_consensus_item_is_flagged_for_review(kb: Knowledge) -> None:
    """knowledge/README.md lists, for clinical review, everything that cites a heuristic."""
    heuristic = {s.id for s in kb.sources.values() if s.kind == "heuristic"}
    cited = {r.id for r in kb.rules if heuristic & set(r.sources)}
    cited |= {g.id for g in kb.guidance if heuristic & set(g.sources)}
    cited |= {g.id for g in kb.gaps if heuristic & set(g.sources)}
    cited |= {p.code for p in kb.pathways.values() if heuristic & set(p.sources)}
    readme = (KNOWLEDGE / "README.md").read_text()
    section = readme.split("## Expert consensus", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"[A-Za-z0-9_-]+", section))
    assert cited and cited <= listed, sorted(cited - listed)
