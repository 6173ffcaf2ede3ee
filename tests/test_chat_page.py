"""The chat page, in Debian's Chromium driven by Playwright (its own browser never downloaded: the registries
are all a machine may reach): the reference bot's greeting, a quick reply tapped and its inspector row, a
transfer a human takes and the developer writing as that human, a failed transfer, and a broken bot's findings
shown beside the call that broke the rule. No script error, no dialog, keyboard only."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright import sync_api as playwright

from harness.bots import bot
from harness.chat.app import create_app
from harness.chat.session import ChatSession
from harness.client import BotClient

from . import connectors
from .conftest import LoopbackServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed: `make test` installs it"
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def reference_bot():
    with bot() as url:
        yield url


def opened(browser, session: ChatSession, width: int = 1280):
    """The chat page of ``session`` in a new tab; the page's script errors and dialogs collected."""
    server = LoopbackServer(create_app(session, "the reference bot")).__enter__()
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"script error: {error}"))
    page.on("dialog", lambda dialog: (page.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.goto(server.url)
    page.server = server
    playwright.expect(page.locator("#calls > li").first).to_be_visible()  # the conversation is open: its greeting
    return page


def closed(page) -> None:
    problems = page.problems
    page.close()
    page.server.__exit__(None, None, None)
    assert problems == []


def test_the_greeting_then_a_quick_reply_tapped_gets_its_answer_and_its_inspector_row(browser, reference_bot):
    from harness.conformance.webhooks import Webhooks

    webhooks = Webhooks(f"{reference_bot}/webhooks", None)  # the embedded bot's, as the chat command delivers them
    page = opened(browser, ChatSession(BotClient(reference_bot), scenario="order-assistant", webhooks=webhooks))
    log = page.get_by_role("log")
    playwright.expect(log).to_contain_text("I'm the shop's virtual assistant (a bot).")  # the greeting
    page.get_by_label("Write as the visitor").fill("Hi")
    page.keyboard.press("Enter")  # Enter sends
    playwright.expect(log).to_contain_text("What can I do for you?")
    page.get_by_role("group", name="quick replies").get_by_role("button", name="Track my order").click()
    playwright.expect(log).to_contain_text("What is your order number?")
    # the nudge the bot had scheduled after its menu was cancelled by the visitor's choice, as iAdvize drops it
    playwright.expect(log.locator(".cancelled")).to_contain_text("Are you still there?")
    rows = page.locator("#calls > li")
    tapped = rows.filter(has_text="visitor: POST /conversations/").last  # the quick reply's call
    playwright.expect(tapped).to_contain_text("→ 200")
    tapped.locator("summary").click()
    playwright.expect(tapped.locator("pre").first).to_contain_text('"value": "Track my order"')
    playwright.expect(rows.filter(has_text="echo: POST").last).to_be_visible()  # iAdvize's echo of the answer
    menu = rows.filter(has_text="visitor: POST /conversations/").first  # "Hi": the menu, then a nudge in 3 min
    menu.locator("summary").click()
    playwright.expect(menu.get_by_role("list", name="what became of each reply").locator("li")).to_have_text(
        [
            re.compile(r"^What can I do for you\?.* — shown at [\d.]+ s$"),
            "(waits 3 min) — a wait of 180 s",
            re.compile(r"^Are you still there\?.*— not shown: the visitor wrote first$"),
        ]
    )
    greeting = rows.first.locator("summary")
    playwright.expect(greeting).to_contain_text("greeting: GET /bots/ha-777000/conversation-first-messages → 200")
    playwright.expect(greeting).to_contain_text("/ 2 s")  # against the greeting's own budget
    playwright.expect(page.locator("#calls > li.webhook")).to_have_text(
        ["webhook: v2.conversation.pushed delivered: answered 200"]
    )
    playwright.expect(log.locator(".broken")).to_have_count(0)  # a correct bot: nothing marked in the chat
    page.reload()  # the conversation under way is shown again, not replaced by a new one
    playwright.expect(log).to_contain_text("What is your order number?")
    playwright.expect(page.get_by_label("Write as the visitor")).to_be_focused()
    closed(page)


def test_a_transfer_a_human_takes_then_the_developer_writes_as_the_human(browser, reference_bot):
    page = opened(browser, ChatSession(BotClient(reference_bot), scenario="order-assistant", human_available=True))
    log = page.get_by_role("log")
    visitor = page.get_by_label("Write as the visitor")
    for text, answer in (
        ("I want to talk to a person", "what is your order number?"),
        ("none", "What email address"),
        ("ada@example.com", "a human took the conversation"),
    ):
        visitor.fill(text)
        visitor.press("Enter")
        playwright.expect(log).to_contain_text(answer)
    human = page.get_by_label("Write as the human who took the conversation")
    human.fill("Hello Ada, Sam here.")
    human.press("Enter")
    playwright.expect(log.locator(".human").last).to_contain_text("Hello Ada, Sam here.")
    playwright.expect(page.locator("#calls > li").filter(has_text="human: POST /conversations/")).to_have_count(2)
    closed(page)


def test_a_transfer_nobody_takes_shows_the_bot_s_fallback(browser, reference_bot):
    page = opened(browser, ChatSession(BotClient(reference_bot), scenario="order-assistant", human_available=False))
    log = page.get_by_role("log")
    visitor = page.get_by_label("Write as the visitor")
    for text in ("I want to talk to a person", "none", "ada@example.com"):
        visitor.fill(text)
        visitor.press("Enter")
        playwright.expect(page.locator("#typing")).to_be_hidden()
    playwright.expect(log).to_contain_text("failed, nobody took it")
    playwright.expect(log).to_contain_text("Sorry, nobody from our team is free right now.")
    playwright.expect(page.get_by_label("Write as the human who took the conversation")).to_be_hidden()
    closed(page)


def test_a_broken_bot_s_findings_are_shown_beside_the_call_that_broke_the_rule(browser):
    from . import third_party_bot

    # a bot that answers its own echo (it talks to itself), and one with a message longer than iAdvize shows
    with LoopbackServer(third_party_bot.make_app(None, frozenset({"answers_its_echo"}))) as echoing:
        page = opened(browser, ChatSession(BotClient(echoing.url)), width=900)  # readable at 900 px
        page.get_by_label("Write as the visitor").fill("Hello")
        page.keyboard.press("Enter")
        playwright.expect(page.locator(".marker.broken").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 900  # nothing to scroll sideways to
        echo = page.locator("#calls > li", has_text="echo: POST").first
        playwright.expect(echo).to_contain_text("finding")
        echo.locator("summary").click()
        playwright.expect(echo).to_contain_text("echo-loop (error)")
        # said in the chat too, where the visitor's conversation breaks
        marker = page.get_by_role("log").locator(".marker.broken", has_text="echo-loop").first
        playwright.expect(marker).to_contain_text("the bot's answer to its own message, posted back:")
        closed(page)
    with connectors.serve(answer_text="x" * 500) as long_winded:
        page = opened(browser, ChatSession(BotClient(long_winded.url)), width=900)
        page.get_by_label("Write as the visitor").fill("Hello")
        page.keyboard.press("Enter")
        call = page.locator("#calls > li", has_text="visitor: POST").last
        call.locator("summary").click()
        playwright.expect(call).to_contain_text("message-too-long (error)")
        too_long = page.get_by_role("log").locator(".row.bot.broken")  # the very bubble, marked
        playwright.expect(too_long).to_contain_text("⚠ message-too-long: replies[0] is 500 characters")
        playwright.expect(too_long).to_contain_text("iAdvize cuts a message over 450 characters")
        closed(page)
    with bot() as url:  # the bot's process stops in the middle of the conversation
        page = opened(browser, ChatSession(BotClient(url), scenario="order-assistant"))
        page.get_by_label("Write as the visitor").fill("Hi")
        page.keyboard.press("Enter")
        playwright.expect(page.get_by_role("log")).to_contain_text("What can I do for you?")
    page.get_by_label("Write as the visitor").fill("Track my order")
    page.keyboard.press("Enter")
    down = page.get_by_role("log").locator(".marker.broken", has_text="the visitor's message")
    playwright.expect(down).to_contain_text("⚠ http-error: no answer from the bot")
    closed(page)


def test_a_hostile_bot_s_words_are_shown_as_text_in_the_chat_and_none_of_its_scripts_runs(browser):
    for hostile in ("shaped", True):  # answers iAdvize shows, and answers it cannot use (an await's unit...)
        with connectors.serve(hostile=hostile) as bot_of_theirs:
            page = opened(browser, ChatSession(BotClient(bot_of_theirs.url)))
            console = []
            page.on("console", lambda message, console=console: console.append(message.text))
            page.get_by_label("Write as the visitor").fill("Hello")
            page.keyboard.press("Enter")
            log = page.get_by_role("log")
            if hostile == "shaped":
                playwright.expect(log.locator(".card").first).to_be_visible()
                playwright.expect(log.locator(".bubble").first).to_contain_text(connectors.ATTACK)  # as text
                playwright.expect(log.get_by_text(f"see {connectors.LINK}").first).to_be_visible()  # no link made
            else:  # the visitor sees nothing of it: the chat says why, where it happened
                marker = log.locator(".marker.broken", has_text="the visitor's message")
                playwright.expect(marker).to_contain_text("⚠ payload-shape: replies[3].payload.mimeType")
            for row in page.locator("#calls summary").all():
                row.click()  # every body opened in the inspector too
            # no element of the bot's, no javascript: address followed or loaded, no script of its run
            assert page.locator("#log script, #log [onerror], #log b, #calls script, #calls b").count() == 0
            addresses = page.eval_on_selector_all("[href], [src]", "(all) => all.map((e) => e.href || e.src)")
            assert not [a for a in addresses if a.lower().startswith("javascript:")], addresses
            assert connectors.XSS_RAN not in " ".join(console), console
            closed(page)


def test_the_chat_command_serves_the_page_for_the_embedded_bot_and_says_where():
    import subprocess
    import sys

    import requests

    started = subprocess.Popen([sys.executable, "-m", "harness.cli", "chat", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        first = started.stdout.readline()
        assert first.startswith("open http://127.0.0.1:"), first  # the page to open, first
        assert " to chat with the embedded reference bot at http://127.0.0.1:" in first, first
        page = first.split("open ")[1].split()[0]
        html = requests.get(page, timeout=10)
        assert html.status_code == 200 and "<title>Chat with the reference bot" in html.text
        assert requests.get(f"{page}/static/chat.js", timeout=10).headers["Content-Type"].startswith("text/javascript")
        assert requests.get(f"{page}/static/../app.py", timeout=10).status_code == 404  # only its own assets
        assert requests.post(f"{page}/api/say", json={"text": "Hi"}, timeout=10).status_code == 409  # nothing open
        assert requests.post(f"{page}/api/new", timeout=30).json() == {"ok": True}
        said = requests.post(f"{page}/api/say", json={"text": "Hi"}, timeout=30)
        assert said.json() == {"ok": True}
        events = requests.get(f"{page}/api/events", timeout=10).json()["events"]
        shown = [e["text"] for e in events if e["kind"] == "shown"]  # the reference bot's full scenario
        assert shown[0].startswith("I'm the shop's virtual assistant") and shown[1].startswith("What can I do")
        hooks = [e["text"] for e in events if e["kind"] == "webhook"]  # to the embedded bot's /webhooks
        assert hooks == ["v2.conversation.pushed delivered: answered 200"]
    finally:
        started.terminate()
        started.wait(timeout=30)


def test_a_slow_answer_posted_through_the_local_iadvize_api_is_shown_as_the_bot_s(browser):
    from harness.conformance.iadvize_api import IAdvizeAPI

    with IAdvizeAPI() as api, bot(env=api.reference_bot_settings()) as url:
        page = opened(browser, ChatSession(BotClient(url), scenario="order-assistant", api=api))
        log = page.get_by_role("log")
        visitor = page.get_by_label("Write as the visitor")
        for text in ("Track my order", "123456"):
            visitor.fill(text)
            visitor.press("Enter")
            # the platform waits for what the bot posts after a holding message, as check does
            playwright.expect(page.locator("#typing")).to_be_hidden(timeout=60_000)
        playwright.expect(log).to_contain_text("Let me look order 123456 up")  # the holding message
        posted = log.locator(".row", has_text="bot, through iAdvize's API")
        playwright.expect(posted.first).to_contain_text("Found it: order 123456")
        # the bot's calls to iAdvize's API in the inspector: its login, then its posts, each accepted
        api = page.locator("#calls > li.api")
        playwright.expect(api.first).to_have_text("bot → iAdvize's API: POST /oauth2/token (a login) → 200")
        playwright.expect(api.filter(has_text="POST /graphql: Found it: order 123456")).to_contain_text("→ 200")
        playwright.expect(api.filter(has_text="refused")).to_have_count(0)
        closed(page)


def test_a_session_saved_from_the_page_passes_as_a_script_under_pytest_and_replays_alike(browser, tmp_path):
    import subprocess
    import sys

    from harness.conformance.iadvize_api import IAdvizeAPI
    from harness.traffic.replay import replay

    with IAdvizeAPI() as api, bot(env=api.reference_bot_settings()) as url:
        page = opened(browser, ChatSession(BotClient(url), scenario="order-assistant", api=api))
        visitor = page.get_by_label("Write as the visitor")
        for text, answer in (("Hi", "What can I do"), ("Today's offers", "Want the deal"), ("I want to talk to a "
                             "person", "order number")):  # fmt: skip
            visitor.fill(text)
            visitor.press("Enter")
            playwright.expect(page.get_by_role("log")).to_contain_text(answer)
        (tmp_path / "scripts").mkdir()
        for link, saved in (("Save as a script", tmp_path / "scripts" / "chat.convo.yaml"),
                            ("Save as a recording", tmp_path / "chat.jsonl")):  # fmt: skip
            with page.expect_download() as download:
                page.get_by_role("link", name=link).click()
            download.value.save_as(saved)
        closed(page)
        summary = replay([tmp_path / "chat.jsonl"], url, tmp_path / "results", api=api)
    assert (summary.conversations, summary.differences) == (1, 0)  # the bot answers the recording as it did
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "scripts")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout[-2000:]  # against the embedded bot


def test_operator_settings_apply_to_the_next_conversation_and_the_visitor_sends_a_file(browser, reference_bot):
    import requests

    page = opened(browser, ChatSession(BotClient(reference_bot)))  # the bot's first scenario: hello
    log = page.get_by_role("log")
    playwright.expect(page.get_by_label("Scenario")).to_have_value("hello")
    playwright.expect(page.locator("#secret")).to_have_text(re.compile("^Signature secret: not set, calls are unsig"))
    page.get_by_label("Scenario").select_option("order-assistant")
    page.get_by_label("Language").fill("fr")
    with page.expect_response("**/api/settings"):  # saved before the next conversation opens
        page.get_by_label("Language").press("Tab")  # a change is saved as the field is left
    page.get_by_role("button", name="New conversation").click()
    playwright.expect(log).to_contain_text("Je suis l'assistant virtuel de la boutique")  # the greeting, in French
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # what the bot may fetch: the very bytes chosen
    picker = page.get_by_label("Send a file as the visitor")
    picker.set_input_files({"name": "ticket de caisse.png", "mimeType": "image/png", "buffer": picture})
    playwright.expect(log).to_contain_text("[file] ticket de caisse.png")
    playwright.expect(log).to_contain_text("Merci pour l'envoi !")  # its answer to a file, in French
    sent = page.evaluate("fetch('/api/events').then((r) => r.json())")["events"]
    posted = [e["request"]["message"]["payload"] for e in sent if e["kind"] == "call" and e["purpose"] == "visitor"]
    assert posted[-1]["contentType"] == "file" and posted[-1]["mimeType"] == "image/png"
    assert posted[-1]["fileName"] == "ticket de caisse.png"
    assert requests.get(posted[-1]["url"], timeout=10).content == picture  # served for the bot to fetch
    # a file iAdvize's chatbox does not take is refused in one line, and nothing is sent
    picker.set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"})
    playwright.expect(page.locator("#problem")).to_have_text(
        "a visitor can send GIF, PNG and JPEG images and PDF files, not text/plain"
    )
    playwright.expect(log.locator(".row.visitor")).to_have_count(1)
    closed(page)


def test_offers_drawn_with_picture_price_and_link_and_a_nudge_waits_until_let_pass(browser, reference_bot, tmp_path):
    page = opened(browser, ChatSession(BotClient(reference_bot), scenario="order-assistant"))
    log = page.get_by_role("log")
    visitor = page.get_by_label("Write as the visitor")
    visitor.fill("Hi")
    visitor.press("Enter")
    playwright.expect(log).to_contain_text("What can I do for you?")
    # the nudge the menu schedules 3 minutes later waits; letting the time pass shows it, not cancelled
    playwright.expect(page.locator("#waiting")).to_contain_text("The bot waits 180 s before its next reply")
    page.get_by_role("button", name="Let the 180 s pass").click()
    nudge = log.locator(".row", has_text="Are you still there?")
    playwright.expect(nudge).to_be_visible()
    playwright.expect(nudge).not_to_have_class("row bot cancelled")
    playwright.expect(page.locator("#waiting")).to_be_hidden()
    page.get_by_role("group", name="quick replies").get_by_role("button", name="Today's offers").click()
    shoes = log.locator(".card", has_text="Trail running shoes")
    playwright.expect(shoes).to_be_visible()
    playwright.expect(shoes.locator(".price del")).to_have_text("89.90 €")  # the price, struck by the offer's
    playwright.expect(shoes.locator(".price")).to_contain_text("69.90 €")
    playwright.expect(shoes.locator(".price")).to_contain_text("available")
    playwright.expect(shoes.get_by_role("link", name="See the shoes")).to_have_attribute(
        "href", "https://shop.example.com/p/trail-shoes"
    )
    # offline, the shop's picture does not load: what it was is said instead of a broken icon
    playwright.expect(shoes.locator(".picture.missing")).to_have_text("image not loaded: Trail running shoes")
    playwright.expect(log.locator(".carousel .card")).to_have_count(2)
    echo = page.locator("#calls > li", has_text="echo of “Here are today's offers:”")
    playwright.expect(echo).to_have_count(1)  # each echo row says which message iAdvize posted back
    page.locator("#calls > li", has_text="visitor: POST").last.locator("summary").click()
    screenshot(page, tmp_path)
    closed(page)


def screenshot(page, tmp_path) -> None:
    """The README's picture of the chat, taken here: ``make screenshots`` writes it to docs/."""
    import io
    import os

    from matplotlib.image import imread

    from .conftest import ROOT

    shot = page.screenshot()
    pixels = imread(io.BytesIO(shot))[:, :, :3]
    assert pixels.shape[:2] == (900, 1280)
    ink = (pixels.mean(axis=2) < 0.5).mean(axis=1)  # dark pixels per row: the chat's texts and the inspector's
    assert (ink > 0.005).sum() > 200, "the page is blank or nearly"
    target = ROOT / "docs" / "chat-screenshot.png" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / "chat.png"
    target.write_bytes(shot)


def test_in_real_time_a_long_wait_passes_by_itself(browser, reference_bot):
    session = ChatSession(BotClient(reference_bot), scenario="order-assistant")
    server = LoopbackServer(create_app(session, "the reference bot")).__enter__()
    page = browser.new_page()
    page.clock.install()  # the page's clock, moved by the test: three minutes pass without waiting them
    try:
        page.goto(server.url)
        log = page.get_by_role("log")
        playwright.expect(log).to_contain_text("virtual assistant")  # the conversation is open: its greeting
        page.get_by_label("real time").check()
        page.get_by_label("Write as the visitor").fill("Hi")
        page.keyboard.press("Enter")
        playwright.expect(log).to_contain_text("What can I do for you?")
        # once the page says so, its timer for the wait runs (set in the same step): the page's time moves on
        playwright.expect(page.locator("#waiting")).to_contain_text("(in real time)")
        page.clock.run_for(170_000)
        playwright.expect(log).not_to_contain_text("Are you still there?")  # not before its 3 minutes
        page.clock.run_for(15_000)
        playwright.expect(log).to_contain_text("Are you still there?")
    finally:
        page.close()
        server.__exit__(None, None, None)


def test_in_a_notebook_harness_chat_shows_the_page_in_the_cell_and_the_transcript_is_a_dataframe(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from harness.analysis.report import _kernel_manager

    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import harness\n\nchat = harness.chat(scenario='order-assistant')\nchat"),
            nbformat.v4.new_code_cell(
                "chat.session.new()\nchat.session.say('Hi')\nframe = chat.transcript()\n"
                "print(type(frame).__name__, frame[frame.kind == 'shown'].text.tolist()[-1])\nchat.close()"
            ),
        ]
    )
    with (tmp_path / "kernel.log").open("w+") as log:
        NotebookClient(notebook, timeout=180, kernel_name="python3", kernel_manager_class=_kernel_manager(log),
                       resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    shown = notebook.cells[0].outputs[0]["data"]["text/html"]
    assert shown.startswith('<iframe src="http://127.0.0.1:') and 'title="chat with the bot"' in shown
    printed = notebook.cells[1].outputs[0]["text"]
    assert printed.startswith("DataFrame What can I do for you?"), printed


def test_a_recorded_conversation_opens_and_steps_each_answer_marked_as_recorded_or_not(browser, tmp_path):
    from harness.conformance.iadvize_api import IAdvizeAPI

    with IAdvizeAPI() as api, bot(env=api.reference_bot_settings()) as url:
        recorded = ChatSession(BotClient(url), scenario="order-assistant", api=api)
        recorded.new()
        for text in ("Hi", "Return an item"):
            recorded.say(text)
        path = tmp_path / "chat.jsonl"
        path.write_text(recorded.recording(), encoding="utf-8")
        page = opened(browser, ChatSession(BotClient(url), scenario="order-assistant", api=api))
        page.get_by_label("Open a recording").set_input_files(str(path))
        step = page.get_by_role("button", name="Send the next recorded message")
        for said in ("Hi", "Return an item"):
            step.click()
            playwright.expect(page.locator(".row.visitor").last).to_contain_text(said)
        rows = page.locator("#calls > li", has_text="visitor: POST")
        playwright.expect(rows).to_have_count(2)
        playwright.expect(rows.filter(has_text="as recorded")).to_have_count(2)  # the same bot: the same answers
        playwright.expect(step).to_be_hidden()  # every recorded message sent: nothing more to step
        closed(page)
    with connectors.serve() as other:  # another bot: its answers differ, and the recorded one is shown beside
        page = opened(browser, ChatSession(BotClient(other.url), scenario="order-assistant"))
        page.get_by_label("Open a recording").set_input_files(str(path))
        page.get_by_role("button", name="Send the next recorded message").click()
        row = page.locator("#calls > li", has_text="visitor: POST").last
        playwright.expect(row).to_contain_text("differs from the recording")
        row.locator("summary").click()
        playwright.expect(row).to_contain_text("What can I do for you?")  # what the reference bot answered then
        closed(page)


def test_the_chat_command_opens_a_recorded_conversation_and_says_so_when_it_cannot():
    import subprocess
    import sys

    import requests

    from .conftest import ROOT

    sample = ROOT / "notebooks" / "data" / "sample.jsonl.gz"
    started = subprocess.Popen([sys.executable, "-m", "harness.cli", "chat", "--port", "0", "--recording", str(sample)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        page = started.stdout.readline().split("open ")[1].split()[0]
        assert requests.post(f"{page}/api/step", timeout=60).json() == {"ok": True}
        events = requests.get(f"{page}/api/events", timeout=10).json()["events"]
        assert [e["kind"] for e in events].count("visitor") == 1  # the sample's first visitor message, sent again
    finally:
        started.terminate()
        started.wait(timeout=30)
    missing = subprocess.run([sys.executable, "-m", "harness.cli", "chat", "--port", "0", "--recording", str(sample),
                              "--conversation", "nope"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: no conversation 'nope' in {sample}"


def test_the_chat_works_with_the_keyboard_alone(browser, reference_bot):
    page = opened(browser, ChatSession(BotClient(reference_bot), scenario="order-assistant"))
    log = page.get_by_role("log")
    playwright.expect(log).to_contain_text("virtual assistant")

    def tab_to(predicate: str, key: str = "Tab") -> None:
        for _ in range(20):  # each press moves the focus one control on, in the page's order
            page.keyboard.press(key)
            if page.evaluate(f"(() => {{ const e = document.activeElement; return {predicate}; }})()"):
                return
        raise AssertionError(f"no control reached with {key}: {predicate}")

    tab_to('e.id === "visitor-text"')
    page.keyboard.type("Hi")
    page.keyboard.press("Enter")
    playwright.expect(log).to_contain_text("What can I do for you?")
    tab_to('e.textContent === "Track my order"', "Shift+Tab")  # the quick replies, just before the box
    page.keyboard.press("Enter")
    playwright.expect(log).to_contain_text("What is your order number?")
    closed(page)


def test_serve_reload_follows_the_scenario_files_and_a_file_that_breaks_is_shown_in_the_page(browser, tmp_path):
    import time

    from .conftest import ROOT

    folder = tmp_path / "scenarios"
    folder.mkdir()
    hello = (ROOT / "reference_bot" / "scenarios" / "hello.yaml").read_text(encoding="utf-8")
    (folder / "hello.yaml").write_text(hello, encoding="utf-8")
    with bot(env={"REFERENCE_BOT_SCENARIOS": str(folder), "REFERENCE_BOT_RELOAD_SCENARIOS": "1"}) as url:
        session = ChatSession(BotClient(url))
        edited = hello.replace("Hello! I'm a minimal demo bot", "Hi there! I'm an edited bot")
        assert edited != hello
        (folder / "hello.yaml").write_text(edited, encoding="utf-8")

        def said_after_hi() -> str:
            session.new()
            session.say("Hi")
            return [e["text"] for e in session.events() if e["kind"] == "shown"][-1]

        deadline = time.monotonic() + 30  # the bot looks at its files once a second: wait for the change, no more
        while "edited bot" not in said_after_hi() and time.monotonic() < deadline:
            pass
        assert "Hi there! I'm an edited bot" in said_after_hi()  # the edit followed, no restart
        (folder / "hello.yaml").write_text(edited.replace("start:", "start: nowhere\nstart_:"), encoding="utf-8")
        while session.scenario_problem is None and time.monotonic() < deadline:
            said_after_hi()
        assert session.scenario_problem and "hello.yaml" in session.scenario_problem
        assert "Hi there! I'm an edited bot" in said_after_hi()  # the last good scenarios go on
        page = opened(browser, session)
        playwright.expect(page.locator("#scenario-problem")).to_contain_text("The bot's scenario files do not load")
        playwright.expect(page.locator("#scenario-problem")).to_contain_text("hello.yaml")
        closed(page)


def test_a_signed_chat_says_so_and_a_wrong_secret_is_said_in_the_chat(browser):
    with bot(secret="the-app-secret") as url:
        page = opened(browser, ChatSession(BotClient(url, secret="the-app-secret"), scenario="order-assistant"))
        playwright.expect(page.locator("#secret")).to_have_text(re.compile("^Signature secret: set, every call is"))
        playwright.expect(page.locator("#calls > li").first).to_contain_text(", signed")
        playwright.expect(page.get_by_role("log")).to_contain_text("virtual assistant")  # the bot took it
        closed(page)
        server = LoopbackServer(create_app(ChatSession(BotClient(url, secret="another-secret")))).__enter__()
        page = browser.new_page()
        page.goto(server.url)
        # the operator cannot even be saved: one line says why, where the chat would be
        playwright.expect(page.locator("#problem")).to_contain_text("the bot's answer cannot be used")
        playwright.expect(page.locator("#problem")).to_contain_text("401")
        page.close()
        server.__exit__(None, None, None)


def test_the_operator_s_distribution_rules_are_set_in_the_page_each_available_or_not(browser):
    bikes = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"  # the rule the bot's own configuration transfers to
    with connectors.serve(fixed_rule=bikes) as theirs:
        page = opened(browser, ChatSession(BotClient(theirs.url)))
        log = page.get_by_role("log")
        visitor = page.get_by_label("Write as the visitor")
        visitor.fill("I want a human")
        visitor.press("Enter")
        # not one of the operator's rules: the transfer fails, and the rule that says so marks it
        playwright.expect(log).to_contain_text("not one of the operator's distribution rules")
        playwright.expect(log.locator(".marker.broken")).to_contain_text("⚠ transfer-unknown-rule")
        page.get_by_label("Rule id").fill("not a uuid")
        page.get_by_role("button", name="Add the rule").click()
        playwright.expect(page.locator("#problem")).to_contain_text("a distribution rule's id is a UUID")
        page.get_by_label("Rule id").fill(bikes)
        page.get_by_label("Label", exact=True).fill("Bike workshop")
        page.get_by_role("button", name="Add the rule").click()
        playwright.expect(page.locator("#rule-list li")).to_have_count(2)
        page.get_by_role("button", name="New conversation").click()
        visitor.fill("I want a human")
        visitor.press("Enter")
        playwright.expect(log).to_contain_text("transferring to Bike workshop (30 s)")
        playwright.expect(log).to_contain_text("a human took the conversation")
        with page.expect_response("**/api/settings"):  # saved before the next conversation opens
            page.get_by_label("Bike workshop").uncheck()  # nobody at the workshop now
        page.get_by_role("button", name="New conversation").click()
        visitor.fill("I want a human")
        visitor.press("Enter")
        playwright.expect(log).to_contain_text("to Bike workshop: failed, nobody took it")
        playwright.expect(log).to_contain_text("Sorry, nobody is free right now.")
        closed(page)


def test_what_is_written_while_the_chat_opens_is_sent_once_it_is_open(browser, reference_bot):
    server = LoopbackServer(create_app(ChatSession(BotClient(reference_bot), scenario="order-assistant"))).__enter__()
    page = browser.new_page()
    try:
        page.goto(server.url)
        page.get_by_label("Write as the visitor").fill("Hi")  # at once: the conversation may not be open yet
        page.keyboard.press("Enter")
        log = page.get_by_role("log")
        playwright.expect(log).to_contain_text("What can I do for you?")
        playwright.expect(page.locator("#problem")).to_have_text("")
        assert log.inner_text().index("virtual assistant") < log.inner_text().index("What can I do")
    finally:
        page.close()
        server.__exit__(None, None, None)
