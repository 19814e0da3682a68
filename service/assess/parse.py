"""From request body to a Bundle and the assessment instant (contract §1).

The body is a Bundle, or Parameters with `bundle` and `asOf`. Its size, nesting and entry
count are checked before any other work, so that a hostile body costs little.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from service.assess import fhir
from service.assess.dates import YEARS, parse_instant, within_range
from service.assess.nesting import nests_deeper, without_escapes
from service.assess.relevance import Relevance
from service.assess.skim import skim_bundle
from service.errors import InvalidRequest, InvalidResource, PayloadTooLarge

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # cheap test on the raw body first
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19  # orjson reads an integer this long (beyond 64 bits) as a float
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Limits:
    """What a request may cost: configurable (settings), checked before FHIR validation."""

    max_entries: int = 10_000
    max_depth: int = 64


@dataclass(frozen=True)
class AssessInput:
    bundle: dict[str, Any]
    as_of: datetime
    unread: dict[int, str] | None = None  # entries not read, when the body was skimmed


# ---------------------------------------------------------------- body -> bundle and asOf


def read_body(
    body: bytes,
    as_of_query: str | None,
    now: Callable[[], datetime],
    limits: Limits,
    relevance: Relevance | None = None,
) -> AssessInput:
    """Decode and unwrap the request; `now` is consulted only when no asOf is given. With
    `relevance`, a Bundle body is skimmed: what is not read is not decoded (assess/skim.py)."""
    skimmed = _skimmed(body, limits, relevance) if relevance is not None else None
    document, unread = skimmed or (parse_json(body, limits), None)
    if not isinstance(document, dict) or document.get("resourceType") not in ("Bundle", "Parameters"):
        raise InvalidRequest.single(
            "structure", "the body must be a FHIR Bundle or a Parameters resource", "resourceType"
        )
    as_of_text = as_of_query
    if document["resourceType"] == "Parameters":
        document, as_of_param = _unwrap_parameters(document)
        as_of_text = as_of_param or as_of_text
    as_of = _parse_as_of(as_of_text) if as_of_text is not None else now()
    return AssessInput(document, as_of, unread)


def _skimmed(
    body: bytes, limits: Limits, relevance: Relevance
) -> tuple[dict[str, Any], dict[int, str]] | None:
    """A Bundle skimmed; None when it must be parsed whole (a surrogate escape, a body nested
    past the limit, or anything skim_bundle is not certain to read as the full parse)."""
    if _SURROGATE_ESCAPE.search(body):
        return None
    return skim_bundle(body, relevance, limits.max_depth)


def parse_json(body: bytes, limits: Limits) -> Any:
    """UTF-8 JSON within the nesting limit, or 400."""
    plain = without_escapes(body)
    document = _decode(body, plain)
    _check_nesting(plain, limits)
    if _SURROGATE_ESCAPE.search(body):
        _reject_lone_surrogates(document)
    return document


def _check_nesting(plain: bytes, limits: Limits) -> None:
    if nests_deeper(plain, limits.max_depth):
        raise InvalidRequest.single(
            "too-costly", f"the JSON body is nested more than {limits.max_depth} levels deep"
        )


def decode_json(text: bytes) -> Any:
    """`json.loads(text)`, at orjson's speed wherever orjson reads it the same (see `_decode`):
    for the lines of a Bulk Data export, each one resource, without the request's limits."""
    if not _has_long_integer(without_escapes(text)):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(text)
    return json.loads(text)


def _decode(body: bytes, plain: bytes) -> Any:
    """orjson (twice as fast) for what it reads as the standard library does; what it refuses
    (a BOM, NaN, bad UTF-8, nesting past 1,024) or would read differently (an integer beyond 64
    bits, which it makes a float) goes to the standard library, whose answers and messages
    are the service's."""
    if not _has_long_integer(plain):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest.single("structure", "the body is not UTF-8") from None
    except RecursionError:
        raise InvalidRequest.single("too-costly", "the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise InvalidRequest.single("structure", f"the body is not valid JSON: {exc}") from None


def _has_long_integer(plain: bytes) -> bool:
    """A number of 19 digits or more outside a string (`plain`: the body without escaped
    quotes and backslashes, so an even count of quotes before a place means outside)."""
    digits = plain.translate(_DIGITS_AS_ZEROS)
    quotes, counted = 0, 0
    found = digits.find(_LONG_RUN)
    while found >= 0:
        quotes += plain.count(b'"', counted, found)
        counted = found
        if quotes % 2 == 0:
            return True
        end = digits.find(b" ", found)  # past this run of digits, inside a string
        found = digits.find(_LONG_RUN, end) if end >= 0 else -1
    return False


def _reject_lone_surrogates(document: Any) -> None:
    """A `\\uD800`-style escape without its pair decodes to a string no UTF-8 output can hold
    (it made a 500 wherever it was echoed, e.g. an unread type's name in a note): 400 instead."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest.single(
            "structure",
            "the body holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF)",
            _surrogate_path(document, _root_name(document)),
        ) from None


def _root_name(document: Any) -> str:
    """The resource type as the root of an expression, where it is a plain name."""
    name = document.get("resourceType") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name.isascii() and name.isalpha() else "$"


def _surrogate_path(node: Any, path: str) -> str | None:
    """Where the first unpaired surrogate is (a key or a value), as a path from `$`."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        where = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]"
        if isinstance(key, str) and _LONE_SURROGATE.search(key):
            return where
        if isinstance(child, str) and _LONE_SURROGATE.search(child):
            return where
        found = _surrogate_path(child, where)
        if found:
            return found
    return None


def check_entry_count(bundle: dict[str, Any], limits: Limits) -> None:
    entries = bundle.get("entry")
    if isinstance(entries, list) and len(entries) > limits.max_entries:
        raise PayloadTooLarge.single(
            "too-costly",
            f"the Bundle has {len(entries)} entries; the limit is {limits.max_entries}",
            "Bundle.entry",
        )


def _unwrap_parameters(parameters: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    params = parameters.get("parameter")
    envelope = {
        **parameters,
        "parameter": [
            {k: v for k, v in p.items() if k != "resource"} if isinstance(p, dict) else p for p in params
        ]
        if isinstance(params, list)
        else params,
    }
    issues = fhir.validate_resource(envelope, "Parameters")
    if issues:
        raise InvalidResource(issues)
    bundle, as_of = None, None
    for i, param in enumerate(params or []):
        if param.get("name") == "bundle":
            bundle = param.get("resource")
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                raise InvalidRequest.single(
                    "structure",
                    "parameter 'bundle' must hold a Bundle",
                    f"Parameters.parameter[{i}].resource",
                )
        elif param.get("name") == "asOf":
            as_of = param.get("valueDateTime")
            if as_of is None:
                raise InvalidRequest.single(
                    "structure", "parameter 'asOf' needs a valueDateTime", f"Parameters.parameter[{i}]"
                )
    if bundle is None:
        raise InvalidRequest.single(
            "required", "Parameters has no 'bundle' parameter", "Parameters.parameter"
        )
    return bundle, as_of


def _parse_as_of(text: str) -> datetime:
    try:
        as_of = parse_instant(text)
    except ValueError:
        raise InvalidRequest.single("value", f"asOf {text!r} is not a FHIR dateTime", "asOf") from None
    if not within_range(as_of):
        raise InvalidRequest.single("value", f"asOf {text!r} is outside the years {YEARS}", "asOf")
    return as_of
