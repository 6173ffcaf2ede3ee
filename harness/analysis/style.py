"""How the charts tell outcomes apart: a colour each (Paul Tol's bright palette, safe for colour blindness)
and a hatch each, so a chart printed in grey still reads. Every chart of the report draws outcomes this way."""

from __future__ import annotations

STYLES = {  # outcome -> (colour, hatch); the outcomes are defined in harness.analysis.kpis.OUTCOMES
    "resolved": ("#228833", ""),
    "closed by bot": ("#4477AA", "//"),
    "escalated": ("#66CCEE", ".."),
    "transfer failed": ("#EE6677", "xx"),
    "abandoned": ("#CCBB44", "--"),
    "not understood": ("#AA3377", "oo"),
    "unresolved": ("#BBBBBB", "\\\\"),
}
CHOICE = "#555555"  # a quick reply's node in the flow chart


def outcome(name: str) -> dict:
    """The bar style of an outcome (``color``, ``hatch``, ``edgecolor``); an unknown one light grey, unhatched."""
    colour, hatch = STYLES.get(name, ("#DDDDDD", ""))
    return {"color": colour, "hatch": hatch, "edgecolor": "black"}


def setup() -> None:
    """matplotlib as the report draws: a bot's or a visitor's text is drawn as written, ``$`` signs and all,
    never read as mathtext (``$\\frac$`` in a bot message once stopped the report)."""
    import matplotlib

    matplotlib.rcParams["text.parse_math"] = False
