"""A Bundle body read entry by entry, so that what is not read is never decoded (contract §2).

A real chart holds thousands of resources no rule reads, and building each one's Python objects
costs more than all the rest of an assessment. msgspec finds every entry's resource as raw
bytes without building it; a resource of a type the service reads is decoded whole when
`Relevance` reads it (and always for a Patient), and every other one only as far as the
one-subject check, the reference index and the notes look (its header: type, id, subject
and the codes relevance decides by). An entry's `request`, `search` and `response`, which the
service ignores (contract §2), are not decoded either. Each raw value is held to the nesting
limit by itself, so that no byte of the body escapes it.

msgspec reads every JSON value it accepts exactly as the standard library does (numbers of any
size, duplicate keys, escapes) and refuses what the standard library reads leniently (NaN, a
BOM, an unpaired surrogate, a number past a float's range): a body it refuses, a body that is
not UTF-8 or nests past the limit, that has a member the structs below do not name or entries
sharing a fullUrl, gets None, and the caller parses it whole, so its answer and its errors are
those of the full parse.
"""

from __future__ import annotations

from typing import Any

import msgspec

from service.assess.fhir import READ_TYPES
from service.assess.nesting import value_nests_deeper
from service.assess.relevance import Relevance

_UNSET = msgspec.UNSET


class _Header(msgspec.Struct):
    """What is read of a resource that is not decoded whole (other members are skipped). The
    members relevance decides by stay raw bytes: resources alike in them (a chart's hundreds of
    vital signs) are decided once a request. `meta` is not read: bdl-7 looks at its versionId
    only for entries that share a fullUrl, and such a body is parsed whole."""

    resourceType: Any = _UNSET  # noqa: N815 (FHIR's names)
    id: Any = _UNSET
    subject: msgspec.Raw | msgspec.UnsetType = _UNSET
    code: msgspec.Raw | msgspec.UnsetType = _UNSET
    component: msgspec.Raw | msgspec.UnsetType = _UNSET
    medicationCodeableConcept: msgspec.Raw | msgspec.UnsetType = _UNSET  # noqa: N815


_DECIDED_BY = ("subject", "code", "component", "medicationCodeableConcept")
# why a resource is not read (None: it is) and the members it was decided by, decoded
_Decision = tuple[str | None, dict[str, Any]]


_Value = msgspec.Raw | msgspec.UnsetType


class _Entry(msgspec.Struct, forbid_unknown_fields=True):
    """The BundleEntry members of R4 that bundles use; any other member (R4's `link`, `id`,
    `extension`, all rare, or one R4 does not define) sends the body to the full parse."""

    fullUrl: Any = _UNSET  # noqa: N815
    resource: _Value = _UNSET
    request: _Value = _UNSET
    search: _Value = _UNSET
    response: _Value = _UNSET


class _Bundle(msgspec.Struct, forbid_unknown_fields=True):
    """R4's Bundle members, found with the entries in one pass; any other member (or a body of
    another type, such as Parameters) sends the body to the full parse."""

    resourceType: _Value = _UNSET  # noqa: N815
    id: _Value = _UNSET
    meta: _Value = _UNSET
    implicitRules: _Value = _UNSET  # noqa: N815
    language: _Value = _UNSET
    identifier: _Value = _UNSET
    type: _Value = _UNSET
    timestamp: _Value = _UNSET
    total: _Value = _UNSET
    link: _Value = _UNSET
    entry: list[_Entry] | msgspec.UnsetType = _UNSET
    signature: _Value = _UNSET


_BUNDLE = msgspec.json.Decoder(_Bundle)
_BUNDLE_MEMBERS = tuple(name for name in _Bundle.__struct_fields__ if name != "entry")
_HEADER = msgspec.json.Decoder(_Header)
_ENTRY_LEVEL = 3  # the body, its entry array and the entry: an entry's members nest below


def skim_bundle(
    body: bytes, relevance: Relevance, max_depth: int
) -> tuple[dict[str, Any], dict[int, str]] | None:
    """The Bundle, with only the resources that are read decoded whole, and the entries not read
    (index -> why, as `Relevance.why_unread`); None when the body must be parsed whole. The
    caller has ruled out surrogate escapes, which msgspec refuses when unpaired."""
    if not _utf8(body) or max_depth < _ENTRY_LEVEL:
        return None
    unread: dict[int, str] = {}
    try:
        parsed = _BUNDLE.decode(body)
        rtype, entries = parsed.resourceType, parsed.entry
        if rtype is _UNSET or bytes(rtype) != b'"Bundle"' or entries is _UNSET:
            return None
        bundle = {
            name: _decoded(raw, max_depth - 1)
            for name in _BUNDLE_MEMBERS
            if (raw := getattr(parsed, name)) is not _UNSET
        }
        bundle["entry"] = _entries(entries, relevance, max_depth - _ENTRY_LEVEL, unread)
    except (msgspec.DecodeError, RecursionError, _ParseWhole):  # a ValidationError is a DecodeError
        return None
    return bundle, unread


def _utf8(body: bytes) -> bool:
    """msgspec skips the strings of what it does not decode without checking their bytes."""
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _entries(
    found: list[_Entry], relevance: Relevance, limit: int, unread: dict[int, str]
) -> list[dict[str, Any]]:
    """`limit`: the levels an entry's members may nest."""
    decided: dict[tuple[Any, ...], _Decision] = {}
    entries = [_entry(i, entry, relevance, limit, unread, decided) for i, entry in enumerate(found)]
    full_urls = [entry["fullUrl"] for entry in entries if "fullUrl" in entry]
    if not all(type(url) is str for url in full_urls) or len(set(full_urls)) != len(full_urls):
        raise _ParseWhole  # bdl-7 tells such entries apart by the meta that is not skimmed
    return entries


class _ParseWhole(Exception):
    """The body is one skimming does not read as the full parse would."""


def _within(raw: msgspec.Raw, limit: int) -> bytes:
    """A raw value's bytes, if it nests no deeper than `limit` (else the full parse rejects the body)."""
    text = bytes(raw)
    if value_nests_deeper(text, limit):
        raise _ParseWhole
    return text


def _decoded(raw: msgspec.Raw, limit: int) -> Any:
    return msgspec.json.decode(_within(raw, limit))


def _entry(
    index: int,
    entry: _Entry,
    relevance: Relevance,
    limit: int,
    unread: dict[int, str],
    decided: dict[tuple[Any, ...], _Decision],
) -> dict[str, Any]:
    """The entry as the full parse makes it, less the members the service ignores, its resource
    decoded whole or as a header."""
    for ignored in (entry.request, entry.search, entry.response):  # held to the limit, then left out
        if ignored is not _UNSET:
            _within(ignored, limit)
    made = {} if entry.fullUrl is _UNSET else {"fullUrl": entry.fullUrl}
    if entry.resource is _UNSET:
        return made
    raw = _within(entry.resource, limit)
    header = _HEADER.decode(raw)
    rtype = header.resourceType
    subject, code, component, medication = (
        header.subject,
        header.code,
        header.component,
        header.medicationCodeableConcept,
    )
    raws = (  # as _DECIDED_BY, spelt out: this runs for every entry of a chart
        None if subject is _UNSET else bytes(subject),
        None if code is _UNSET else bytes(code),
        None if component is _UNSET else bytes(component),
        None if medication is _UNSET else bytes(medication),
    )
    key = (rtype, *raws) if type(rtype) is str else None  # anything else is not hashable, or rare
    decision = decided.get(key) if key else None
    if decision is None:
        decision = _decision(rtype, raws, relevance)
        if key:
            decided[key] = decision
    why, members = decision
    if why is None and type(rtype) is str and rtype in READ_TYPES:
        made["resource"] = msgspec.json.decode(raw)
        return made
    if why is not None:
        unread[index] = why
    resource = dict(members)
    if header.id is not _UNSET:
        resource["id"] = header.id
    made["resource"] = resource
    return made


def _decision(rtype: Any, raws: tuple[bytes | None, ...], relevance: Relevance) -> _Decision:
    members: dict[str, Any] = {} if rtype is _UNSET else {"resourceType": rtype}
    members.update(
        (name, msgspec.json.decode(r)) for name, r in zip(_DECIDED_BY, raws, strict=True) if r is not None
    )
    return relevance.why_unread(members), members
