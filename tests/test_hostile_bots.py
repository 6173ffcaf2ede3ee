"""The harness reads bots it does not trust: a bot that puts markup, scripts and ``javascript:`` links in every
field it answers gets its words shown as text on every page the harness writes (``check --html``, the report of
a recording made through the proxy), opened in headless Chromium: no script of the bot's runs there, no link of
its survives; ``verify`` judges it without breaking."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from harness.client import BotClient, visitor_text

from . import connectors
from .test_notebooks import CHROMIUM_FLAGS

pytestmark = pytest.mark.slow
SECRET = "hostile-secret"


def opened(page, tmp_path) -> str:
    """The page as Chromium built it, its scripts run; fails if one of the bot's scripts ran (it logs XSS-RAN)."""
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is needed: `make test` installs Debian's chromium package"
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if connectors.XSS_RAN in line], console
    return done.stdout


def assert_shown_as_text(dom: str) -> None:
    """No element of the page carries the bot's script (a handler, a script element) or a ``javascript:``
    address; the bot's markup is there as text."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Elements(HTMLParser):
        tag = ""

        def handle_starttag(self, tag, attrs):
            self.tag = tag
            for name, value in attrs:
                value = (value or "").strip().lower()
                if name.startswith("on") and connectors.XSS_RAN.lower() in value:
                    found.append(f"<{tag} {name}=...>")
                if name in ("href", "src", "action", "formaction") and value.startswith("javascript:"):
                    found.append(f"<{tag} {name}={value}>")

        def handle_data(self, data):
            if self.tag == "script" and connectors.XSS_RAN in data:
                found.append("<script> of the bot's")
            if self.tag == "b" and data == "bold":
                found.append("<b>bold</b>: the bot's markup drawn as markup")

    Elements().feed(dom)
    assert found == []
    assert "&lt;img src=x onerror=" in dom  # its words are there, as text


def against_the_hostile_bot(command: str, *options: str) -> subprocess.CompletedProcess:
    """``iadvize-harness COMMAND`` run against the hostile bot: it breaks rules, so exit 1, and nothing it sent
    reaches the terminal as it came (no escape sequence, no bidi mark) nor breaks the command."""
    with connectors.serve(secret=SECRET, hostile=True) as bot:
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", command, "--provider-url", bot.url, "--secret", SECRET, *options],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "\x1b" not in done.stdout and "\u202e" not in done.stdout
    return done


def test_check_html_shows_a_hostile_bot_s_words_as_text(tmp_path):
    against_the_hostile_bot("check", "--html", str(tmp_path / "check.html"), "--junit", str(tmp_path / "check.xml"))
    ET.parse(tmp_path / "check.xml")  # well-formed XML, whatever the bot wrote
    assert_shown_as_text(opened(tmp_path / "check.html", tmp_path))


def test_verify_judges_a_hostile_bot_without_breaking(tmp_path):
    done = against_the_hostile_bot(
        "verify", "--junit", str(tmp_path / "verify.xml"), "--json", str(tmp_path / "verify.json")
    )
    assert " failed — http://127.0.0.1:" in done.stdout.splitlines()[0], done.stdout  # the verdict first
    assert "\\u001b]0;pwned\\u0007" in done.stdout  # the bot's escape sequences shown, escaped, not run
    ET.parse(tmp_path / "verify.xml")
    assert json.loads((tmp_path / "verify.json").read_text(encoding="utf-8"))


def test_a_hostile_bot_recorded_through_the_proxy_replays_and_reports_as_text(tmp_path):
    from harness.analysis.report import build
    from harness.traffic.proxy import RecordingProxy
    from harness.traffic.replay import replay

    with connectors.serve(hostile=True) as bot:
        proxy = RecordingProxy(bot.url, str(tmp_path / "recorded")).start()
        try:
            client = BotClient(proxy.url)
            client.save_bot("ha-1", {"name": "x", "distributionRules": [], "external": {"idBot": "shop"}})
            # called as iAdvize calls them, whatever the bot answers (it does not fit the API)
            client.exchange("first-messages", "GET", "/bots/ha-1/conversation-first-messages", None)
            client.start_conversation("ha-1", "c-hostile")
            for text in ("Hello", "What is this?"):
                client.exchange("messages", "POST", "/conversations/c-hostile/messages", None,
                                body={"idOperator": "ha-1", "message": visitor_text(text)})  # fmt: skip
        finally:
            proxy.close()
        summary = replay([tmp_path / "recorded"], bot.url, tmp_path / "results")
    assert summary.conversations == 1
    page = build(tmp_path / "results", tmp_path / "report.html")
    assert_shown_as_text(opened(page, tmp_path))
