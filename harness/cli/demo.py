"""``make demo``: the reference bot on a real server, driven through one whole conversation.

Every call goes over HTTP, signed, as iAdvize makes it: an admin sets the bot up, the
platform polls availability, a visitor opens the chat, talks, taps quick replies and asks
for a person; every message the bot posts is echoed back to it, as iAdvize does. The bot's
slow answer comes through the local iAdvize API (OAuth, GraphQL) the bot is pointed at. Then
the same bot is verified against the iAdvize pacts, checked by the simulated platform, the
committed sample of recorded conversations is replayed against it, and the notebooks are
turned into report.html.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

from harness import render, resources, wire
from harness.analysis.report import ReportError, build
from harness.bots import BotProcessError, bot
from harness.client import BotClient, BotError, echo_of, visitor_text
from harness.conformance.iadvize_api import IAdvizeAPI
from harness.conformance.phrasings import looks_like_holding
from harness.conformance.platform import PROACTIVE_WAIT_SECONDS
from harness.conformance.probes import check
from harness.conformance.reports import table
from harness.conformance.webhooks import Webhooks
from harness.traffic.replay import replay
from harness.verify import VerifyError, verify
from harness.verify.report import render as render_outcomes

OPERATOR = "ha-4242"
RULES = [
    {"id": "8c7e2b0e-6f1a-4d55-9a43-2f1b7c1d0a01", "label": "Customer service"},
    {"id": "f3b9d2a4-1c6e-4b8f-8d2a-5e7c9a0b1c02", "label": "Returns desk"},
]
VISITOR_SAYS = ["Hi", "Track my order", "123456", "invoice", "Actually, can I talk to a person?", "ada@example.com"]
WIDTH = 100


class Printer:
    """The demo's transcript: who said what, wrapped to the width, under section titles."""

    def __init__(self, out=sys.stdout):
        self.out = out

    def line(self, who: str, text: str) -> None:
        """One speaker's line, continued under itself when it wraps."""
        wrapped = textwrap.wrap(text, WIDTH - 12) or [""]
        print(f"{who:<10}  {wrapped[0]}", file=self.out)
        for rest in wrapped[1:]:
            print(f"{'':<10}  {rest}", file=self.out)

    def title(self, text: str) -> None:
        """A section title: a rule of dashes across the width."""
        print((f"\n--- {text} " + "-" * max(0, WIDTH - len(text) - 5)).rstrip(), file=self.out)


SAMPLE = resources.sample()


def run(out=sys.stdout, limit: int | None = None, report_path: str = "report.html") -> int:
    """The demo, start to end; 0 when the bot passed verify and check, 1 otherwise."""
    show = Printer(out)
    secret = secrets.token_hex(16)
    try:
        # the embedded reference bot, checking signatures, posting its slow answers through the local API
        with IAdvizeAPI() as api, bot(secret=secret, env=api.reference_bot_settings()) as url:
            show.title(f"reference bot on {url} (gunicorn, 2 workers, signatures checked)")
            show.line("iAdvize", f"its API for the bot to call (OAuth, GraphQL) runs at {api.url}")
            converse(BotClient(url, secret=secret), show, unsigned=BotClient(url), api=api)
            show.title("iadvize-harness verify: the bot against the iAdvize pacts (shipped with the harness)")
            verification = verify(url, secret=secret)
            print(verification.error or render_outcomes(verification.outcomes), file=out)
            show.title("iadvize-harness check: probe conversations through the simulated platform")
            report = check(BotClient(url, secret=secret), secret, api=api, webhooks=Webhooks(f"{url}/webhooks", secret))
            print(table(report, bot=f"the embedded reference bot at {url}"), file=out)
            show.title(f"iadvize-harness replay: the shipped sample ({SAMPLE.name}) against the bot")
            results = Path(tempfile.mkdtemp(prefix="demo-results-"))
            print(replay([SAMPLE], url, results, secret=secret, limit=limit, api=api), file=out)
        show.title("iadvize-harness report: the notebooks, executed, as one HTML page")
        page = build(results, Path(report_path))
    except (BotProcessError, BotError, VerifyError, ReportError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    print(f"report written to {page.resolve()} (open it in a browser)", file=out)
    return 0 if verification.passed and not report.errors else 1


def converse(
    client: BotClient, show: Printer, unsigned: BotClient | None = None, api: IAdvizeAPI | None = None
) -> None:
    """One whole conversation as iAdvize has it with the bot: set-up, greeting, messages, echoes.

    With ``api``, what the bot posts through iAdvize's API after a holding message is shown too.
    """
    show.title("an admin creates the bot in iAdvize")
    scenarios = client.external_bots()
    show.line("iAdvize", "GET /external-bots: " + ", ".join(f"{s['idBot']} ({s['name']})" for s in scenarios))
    saved = client.save_bot(
        OPERATOR,
        {
            "name": "Shop assistant",
            "pseudo": "Ada",
            "language": "en",
            "distributionRules": RULES,
            "external": {"idBot": "order-assistant"},
        },
    )
    show.line(
        "iAdvize",
        f"PUT /bots/{OPERATOR}: operator saved with scenario {saved['external']['idBot']} "
        f"and rules {', '.join(r['label'] for r in RULES)}",
    )
    strategies = client.availability_strategies(OPERATOR)
    show.line("iAdvize", f"GET /availability-strategies (polled every second): {strategies}")
    if unsigned is not None:
        refused = unsigned.exchange("external-bots", "GET", "/external-bots", None)
        show.line("attacker", f"the same call unsigned is refused: {refused.status} {refused.body}")

    show.title("a visitor opens the chat")
    for reply in client.first_messages(OPERATOR)["replies"]:
        show.line("bot", render.reply(reply))
    id_conversation = str(uuid.uuid4())
    started = client.start_conversation(OPERATOR, id_conversation)
    show.line(
        "iAdvize",
        f"POST /conversations: conversation {started['idConversation']} started, replies {started['replies']}",
    )

    held: dict = {}
    for text in VISITOR_SAYS:
        show.title(f"the visitor writes {text!r}")
        show.line("visitor", text)
        if api is not None:  # from now on the bot may post through the API
            api.open(id_conversation, OPERATOR).visitor_wrote = True
        answer = client.send_message(id_conversation, OPERATOR, visitor_text(text))
        for reply, condition in conditional(answer["replies"]):
            show.line("bot", render.reply(_named_rule(reply)) + condition)
        if (now_held := wire.variables_of(answer)) and now_held != held:
            held = now_held
            show.line("iAdvize", "the bot's answer holds " + ", ".join(f"{k}={v}" for k, v in held.items()))
        posted = shown_at_once(answer["replies"])
        if api is not None and posted and looks_like_holding(posted[-1]["payload"].get("value", "")):
            for later in api.take(id_conversation, wait=PROACTIVE_WAIT_SECONDS):
                show.line("bot", f"{render.reply(later)}  (posted later through iAdvize's GraphQL API)")
                posted.append(later)
        echoed = [client.send_message(id_conversation, OPERATOR, echo_of(r))["replies"] for r in posted]
        if posted:
            shown = render.count(len(posted), "message")
            show.line("iAdvize", f"posts the {shown} it showed back to the bot (author operator)")
            show.line("bot", f"{' '.join(map(str, echoed))}  (the echo rule: no reply to its own messages)")
    show.title("done: the visitor waits for 'Customer service', 30 s at most")


def conditional(replies: list[dict]) -> list[tuple[dict, str]]:
    """Each reply with when it shows, if not at once: after a long await (the visitor's next message cancels
    it, as in this demo), after a transfer (only if it fails)."""
    said, condition = [], ""
    for reply in replies:
        said.append((reply, condition))
        if reply["type"] == "await" and wire.seconds(reply["duration"]) >= 60 and not condition:
            condition = "  (only if the visitor stays silent: their next message cancels it)"
        elif reply["type"] == "transfer":
            condition = "  (only if the transfer fails)"
    return said


def shown_at_once(replies: list[dict]) -> list[dict]:
    """The messages iAdvize shows before the visitor's next message in this demo.

    It stops at a long await (the visitor writes before it ends, which cancels the rest)
    and at a transfer (what follows depends on whether a human takes the conversation).
    """
    shown = []
    for reply in replies:
        if reply["type"] == "transfer" or (reply["type"] == "await" and wire.seconds(reply["duration"]) >= 60):
            break
        if reply["type"] == "message":
            shown.append(reply)
    return shown


def _named_rule(reply: dict) -> dict:
    # Show which of the operator's rules the scenario's transfer resolved to.
    if reply["type"] == "transfer":
        label = next((r["label"] for r in RULES if r["id"] == reply["distributionRule"]), "?")
        return {**reply, "distributionRule": f"{label!r} ({reply['distributionRule']})"}
    return reply
