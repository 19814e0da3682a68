"""What the assessment can compute with: the instants and numbers it reads, and their ranges.

Valid R4 may still be out of reach (an instant near year 1 or 9999, an onset age of 10^300):
such a resource is a 400 naming the element, before any fact is made from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from service.assess.dates import YEARS, parse_instant, within_range
from service.errors import Issue

# The instants the assessment reads, by type (each a path of member names)
_READ_INSTANTS = {
    "Patient": (("birthDate",),),
    "Condition": (("onsetDateTime",), ("onsetPeriod", "start"), ("recordedDate",)),
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "start"), ("issued",)),
}


# The numbers it reads, with the range it can compute with (onsetAge is years from birth)
_READ_NUMBERS = {
    "Condition": ((("onsetAge", "value"), 0.0, 150.0),),
    "Observation": ((("valueQuantity", "value"), -1e15, 1e15),),
}


def out_of_range(bundle: dict[str, Any], unread: Mapping[int, str]) -> list[Issue]:
    """Valid R4 that the assessment cannot compute with: instants near years 1 or 9999, an onset
    age beyond a lifetime, a quantity no float holds (each overflowed somewhere: a 500)."""
    issues = []
    for i, entry in enumerate(bundle.get("entry") or []):
        if i in unread:
            continue
        resource = entry.get("resource") or {}
        where = f"Bundle.entry[{i}].resource"
        for path in _READ_INSTANTS.get(str(resource.get("resourceType")), ()):
            value = _member(resource, path)
            if isinstance(value, str) and not _instant_within_range(value):
                issues.append(
                    Issue("value", f"{value!r} is outside the years {YEARS}", f"{where}.{'.'.join(path)}")
                )
        for path, low, high in _READ_NUMBERS.get(str(resource.get("resourceType")), ()):
            value = _member(resource, path)
            if isinstance(value, int | float) and not _number_within(value, low, high):
                issues.append(
                    Issue(
                        "value",
                        f"{'.'.join(path)} is not a number from {low:g} to {high:g}",
                        f"{where}.{'.'.join(path)}",
                    )
                )
    return issues


def _number_within(value: float, low: float, high: float) -> bool:
    """Also for a 4,300-digit integer, which no float can hold (it made a 500 when formatted)."""
    try:
        return math.isfinite(float(value)) and low <= value <= high
    except OverflowError:
        return False


def _instant_within_range(value: str) -> bool:
    try:
        return within_range(parse_instant(value))
    except ValueError:
        return True  # a form R4 allows and this parser does not: the facts skip it, as before


def _member(resource: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = resource
    for name in path:
        node = node.get(name) if isinstance(node, dict) else None
    return node
