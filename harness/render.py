"""Replies and payloads as one readable line each, and tables, for terminals and transcripts."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

from harness.wire.limits import DEFAULT_TRANSFER_TIMEOUT_SECONDS

_UNIT_SHORT = {"millis": "ms", "seconds": "s", "minutes": "min"}


# What a bot's text must not bring to a terminal or an XML file raw: control characters (escape sequences,
# carriage returns), the invisible and bidirectional marks that reorder what is read, lone surrogates (no
# UTF-8 file can hold them) and the noncharacters XML 1.0 refuses (U+FFFE, U+FFFF). Tabs and newlines stay.
# One character class: linear in the text.
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ud800-\udfff\ufeff\ufffe\uffff]"
)


def printable(text: str) -> str:
    """``text`` with what a terminal, XML or UTF-8 cannot show as it is written as an escape (``\\x1b``)."""
    return _UNPRINTABLE.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )


def printable_xml(root) -> None:
    """Every text and attribute of an ElementTree made :func:`printable`: XML 1.0 cannot hold control characters."""
    for element in root.iter():
        element.text = element.text and printable(element.text)
        element.tail = element.tail and printable(element.tail)
        for name, value in element.attrib.items():
            element.set(name, printable(value))


def write_json(document, path) -> None:
    """``document`` as indented JSON in UTF-8: a lone surrogate a bot sent is written as its JSON escape."""
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    Path(path).write_bytes(text.encode("utf-8", "backslashreplace"))


NBSP = "\u00a0"  # joins what must stay on one line when wrapped (an endpoint); a space again once wrapped
_SPACES = re.compile(r"[ \t\r\n]+")  # not str.split(): it splits on NBSP too


def wrap(text: str, width: int, indent: str, first: str = "", split_words: bool = False) -> str:
    """``text`` wrapped to ``width``; words (URLs, ids) are not split unless ``split_words``: a longer one runs
    past the width."""
    return "\n".join(
        line.replace(NBSP, " ")
        for line in textwrap.wrap(
            _SPACES.sub(" ", printable(text)).strip(),  # escaped before it is measured
            max(width, 40),
            initial_indent=first,
            subsequent_indent=indent,
            break_long_words=split_words,
            break_on_hyphens=False,
        )
    )


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for one: ``1 conversation``, ``2 conversations``, ``2 replies``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def duration(value: dict) -> str:
    """A wire Duration in short: ``800 ms``, ``1 s``, ``3 min``."""
    return f"{value['value']} {_UNIT_SHORT.get(value['unit'], value['unit'])}"


def payload(value: dict) -> str:
    """A message payload on one line: its text, or its kind in brackets (``[card]``, ``[offer]``...) and its name."""
    kind = value.get("contentType")
    if kind == "text":
        return str(value.get("value", ""))
    if kind == "card/content":
        return f"[card] {value.get('title') or value.get('text') or ''}".rstrip() + _actions(value)
    if kind == "bundle/card":
        return "[carousel] " + " | ".join(payload(card) for card in value.get("cards", []))
    if kind == "product-offer":
        price = value.get("price", "")
        if value.get("offerPrice"):
            price = f"{value['offerPrice']} instead of {price}"
        return f"[offer] {value.get('name', '')} ({price})" + _actions(value)
    if kind == "bundle/product-offer":
        return "[offers] " + " | ".join(payload(offer) for offer in value.get("offers", []))
    if kind == "file":
        return f"[file] {value.get('fileName', '')} ({value.get('mimeType', '')}) {value.get('url', '')}"
    return f"[{kind}]"


def _actions(value: dict) -> str:
    names = [a.get("name", "") for a in value.get("actions", [])]
    return f" -> {', '.join(names)}" if names else ""


def reply(value: dict) -> str:
    """A reply on one line: a message's payload and quick replies, or what an await, transfer or close does."""
    kind = value.get("type")
    if kind == "message":
        text = payload(value.get("payload", {}))
        quick = value.get("quickReplies") or []
        return text + ("  " + " ".join(f"[{q.get('value')}]" for q in quick) if quick else "")
    if kind == "await":
        return f"(waits {duration(value['duration'])})"
    if kind == "transfer":
        timeout = value.get("transferOptions", {}).get("timeout")
        return (
            f"(transfers to distribution rule {value.get('distributionRule')}, "
            f"timeout {duration(timeout) if timeout else f'{DEFAULT_TRANSFER_TIMEOUT_SECONDS:g} s by default'})"
        )
    if kind == "close":
        return "(closes the conversation)"
    return f"({kind})"


def table(header: tuple[str, ...], rows: list[tuple], width: int | None = None) -> str:
    """Aligned columns under a ruled header, fitted to ``width`` (default: the terminal's).

    Nothing is cut: when the columns do not fit, the widest are narrowed and their cells wrap
    onto more lines.
    """
    width = width or shutil.get_terminal_size((120, 24)).columns
    cells = [
        tuple(" ".join(str(c).split()) for c in header),
        *[tuple(" ".join(str(c).split()) for c in row) for row in rows],
    ]
    kept = [i for i in range(len(header)) if not rows or any(row[i] for row in cells[1:])]  # no empty column
    cells = [tuple(row[i] for i in kept) for row in cells]
    widths = [max(len(row[i]) for row in cells) for i in range(len(kept))]
    # a column is narrowed down to its longest word (an identifier is not split), or MAX_WORD at most
    narrowest = [
        max(len(cells[0][i]), MIN_COLUMN, min(MAX_WORD, max(len(w) for row in cells for w in row[i].split() or [""])))
        for i in range(len(kept))
    ]
    # a column of single words (rule ids, endpoints) is never split; free text may split its long words
    floors = [
        narrowest[i]
        if all(" " not in row[i] and len(row[i]) <= MAX_WORD for row in cells[1:])
        else max(len(cells[0][i]), MIN_COLUMN)
        for i in range(len(kept))
    ]
    for limits in (narrowest, floors):  # first without splitting words, then splitting long ones if need be
        while sum(widths) + 2 * (len(widths) - 1) > width:
            widest = max(range(len(widths)), key=lambda i: (widths[i] > limits[i], narrowest[i] >= MAX_WORD, widths[i]))
            if widths[widest] <= limits[widest]:
                break  # narrower than this cannot be: wrap past the width rather than hide anything
            widths[widest] -= 1
    lines = []
    for index, row in enumerate(cells):
        wrapped = [textwrap.wrap(cell, w, break_on_hyphens=False) or [""] for cell, w in zip(row, widths, strict=True)]
        for n in range(max(map(len, wrapped))):
            lines.append(
                "  ".join(
                    (part[n] if n < len(part) else "").ljust(w) for part, w in zip(wrapped, widths, strict=True)
                ).rstrip()
            )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


MIN_COLUMN = 8  # a column is not narrowed below this (or its header)
MAX_WORD = 26  # words longer than this (hex, JSON without spaces) may be split to fit
