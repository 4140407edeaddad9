"""Repairs for valid-but-hostile JSON that would otherwise poison a whole page.

JavaScript backends truncate strings in the middle of an emoji and ``JSON.stringify``
then escapes the half it kept as a lone surrogate (``"\\ud83d"``). That is valid JSON
syntax, but no UTF-8 decoder accepts it, msgspec included. A single such title makes its
whole page undecodable, and the page comes back identical on every retry, so the
integration would be stuck for good. ``repair_lone_surrogates`` replaces each lone
surrogate escape with U+FFFD (``"\\ufffd"``), the standard stand-in for a broken
character, and leaves every other byte alone. It runs only after the fast decode has
failed, so the hot path pays nothing.
"""

from __future__ import annotations

import re

_HIGH = rb"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
# An escape is real only after an even number of backslashes (``\\\\ud800`` is text). Left
# to right, a high surrogate takes the low one that follows it: a low one matched on
# its own is therefore lone.
_SURROGATES = re.compile(rb"(?<!\\)((?:\\\\)*)(?:(" + _HIGH + rb")(" + _LOW + rb")?|(" + _LOW + rb"))")
REPLACEMENT = rb"\ufffd"


def _fix(match: re.Match[bytes]) -> bytes:
    if match.group(2) is not None and match.group(3) is not None:
        return match.group(0)  # a valid pair
    return match.group(1) + REPLACEMENT


def repair_lone_surrogates(body: bytes) -> bytes:
    """``body`` with every unpaired ``\\uD800``-``\\uDFFF`` escape replaced by ``\\ufffd``."""
    if b"\\u" not in body:
        return body
    return _SURROGATES.sub(_fix, body)
