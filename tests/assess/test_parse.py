"""Parse once, fast (issue 13): orjson reads bodies, with the standard library's answers kept.

What the standard library accepts, the service still accepts with the same values (integers
beyond 64 bits stay integers, NaN stays NaN); what it refuses is refused with its message; and
the nesting limit, now checked on the bytes, counts exactly what a walk of the document counts.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.assess.nesting import nests_deeper, value_nests_deeper, without_escapes
from service.assess.parse import Limits, parse_json
from service.errors import InvalidRequest

LIMITS = Limits()
# Text that is hard for a byte-level look at structure: quotes, backslashes, brackets
TRICKY_TEXT = st.text(alphabet=st.sampled_from(list('ab"\\[]{}:,\u00e9\U0001f600\n')), max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY_TEXT, inner, max_size=4),
    max_leaves=30,
)


def depth(document: Any) -> int:
    """Levels of containers, the root being 1 (the reference the byte check must agree with)."""
    if isinstance(document, dict):
        return 1 + max(map(depth, document.values()), default=0)
    if isinstance(document, list):
        return 1 + max(map(depth, document), default=0)
    return 0


def stdlib(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"))


def refusal(body: bytes) -> str:
    with pytest.raises(InvalidRequest) as raised:
        parse_json(body, LIMITS)
    return raised.value.issues[0].diagnostics


@given(JSON, st.booleans())
def test_every_document_reads_as_the_standard_library_reads_it(document: Any, compact: bool) -> None:
    body = json.dumps(document, ensure_ascii=compact, separators=(",", ":") if compact else None).encode()
    assert parse_json(body, Limits(max_depth=1000)) == stdlib(body)


@given(JSON, st.integers(min_value=0, max_value=12))
def test_the_byte_level_nesting_check_counts_as_a_walk_does(document: Any, limit: int) -> None:
    body = json.dumps(document, ensure_ascii=False).encode()
    exceeds = depth(document) > limit
    assert nests_deeper(without_escapes(body), limit) == value_nests_deeper(body, limit) == exceeds
    result: Any = None
    try:
        result = parse_json(body, Limits(max_depth=limit))
    except InvalidRequest as exc:
        assert "nested more than" in exc.issues[0].diagnostics
        assert depth(document) > limit
    else:
        assert depth(result) <= limit


@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"value": 123456789012345678901234567890}', 123456789012345678901234567890),
        (b'{"value": -9223372036854775809}', -9223372036854775809),
        (b'{"value": 18446744073709551615}', 18446744073709551615),
        (b'{"a": "see 12345678901234567890", "value": 1}', 1),  # a long number in a string
        (
            b'{"a": "12345678901234567890 \\" 12345678901234567890", '
            b'"value": 123456789012345678901234567890}',
            123456789012345678901234567890,
        ),
        (b'{"value": 1e400}', math.inf),
        (b'{"value": 1, "value": 2}', 2),  # duplicate keys: the last, as before
    ],
    ids=[
        "30-digits",
        "below-int64",
        "uint64-max",
        "digits-in-text",
        "text-then-number",
        "overflow",
        "duplicates",
    ],
)
def test_numbers_and_keys_read_as_before(body: bytes, expected: Any) -> None:
    value = parse_json(body, LIMITS)["value"]
    assert value == expected and type(value) is type(expected)


def test_nan_reads_as_before() -> None:
    assert math.isnan(parse_json(b'{"value": NaN}', LIMITS)["value"])


@pytest.mark.parametrize(
    "body",
    [b"\xef\xbb\xbf{}", b"{}\x00", b"[1,]", b'{"a": 1', b"", b'"\x1f"', b"[" * 2000 + b"]" * 2000],
    ids=["bom", "nul-after", "trailing-comma", "truncated", "empty", "control-character", "past-1024-levels"],
)
def test_bad_json_is_refused_with_the_standard_librarys_words(body: bytes) -> None:
    try:
        stdlib(body)
    except RecursionError:
        expected = "the JSON body is nested too deeply"
    except ValueError as exc:
        expected = f"the body is not valid JSON: {exc}"
    else:
        expected = "the JSON body is nested more than 64 levels deep"
    assert refusal(body) == expected


def test_bad_utf8_is_refused_as_before() -> None:
    assert refusal(b'{"a": "\xff"}') == "the body is not UTF-8"


@pytest.mark.parametrize(
    "body, levels",
    [
        (b'{"a": "[[[[[[[[", "b": ["{{{{"]}', 2),
        (b'{"a\\"[": ["\\\\", [{}]]}', 4),
        (b'{"a": {"b": "\\\\\\"[["}}', 2),
        (b'  [ [ ] , { "x" : [ ] } ]  ', 3),
        (b"42", 0),
    ],
)
def test_brackets_in_strings_and_escapes_do_not_count(body: bytes, levels: int) -> None:
    assert depth(parse_json(body, LIMITS)) == levels
    parse_json(body, Limits(max_depth=levels))
    if levels:
        with pytest.raises(InvalidRequest):
            parse_json(body, Limits(max_depth=levels - 1))
