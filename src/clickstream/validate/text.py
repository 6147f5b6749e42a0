"""Free text as the validated rows hold it, and the caps that bound what the parsers read.

**Control characters.** Every control character in a free-text column (page URL, path, referrer and title, UTM
values, product id, name and category, transaction id, client session id, user id, user agent) is replaced by one
space: C0 (U+0000..U+001F, tab, CR and LF included), DEL (U+007F) and C1 (U+0080..U+009F). A lone UTF-16 surrogate,
which JSON can carry escaped (``"\\ud800"``) but UTF-8 cannot encode, becomes U+FFFD; ``reader`` repairs those as
it decodes a record, so the rest of the step only ever sees valid Unicode. Each replacement is one character for
one, so lengths (and the schema's size limits) are unchanged. The JSON columns (``items``, ``properties``) keep
their values exactly, control characters escaped as JSON escapes them.

The Python judge (``clean_text``) and the DuckDB engine (the ``clean_text`` SQL macro, ``CLEAN_TEXT_MACRO``)
apply the same rule to the same values, before anything is derived from them.

**Caps.** A page URL or referrer longer than ``URL_CAP`` characters (once its secrets and e-mail addresses are
removed) and a User-Agent longer than ``USER_AGENT_CAP`` UTF-8 bytes are truncated before anything parses them,
never refused; the row records the length it had before the cut in its ``properties`` under ``TRUNCATED_KEY``
(``{"page_url": 5321, "user_agent": 16384}``).
"""

from __future__ import annotations

import re
from typing import Any

URL_CAP = 2048  # characters of a page URL or referrer kept (and parsed)
# The longest URL the engine leaves to no one but itself: e-mail scrubbing can lengthen a text by at most a seventh
# (the shortest address, a@b.cc, becomes the seven characters of [email]), so a URL this long is never cut.
URL_UNCUT = URL_CAP * 6 // 7
USER_AGENT_CAP = 512  # UTF-8 bytes of a User-Agent kept (and parsed)
TRUNCATED_KEY = "_truncated"  # in ``properties``: {column: length before truncation}

CONTROL_CLASS = r"\x00-\x1f\x7f-\x9f"
_CONTROL_OR_SURROGATE = re.compile(f"[{CONTROL_CLASS}\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON text that may decode to a lone surrogate (an escaped one; a valid pair decodes to one character)
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# DuckDB (RE2 reads \xHH as the code point U+00HH): the same replacement, for the engine's rows.
CLEAN_TEXT_MACRO = (
    f"CREATE OR REPLACE MACRO clean_text(x) AS regexp_replace(x, '[{CONTROL_CLASS}]', ' ', 'g');"
)


def _replace(match: re.Match[str]) -> str:
    return " " if match.group() < "\ud800" else "\ufffd"


def clean_text(value: str | None) -> str | None:
    """``value`` with each control character replaced by a space and each lone surrogate by U+FFFD."""
    if not value or _CONTROL_OR_SURROGATE.search(value) is None:
        return value
    return _CONTROL_OR_SURROGATE.sub(_replace, value)


def cap_chars(value: str, cap: int = URL_CAP) -> tuple[str, int | None]:
    """``(value cut to cap characters, its length before)``, the length None when nothing was cut."""
    if len(value) <= cap:
        return value, None
    return value[:cap], len(value)


def cap_utf8(value: str, cap: int = USER_AGENT_CAP) -> tuple[str, int | None]:
    """``(value cut to at most cap UTF-8 bytes on a character boundary, its byte length before)``."""
    if len(value) <= cap // 4:  # fast path: no character takes more than 4 bytes
        return value, None
    data = value.encode("utf-8")
    if len(data) <= cap:
        return value, None
    return data[:cap].decode("utf-8", errors="ignore"), len(data)


def repair_surrogates(value: Any) -> Any:
    """A decoded JSON value with every lone surrogate in its strings (keys too) replaced by U+FFFD.

    Iterative, so a document nested as deeply as the JSON decoder allows is repaired without recursion."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            items = list(node.items())
            node.clear()
            for key, child in items:
                if isinstance(child, str):
                    child = _SURROGATE.sub("\ufffd", child)
                elif isinstance(child, dict | list):
                    stack.append(child)
                node[_SURROGATE.sub("\ufffd", key)] = child
        elif isinstance(node, list):
            for i, child in enumerate(node):
                if isinstance(child, str):
                    node[i] = _SURROGATE.sub("\ufffd", child)
                elif isinstance(child, dict | list):
                    stack.append(child)
    return value
