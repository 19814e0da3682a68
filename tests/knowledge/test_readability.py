"""Patient-facing texts read at a reading age of about 11-12 (US school grade 6-7).

Measured with textstat's Flesch-Kincaid grade (reading age = grade + 5) and Flesch reading
ease (60 and above is plain English), over every guidance item written for patients and every
pathway's safety-netting advice, which is addressed to the patient.
"""

from __future__ import annotations

import pytest
import textstat

from service.knowledge import Knowledge, load_knowledge
from tests.support.paths import KNOWLEDGE

MAX_GRADE = 7.0  # reading age 12
MIN_EASE = 60.0


def patient_texts(kb: Knowledge) -> dict[str, str]:
    texts = {g.id: g.text for g in kb.guidance if g.audience == "patient"}
    texts.update({f"{p.code}.safety_net": p.safety_net for p in kb.pathways.values()})
    return texts


TEXTS = patient_texts(load_knowledge(KNOWLEDGE))


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_patient_text_is_plain(name: str) -> None:
    text = TEXTS[name]
    assert textstat.flesch_kincaid_grade(text) <= MAX_GRADE, text
    assert textstat.flesch_reading_ease(text) >= MIN_EASE, text


def test_the_measure_tells_hard_text_from_plain() -> None:
    hard = (
        "Gabapentinoids, benzodiazepines and oral corticosteroids are contraindicated for "
        "radicular pain, and opioid analgesia is inadvisable for chronic lumbosacral "
        "radiculopathy given the unfavourable risk-benefit considerations."
    )
    assert textstat.flesch_kincaid_grade(hard) > MAX_GRADE
    assert textstat.flesch_reading_ease(hard) < MIN_EASE
    assert len(TEXTS) >= 10  # the patient-facing texts are all here
