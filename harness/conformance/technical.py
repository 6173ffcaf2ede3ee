"""What in a text shown to a visitor betrays a technical error: a stack trace, an exception, a server
path, a network error code, a value the code never filled in.

Bot texts are foreign: every pattern has bounded repeats and no nested unbounded ones, and only the
first ``SCANNED_CHARS`` characters of a text are read (iAdvize shows at most the first 450 of a
message), so a huge answer costs a bounded scan. An apology that only mentions an error ("Sorry, an
error occurred on our side", "Error: please type the 6 digits") is no sign: what is looked for is
what only code writes.
"""

from __future__ import annotations

import re

SCANNED_CHARS = 4000

SIGNS = (
    ("a Python traceback", re.compile(r"Traceback \(most recent call last\)|File \"[^\"\n]{1,300}\", line \d{1,7}")),
    (
        "a stack frame",
        re.compile(
            r"\bat [^\s()]{1,200} \([^\s()]{1,300}:\d{1,7}:\d{1,7}\)"  # Node: at f (/app/x.js:1:2)
            r"|\bat [^\s()]{1,300}\.(?:js|mjs|cjs|ts):\d{1,7}:\d{1,7}"  # Node: at /app/x.js:1:2
            r"|\bat [\w$.]{1,300}\([\w$]{1,100}\.(?:java|kt):\d{1,7}\)"  # JVM: at a.b.C.f(C.java:12)
        ),
    ),
    # TypeError, NullPointerException: a capitalised name ending so (a bare "Error:" may be the bot's own words)
    ("an exception", re.compile(r"\b(?:[A-Z][a-z0-9]{1,30}){1,5}(?:Error|Exception)\b")),
    (
        "a server path",
        re.compile(
            r"(?<![\w.:/~-])/(?:home|usr|var|srv|opt|app|tmp|root|Users|workspace)/[\w./-]{1,200}"
            r"|\bnode_modules[/\\]|\bsite-packages[/\\]|\b[A-Z]:\\[\w.\\-]{1,100}"
        ),
    ),
    (
        "a network error code",
        re.compile(r"\b(?:ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE)\b"),
    ),
    ("a value the code never filled in", re.compile(r"\[object Object\]|\bundefined\b|\bNaN\b|^\s*null\s*$")),
)


def technical_error(text: str) -> tuple[str, str] | None:
    """What kind of technical error the text shows and the words that show it, or None."""
    scanned = text[:SCANNED_CHARS]
    for kind, pattern in SIGNS:
        found = pattern.search(scanned)
        if found:
            return kind, found.group(0)
    return None
