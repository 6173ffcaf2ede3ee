"""Replies and payloads as one readable line each, and tables, for terminals and transcripts."""

from __future__ import annotations

_UNIT_SHORT = {"millis": "ms", "seconds": "s", "minutes": "min"}


def duration(value: dict) -> str:
    return f"{value['value']} {_UNIT_SHORT.get(value['unit'], value['unit'])}"


def payload(value: dict) -> str:
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
    kind = value.get("type")
    if kind == "message":
        text = payload(value.get("payload", {}))
        quick = value.get("quickReplies") or []
        return text + ("  " + " ".join(f"[{q.get('value')}]" for q in quick) if quick else "")
    if kind == "await":
        return f"(waits {duration(value['duration'])})"
    if kind == "transfer":
        timeout = value.get("transferOptions", {}).get("timeout")
        return (f"(transfers to distribution rule {value.get('distributionRule')}, "
                f"timeout {duration(timeout) if timeout else '60 s by default'})")
    if kind == "close":
        return "(closes the conversation)"
    return f"({kind})"


def table(header: tuple[str, ...], rows: list[tuple], widest: int = 48) -> str:
    """Aligned columns under a ruled header; cells longer than ``widest`` are cut."""
    cells = [tuple(map(str, header)), *[tuple(map(str, row)) for row in rows]]
    widths = [min(max(len(row[i]) for row in cells), widest) for i in range(len(header))]
    lines = ["  ".join(cell[:w].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
