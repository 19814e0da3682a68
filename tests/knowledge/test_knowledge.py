"""The knowledge base loads, and a broken file is refused with a message naming file and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from service.errors import KnowledgeError
from service.knowledge import Knowledge, files, load_knowledge
from service.settings import Settings
from service.web.app import create_app
from tests.support.paths import KNOWLEDGE


def test_knowledge_loads_with_id_version_and_generated_root_rules(kb: Knowledge) -> None:
    assert kb.id == "spinefoot-back-foot" and re.fullmatch(r"\d+\.\d+\.\d+", kb.version)
    root_rules = [r.id for r in kb.rules if r.generated_from == "neuroanatomy.yaml"]
    assert {"ROOT-L4-SENSORY", "ROOT-L5-SENSORY", "ROOT-S1-REFLEX", "ROOT-S1-IMAGING"} <= set(root_rules)


def test_rule_ids_are_unique_and_every_rule_cites_a_known_source(kb: Knowledge) -> None:
    ids = [r.id for r in kb.rules]
    assert len(ids) == len(set(ids))
    assert all(r.sources and set(r.sources) <= set(kb.sources) for r in kb.rules)


def test_plantar_fasciitis_is_read_in_both_icd10cm_editions(kb: Knowledge) -> None:
    # M72.2 until FY2026 (inclusion term plantar fasciitis), M67.A0- from FY2027 (reference §0a).
    for code in ("M72.2", "M67.A01", "M67.A02", "M67.A09"):
        names = [c.name for c in kb.concepts_for("http://hl7.org/fhir/sid/icd-10-cm", code)]
        assert names == ["plantar_fasciitis"]


def test_synthea_diabetic_neuropathy_code_is_mapped(kb: Knowledge) -> None:
    for code in ("368581000119106", "102781000119107", "424736006", "713706002", "230572002"):
        names = [c.name for c in kb.concepts_for("http://snomed.info/sct", code)]
        assert names == ["diabetic_neuropathy"]


def test_a_site_can_add_a_local_code_without_code_changes(knowledge_copy: Path) -> None:
    (knowledge_copy / "valuesets" / "zz-local.yaml").write_text(
        "kind: clinical\nconcepts:\n  numbness:\n    display: Numbness\n    codes:\n"
        "      - {system: sct, code: '999999999', display: Local numbness, tag: L, ref: GPS}\n"
    )
    kb = load_knowledge(knowledge_copy)
    assert [c.name for c in kb.concepts_for("http://snomed.info/sct", "999999999")] == ["numbness"]
    assert len(kb.concepts["numbness"].codes) > 1  # the shipped codes are kept


# Each row: file, text to replace, replacement, expected (file, field, words in message).
BREAKAGES = [
    (
        "rules.yaml",
        "sources: [NICE-NG59, GIRFT-CES-2023]",
        "sources: [NOPE]",
        ("rules.yaml", "E-SPINAL-CONTEXT.sources", "unknown source 'NOPE'"),
    ),
    (
        "rules.yaml",
        "{fact: finding, concept: plantar_fasciitis, status: active}",
        "{fact: finding, concept: plantar_fasciitiz, status: active}",
        ("rules.yaml", "C-PLANTAR-FASCIITIS.when.0.concept", "unknown concept 'plantar_fasciitiz'"),
    ),
    (
        "rules.yaml",
        "{fact: treatment, concept: spinal_surgery, recent: true}",
        "{fact: treatment, colour: spinal_surgery, recent: true}",
        ("rules.yaml", "E-SPINAL-SURGERY.when.0.colour", "no field 'colour'"),
    ),
    (
        "rules.yaml",
        "{fact: patient, older: true}",
        "{fact: patient, older: 3}",
        ("rules.yaml", "E-FLAG-MALIGNANCY-WEIGHT.when.1.older", "must be a word or true/false"),
    ),
    (
        "rules.yaml",
        "then: {pathway: emergency-assessment}",
        "then: {pathway: emergency}",
        ("rules.yaml", "P-EMERGENCY-CES.then.pathway", "not in pathways.yaml"),
    ),
    (
        "valuesets/spinal.yaml",
        'code: "23056005", display: Sciatica, tag: A',
        'code: "23056005", display: Sciatica, tag: U',
        ("valuesets/spinal.yaml", "concepts.sciatica.codes.0.tag", "unverified"),
    ),
    (
        "valuesets/spinal.yaml",
        'code: "23056005"',
        "code: 23056005",
        ("valuesets/spinal.yaml", "concepts.sciatica.codes.0.code", "Not a valid string"),
    ),
    (
        "valuesets/spinal.yaml",
        'system: sct, code: "23056005"',
        'system: snomed, code: "23056005"',
        ("valuesets/spinal.yaml", "concepts.sciatica.codes.0.system", "unknown system 'snomed'"),
    ),
    (
        "parameters.yaml",
        "value: 14",
        "value: fourteen",
        ("parameters.yaml", "ces_acute_max_days.value", "Not a valid number"),
    ),
    (
        "neuroanatomy.yaml",
        "sensory_sites: [medial_ankle]",
        "sensory_sites: [knee_reflex]",
        ("neuroanatomy.yaml", "roots.L4.sensory_sites", "not a site concept"),
    ),
    ("manifest.yaml", "version: 4.1.0", "version: one", ("manifest.yaml", "version", "semver")),
    (
        "gaps.yaml",
        "missing: [bladder_dysfunction, post_void_residual]",
        "missing: [bladder, post_void_residual]",
        ("gaps.yaml", "GAP-CES-BLADDER.missing", "unknown name 'bladder'"),
    ),
    (
        "guidance.yaml",
        "for: {conclusion: cauda_equina}\n  title: What",
        "for: {conclusion: cauda}\n  title: What",
        ("guidance.yaml", "G-CES-WHAT.for.conclusion", "unknown conclusion 'cauda'"),
    ),
    (
        "values.yaml",
        "pint: milliliter",
        "pint: millilitre_of_beer",
        ("values.yaml", "units.mL.pint", "not a unit of the same kind"),
    ),
    (
        "values.yaml",
        "pint: liter",
        "pint: degC",
        ("values.yaml", "units.L.pint", "not a unit of the same kind as 'milliliter'"),
    ),
    (
        "values.yaml",
        'present: ["yes"',
        'present: ["no", "yes"',
        ("values.yaml", "text", "both absent and present: ['no']"),
    ),
    (
        "valuesets/measurements.yaml",
        "unit: mL",
        "unit: mmHg",
        ("valuesets/", "concepts.post_void_residual.unit", "unknown unit 'mmHg'"),
    ),
    ("sources.yaml", "sources:", "sources: [", ("sources.yaml", "-", "not valid YAML")),
]


@pytest.mark.parametrize("file,old,new,expected", BREAKAGES, ids=[f"{b[0]}:{b[2][:24]}" for b in BREAKAGES])
def test_broken_knowledge_is_refused_precisely(
    knowledge_copy: Path, file: str, old: str, new: str, expected: tuple[str, str, str]
) -> None:
    path = knowledge_copy / file
    text = path.read_text()
    assert old in text, f"test row is stale: {old!r} not in {file}"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(knowledge_copy)
    error = caught.value
    assert error.file == expected[0]
    assert expected[1] in error.field, str(error)
    assert expected[2] in error.message, str(error)


def test_a_missing_file_is_named(knowledge_copy: Path) -> None:
    (knowledge_copy / "rules.yaml").unlink()
    with pytest.raises(KnowledgeError, match=r"rules.yaml: -: file is missing"):
        load_knowledge(knowledge_copy)


def test_the_app_does_not_start_on_a_broken_knowledge_base(knowledge_copy: Path) -> None:
    (knowledge_copy / "pathways.yaml").write_text("emergency-assessment: {}\n")
    with pytest.raises(KnowledgeError, match="pathways.yaml"):
        create_app(Settings(knowledge_dir=knowledge_copy))


def test_an_icd_category_with_descendants_covers_the_codes_below_it(knowledge_copy: Path) -> None:
    (knowledge_copy / "valuesets" / "local.yaml").write_text(
        "kind: clinical\nconcepts:\n  history_of_cancer:\n    display: History of cancer\n"
        "    codes:\n      - {system: icd10cm, code: Z85, display: Personal history of malignant "
        "neoplasm, tag: L, ref: CMS-FY26, descendants: true}\n",
        encoding="utf-8",
    )
    kb = load_knowledge(knowledge_copy)
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    names = {
        code: {c.name for c in kb.concepts_for(icd, code)}
        for code in ("Z85", "Z85.3", "Z85.528", "Z86.3", "Z8", "M54.31")
    }
    assert names == {
        "Z85": {"history_of_cancer"},
        "Z85.3": {"history_of_cancer"},
        "Z85.528": {"history_of_cancer"},
        "Z86.3": set(),
        "Z8": set(),
        "M54.31": {"sciatica"},
    }


def test_descendants_are_refused_outside_icd10cm(knowledge_copy: Path) -> None:
    (knowledge_copy / "valuesets" / "local.yaml").write_text(
        "kind: clinical\nconcepts:\n  fever:\n    display: Fever\n    codes:\n"
        "      - {system: sct, code: '386661006', display: Fever, tag: L, ref: GPS, "
        "descendants: true}\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError, match=r"local.yaml.*descendants.*ICD-10-CM"):
        load_knowledge(knowledge_copy)


def test_libyaml_reads_the_knowledge_base_as_the_pure_python_parser_does(
    kb: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast parser is only a speed-up: the frozen knowledge base must be the same object."""
    monkeypatch.setattr(files, "_SAFE_LOADER", yaml.SafeLoader)
    assert load_knowledge(KNOWLEDGE) == kb


def test_a_huge_icd_code_is_looked_up_in_linear_time(kb: Knowledge) -> None:
    """A megabyte 'code' (a fuzzed prefetch found it) is no ICD-10-CM code: no ancestors are
    made of it, so the lookup cannot cost the square of its length."""
    huge = "M" + "5" * 1_000_000
    assert kb.concepts_for("http://hl7.org/fhir/sid/icd-10-cm", huge) == ()
    assert [c.name for c in kb.concepts_for("http://hl7.org/fhir/sid/icd-10-cm", "E11.42")]
