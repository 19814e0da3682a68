"""How deep a JSON text nests, found with bytes methods (the nesting limit of contract §1).

Walking the parsed document costs three times more, and a skimmed body has no parsed document
for most of its bytes: the check works on the text of the whole body or of any value in it.
"""

from __future__ import annotations

import re

_ESCAPED_QUOTE_OR_BACKSLASH = re.compile(rb'\\["\\]')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_STRING = re.compile(rb'"[^"]*"')


def without_escapes(text: bytes) -> bytes:
    """The text without escaped quotes and backslashes: its structure, found by bytes methods."""
    return _ESCAPED_QUOTE_OR_BACKSLASH.sub(b"", text) if b"\\" in text else text


def value_nests_deeper(text: bytes, limit: int) -> bool:
    """Whether the JSON `text` (escapes and all) nests more than `limit` levels, settled without
    the exact pass where it can be: for the many values of a skimmed body. Every level opens and
    closes a bracket or a brace, so a text shorter than two bytes a level, or with no more
    openings than `limit`, cannot: its length settles a small value (an entry's `request`), two
    counts a resource of a chart (~20 openings for a limit of 61), at a third of the exact
    pass's cost. A whole body is not worth the counts: it has thousands of openings."""
    if len(text) < 2 * (limit + 1) or text.count(b"{") + text.count(b"[") <= limit:
        return False
    return nests_deeper(without_escapes(text), limit)


def nests_deeper(plain: bytes, limit: int) -> bool:
    """Whether a JSON text nests more than `limit` levels (a scalar is 0, `[]` is 1), given
    without its escaped quotes and backslashes (`plain`, from `without_escapes`): only quotes
    and brackets are kept (braces as brackets: valid JSON nests them properly), strings with
    the brackets in them are removed, and each pass that removes the innermost pairs is one
    level. It needs no stack however deep the text is."""
    text = plain.translate(_BRACES_AS_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in text:  # removing adjacent quotes keeps the others in or out of strings
        text = _STRING.sub(b"", text)
    depth = 0
    while text:
        depth += 1
        inner = text.replace(b"[]", b"")
        if depth > limit or len(inner) == len(text):
            return True
        text = inner
    return False
