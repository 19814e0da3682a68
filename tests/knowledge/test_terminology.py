"""Every code in knowledge/ is checked offline against an official release (reference.md §0a):
ICD-10-CM against the CMS FY2026 tabular, SNOMED CT against the Global Patient Set (GPS). A code
whose name differs from the release's is the classic sign of a wrong code, so it fails here."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import yaml
from stdnum import luhn

with warnings.catch_warnings():  # simple-icd-10-cm 1.5.0 loads its data with a deprecated API
    warnings.simplefilter("ignore", DeprecationWarning)
    import simple_icd_10_cm as icd  # the CMS FY2026 tabular

from service.knowledge import Knowledge
from tests.support.paths import DATA, KNOWLEDGE

GPS_FILE = DATA / "terminology" / "snomed-gps.valueset.json"
FY27_ADDENDA = "CMS-FY27-ADDENDA"  # codes effective 2026-10-01, not in the FY2026 tabular
# [A]/[B] sources other than the GPS that a SNOMED CT code may cite (reference.md §0).
OTHER_SNOMED_SOURCES = frozenset({"eHDSI", "DICOM", "OHDSI", "Synthea", "public-lists", "Canon"})
SEMANTIC_TAG = re.compile(r"\s*\([^()]*\)\s*$")  # "Foot pain (finding)" -> "Foot pain"


@dataclass(frozen=True)
class Entry:
    """One coding in a knowledge file, with where it is, so a failure names file, concept, code."""

    file: str
    concept: str
    system: str
    code: str
    display: str
    tag: str
    ref: str
    descendants: bool

    @property
    def where(self) -> str:
        return f"{self.file}:{self.concept}:{self.code}"


def _valueset_entries() -> list[Entry]:
    entries = []
    for path in sorted((KNOWLEDGE / "valuesets").glob("*.yaml")):
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        for concept, body in data["concepts"].items():
            entries += [
                Entry(
                    f"valuesets/{path.name}",
                    concept,
                    c["system"],
                    str(c["code"]),
                    c["display"],
                    c["tag"],
                    c["ref"],
                    bool(c.get("descendants")),
                )
                for c in body["codes"]
            ]
    return entries


def _order_entries() -> list[Entry]:
    """The codes orders.yaml adds of its own (order-sign's draft orders)."""
    data: dict[str, Any] = yaml.safe_load((KNOWLEDGE / "orders.yaml").read_text("utf-8"))
    return [
        Entry(
            "orders.yaml",
            name,
            c["system"],
            str(c["code"]),
            c["display"],
            c["tag"],
            c["ref"],
            bool(c.get("descendants")),
        )
        for name, body in data["orders"].items()
        for c in body.get("codes", [])
    ]


def _outcome_entries() -> list[Entry]:
    """The SNOMED CT outcome codes of conclusions.yaml: reported to the EHR, so from the GPS."""
    data: dict[str, Any] = yaml.safe_load((KNOWLEDGE / "conclusions.yaml").read_text("utf-8"))
    return [
        Entry(
            "conclusions.yaml",
            name,
            body["outcome"]["system"],
            body["outcome"]["code"],
            body["outcome"]["display"],
            "A",
            "GPS",
            False,
        )
        for name, body in data.items()
    ]


ENTRIES = _valueset_entries() + _order_entries() + _outcome_entries()
ICD10CM = [e for e in ENTRIES if e.system == "icd10cm"]
SNOMED = [e for e in ENTRIES if e.system == "sct"]
LOINC_CODES = [e for e in ENTRIES if e.system == "loinc"]


@cache
def gps_names() -> dict[str, str]:
    """GPS code -> fully specified name without its semantic tag."""
    concepts = json.loads(GPS_FILE.read_text("utf-8"))["compose"]["include"][0]["concept"]
    return {c["code"]: SEMANTIC_TAG.sub("", c["display"]) for c in concepts}


def normalised(text: str) -> str:
    """Names compared without case, punctuation or spacing: "Foot-drop" is "foot drop"."""
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


@pytest.mark.parametrize("entry", ICD10CM, ids=lambda e: e.where)
def test_icd10cm_code_is_in_the_fy2026_tabular_with_its_title(entry: Entry) -> None:
    # Only the code's own title counts, not its inclusion terms: the display must say what the
    # code says (M72.2 is "Plantar fascial fibromatosis" even in the plantar-fasciitis concept).
    if entry.ref == FY27_ADDENDA:
        assert entry.tag == "A" and not icd.is_valid_item(entry.code), (
            f"{entry.where}: in the FY2026 tabular, so cite CMS-FY26, not the FY2027 addenda"
        )
        return
    assert icd.is_valid_item(entry.code), f"{entry.where}: not in the CMS FY2026 tabular"
    title = icd.get_description(entry.code)
    assert normalised(entry.display) == normalised(title), (
        f"{entry.where}: display {entry.display!r}, the FY2026 tabular says {title!r}"
    )
    assert (entry.tag, entry.ref) == ("A", "CMS-FY26"), (
        f"{entry.where}: confirmed by the FY2026 tabular, so tag A and ref CMS-FY26"
    )
    assert not entry.descendants or not icd.is_leaf(entry.code), (
        f"{entry.where}: descendants on a code that has none"
    )


@pytest.mark.parametrize("entry", SNOMED, ids=lambda e: e.where)
def test_snomed_code_is_in_the_gps_with_its_name_or_cites_another_source(entry: Entry) -> None:
    name = gps_names().get(entry.code)
    if name is None:
        assert entry.ref in OTHER_SNOMED_SOURCES and entry.tag in ("A", "B"), (
            f"{entry.where}: not in the GPS, so it needs another [A]/[B] source, not {entry.ref}"
        )
        return
    assert normalised(entry.display) == normalised(name), (
        f"{entry.where}: display {entry.display!r}, the GPS says {name!r}"
    )
    assert (entry.tag, entry.ref) == ("A", "GPS"), (
        f"{entry.where}: confirmed by the GPS, so tag A and ref GPS"
    )


@pytest.mark.parametrize("entry", LOINC_CODES, ids=lambda e: e.where)
def test_loinc_code_has_a_valid_check_digit(entry: Entry) -> None:
    # No LOINC release is available offline; its mod-10 check digit still catches a mistyped code.
    number, _, check = entry.code.partition("-")
    assert number.isdigit() and len(check) == 1 and luhn.is_valid(number + check), (
        f"{entry.where}: not a valid LOINC code"
    )


def test_the_release_files_are_the_expected_editions() -> None:
    assert len(gps_names()) == 26158
    assert icd.get_description("M72.2") == "Plantar fascial fibromatosis"  # FY2026, not FY2027
    assert not icd.is_valid_item("M67.A01")


def test_no_code_is_unverified_or_one_the_reference_marks_wrong(kb: Knowledge) -> None:
    codes = {
        (c.system.rsplit("/", 1)[-1], c.code): c for concept in kb.concepts.values() for c in concept.codes
    }
    assert all(c.tag in ("A", "B") for c in codes.values())
    for wrong in ("271594007", "4556007", "81680005", "75607008"):  # reference.md §0, §2c
        assert ("sct", wrong) not in codes
    assert ("loinc", "24531-6") not in codes  # US retroperitoneum, not lumbar MRI


@pytest.mark.parametrize(
    ("code", "not_in"),
    [
        ("279040009", "sciatica"),  # mechanical low back pain, not lumbago with sciatica
        ("76107001", "disc_herniation"),  # spinal stenosis, not a prolapsed disc
        ("128200000", "lumbar_radiculopathy"),  # complex regional pain syndrome
    ],
)
def test_codes_the_reference_says_are_mislabelled_keep_their_real_meaning(
    kb: Knowledge, code: str, not_in: str
) -> None:
    names = {c.name for c in kb.concepts_for("http://snomed.info/sct", code)}
    assert not_in not in names


SCT, ICD, LOINC = ("http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm", "http://loinc.org")


@pytest.mark.parametrize(
    ("system", "code", "concepts"),
    [
        (ICD, "R33.9", {"bladder_dysfunction"}),  # retention, coded as billed
        (SCT, "102835006", {"bladder_dysfunction"}),  # difficulty passing urine
        (ICD, "R15.1", {"bowel_dysfunction"}),
        (ICD, "N52.9", {"sexual_dysfunction"}),
        (ICD, "R20.0", {"reduced_sensation"}),
        (ICD, "R20.9", {"other_sensory_disturbance"}),
        (SCT, "59112000", {"perineum"}),  # perianal skin: a saddle site
        (ICD, "Z85.528", {"history_of_cancer"}),  # through the Z85 category
        (ICD, "R63.4", {"unexplained_weight_loss"}),
        (SCT, "50177009", {"fever"}),
        (ICD, "Z79.624", {"immunosuppression"}),  # through Z79.62
        (ICD, "Z79.52", {"long_term_steroids"}),
        (ICD, "E10.42", {"diabetic_neuropathy", "diabetes"}),
        (SCT, "102781000119107", {"diabetic_neuropathy"}),
        (ICD, "E11.9", {"diabetes"}),
        (ICD, "E11.621", {"diabetes", "diabetes_complication", "other_local_foot_condition"}),
        (ICD, "L97.512", {"other_local_foot_condition"}),
        (ICD, "I70.211", {"peripheral_arterial_disease", "vascular_claudication"}),
        (ICD, "M72.2", {"plantar_fasciitis"}),
        (LOINC, "18749-2", {"electrodiagnosis"}),
        (LOINC, "24970-6", {"lumbar_spine_imaging"}),
    ],
)
def test_codes_real_records_use_are_read_as_their_concept(
    kb: Knowledge, system: str, code: str, concepts: set[str]
) -> None:
    assert {c.name for c in kb.concepts_for(system, code)} == concepts
