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


def nests_deeper(text: bytes, limit: int) -> bool:
    """Whether the JSON `text` nests more than `limit` levels (a scalar is 0, `[]` is 1).

    Every level opens and closes a bracket or a brace, so a text shorter than two a level, or
    with no more openings than `limit`, cannot: its length settles a small value (an entry's
    `request`), two counts a resource of a chart (~20 openings for a limit of 61) at a third of
    the cost of the exact pass, which runs only on a text with more."""
    if len(text) < 2 * (limit + 1) or text.count(b"{") + text.count(b"[") <= limit:
        return False
    return _exceeds(without_escapes(text), limit)


def _exceeds(plain: bytes, limit: int) -> bool:
    """On the text without its escaped quotes and backslashes (`plain`): only quotes and
    brackets are kept (braces as brackets: valid JSON nests them properly), strings with the
    brackets in them are removed, and each pass that removes the innermost pairs is one level.
    It needs no stack however deep the text is."""
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
