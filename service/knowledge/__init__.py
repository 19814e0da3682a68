"""The knowledge base: its model (frozen types, closed vocabularies), schemas and loader.

The clinical content itself is data, in the repository's `knowledge/` folder (installed as the
package data `service.knowledge.base`); this package only gives it shape and checks it.
"""

from service.knowledge.concepts import normalise_text
from service.knowledge.loader import default_directory, load_knowledge
from service.knowledge.model import (
    Coding,
    Concept,
    ConclusionDef,
    Gap,
    Guidance,
    Knowledge,
    Mimic,
    PathwayDef,
    Rule,
)
from service.knowledge.vocabulary import DERIVED_FACTS, FACT_FIELDS, INPUT_FACTS, RISKS

__all__ = [
    "DERIVED_FACTS",
    "FACT_FIELDS",
    "INPUT_FACTS",
    "RISKS",
    "Coding",
    "ConclusionDef",
    "Concept",
    "Gap",
    "Guidance",
    "Knowledge",
    "Mimic",
    "PathwayDef",
    "Rule",
    "default_directory",
    "load_knowledge",
    "normalise_text",
]
