"""The codes of a value set as the knowledge files list them: each checked for a known system
and source (shared by the concepts of valuesets/ and the order sets of orders.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.errors import KnowledgeError
from service.knowledge.model import Coding
from service.knowledge.vocabulary import ICD10CM


def read_codings(
    file: str, where: str, raw_codes: list[dict[str, Any]], systems: Mapping[str, str], source_ids: set[str]
) -> list[Coding]:
    """A value set's codes, each with a known system and source."""
    codes = []
    for i, code in enumerate(raw_codes):
        at = f"{where}.codes.{i}"
        if code["system"] not in systems:
            raise KnowledgeError(
                file, f"{at}.system", f"unknown system {code['system']!r}; add it to manifest.yaml"
            )
        if code["ref"] not in source_ids:
            raise KnowledgeError(file, f"{at}.ref", f"unknown source {code['ref']!r}")
        if code["descendants"] and systems[code["system"]] != ICD10CM:
            raise KnowledgeError(
                file,
                f"{at}.descendants",
                "only ICD-10-CM codes (whose hierarchy is their prefixes) may include their descendants",
            )
        codes.append(
            Coding(
                systems[code["system"]],
                code["code"],
                code["display"],
                code["tag"],
                code["ref"],
                code.get("side"),
                code["descendants"],
            )
        )
    return codes
