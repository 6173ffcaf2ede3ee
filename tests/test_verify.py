"""``verify``: conformant bots pass, each classic mistake fails on its interaction with a readable reason."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from harness.conformance.rules import RULES
from harness.verify import Verification, verify
from harness.verify.report import render

from . import connectors, third_party_bot
from .conftest import LoopbackServer
from .fake_broker import PACT as PACT_FILE
from .fake_broker import FakeBroker

SECRET = "verify-secret-123"
ALL_INTERACTIONS = 15


def by_description(result: Verification) -> dict[str, list[str]]:
    """Failed interactions and their reasons."""
    assert result.error is None, result.error
    assert len(result.outcomes) == ALL_INTERACTIONS
    return {o.description: o.reasons for o in result.outcomes if not o.passed}


def run_third_party(secret=None, **faults) -> Verification:
    app = third_party_bot.make_app(secret, frozenset(f for f, on in faults.items() if on))
    with LoopbackServer(app) as server:
        return verify(server.url, secret=secret)


@pytest.mark.parametrize("secret", [None, SECRET], ids=["unsigned", "signed"])
def test_the_reference_bot_passes_every_interaction(make_bot, secret):
    with LoopbackServer(make_bot(IADVIZE_SECRET=secret)) as server:
        result = verify(server.url, secret=secret)
    assert by_description(result) == {}
    assert result.passed


def test_a_third_party_bot_written_independently_passes():
    assert by_description(run_third_party(SECRET)) == {}


def test_a_bot_answering_its_own_echo_fails_on_the_echo_rule():
    failed = by_description(run_third_party(answers_its_echo=True))
    assert list(failed) == ["the echo of a message the bot posted (author operator)"]
    reason = failed["the echo of a message the bot posted (author operator)"][0]
    assert reason.startswith("replies must be exactly [] here, the bot sent [{")
    assert "or the bot answers itself forever" in reason


def test_a_bot_dropping_id_operator_fails_on_every_conversation_message():
    failed = by_description(run_third_party(drops_id_operator=True))
    assert set(failed) == {
        "a conversation is routed to the bot",
        "a conversation is routed to the bot with its history",
        "a visitor sends a file",
        "a visitor taps a quick reply",
        "a visitor's text message",
        "the echo of a message the bot posted (author operator)",
    }
    assert failed["a visitor's text message"][0] == "missing field idOperator"
    assert "idOperator: is required" in failed["a visitor's text message"][-1]  # the wire model agrees


def test_a_bot_with_replies_that_are_not_an_array_fails():
    failed = by_description(run_third_party(replies_not_an_array=True))
    assert failed["a visitor's text message"][0].startswith("replies must be an array, got {")
    assert failed["a conversation is routed to the bot"][0] == 'replies must be an array, got {"list":[]}'


def test_a_bot_checking_rules_the_operator_does_not_have_fails_on_availability():
    failed = by_description(run_third_party(strategy_with_unknown_rule=True))
    assert list(failed) == [
        "availability polling for an operator with distribution rules",
        "availability polling for an operator without distribution rules",
    ]
    assert failed["availability polling for an operator with distribution rules"] == [
        "the body does not fit the API: [0].distributionRulesToCheck: names rules the operator does not have: "
        "not-a-rule-of-this-operator"
    ]


def test_a_bot_crashing_on_a_file_fails_on_that_interaction_only():
    failed = by_description(run_third_party(crashes_on_files=True))
    assert list(failed) == ["a visitor sends a file"]
    assert failed["a visitor sends a file"] == [
        "expected HTTP status 200, the bot answered 500 and said text/html: Internal Server Error"
    ]


def test_a_bot_rejecting_correctly_signed_gets_fails_on_the_gets_and_the_rest_still_runs():
    result = run_third_party(SECRET, signs_get_over_the_body=True)
    failed = by_description(result)
    assert set(failed) == {
        "a request for the bot's scenarios",
        "a visitor opens the chatbox (first messages)",
        "an admin opens an operator",
        "an admin opens an operator the bot does not know",
        "availability polling for an operator with distribution rules",
        "availability polling for an operator without distribution rules",
    }  # every GET
    assert failed["an admin opens an operator the bot does not know"] == [
        'expected HTTP status 404, the bot answered 403 and said {"message": "bad signature"}'
    ]
    # the set-up could not read the scenarios: said on each interaction it concerns, which still ran
    echo = next(o for o in result.outcomes if o.description.startswith("the echo"))
    assert (
        echo.passed
        and len(echo.setup) == 1
        and echo.setup[0].endswith('/external-bots answered 403: {"message": "bad signature"}')
    )


def test_a_bot_without_the_secret_is_told_to_use_one_in_one_line():
    result = run_third_party(secret=None, answers_its_echo=False)
    assert result.passed
    app = third_party_bot.make_app(SECRET)
    with LoopbackServer(app) as server:
        unsigned = verify(server.url, secret=None)
        wrong = verify(server.url, secret="not-the-secret")
    assert not unsigned.passed and unsigned.outcomes == []  # not 14 identical failures
    assert unsigned.error == (
        "the bot refuses unsigned calls (GET /external-bots answered 403): pass --secret or set IADVIZE_SECRET"
    )
    assert wrong.outcomes == [] and wrong.error.startswith(
        "the bot refuses this secret (GET /external-bots answered 403): check --secret or IADVIZE_SECRET"
    )


def test_a_slow_greeting_fails_on_its_2_second_budget():
    failed = by_description(run_third_party(slow_greeting=True))
    assert list(failed) == ["a visitor opens the chatbox (first messages)"]
    assert failed["a visitor opens the chatbox (first messages)"][0] == (
        "the bot did not answer properly: no complete answer within the 2 s iAdvize waits"
    )


def test_an_html_answer_is_reported_as_such():
    failed = by_description(run_third_party(html_errors=True))
    reasons = failed["an admin opens an operator"]
    assert "the bot did not answer properly: the answer is not JSON" in reasons
    assert any("Content-Type must be 'application/json', got 'text/html" in r for r in reasons)


def test_an_unreachable_bot_is_a_clear_error_at_once():
    result = verify("http://127.0.0.1:9", secret=None)
    assert not result.passed and result.outcomes == []
    assert result.error.startswith("cannot reach the bot at http://127.0.0.1:9: connection failed (")


def test_a_hanging_bot_is_given_up_after_two_budgets():
    class Hang(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(15)

        do_PUT = do_POST = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = verify(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
    # what waited out its budget: the preflight's GET /external-bots and POST /conversations; nothing after
    assert [line.split(":")[0] for line in result.given_up] == [
        "the bot stopped answering (2 calls in a row on different endpoints with no complete answer within the budget)"
    ]
    reasons = {o.description: o.reasons for o in result.outcomes}
    assert reasons["a visitor's text message"][0].startswith(
        "the bot did not answer properly: not sent: the bot was given up"
    )
    assert not result.passed and len(result.outcomes) == ALL_INTERACTIONS  # every interaction still tried


# --- the command ----------------------------------------------------------------------------


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_the_command_verifies_the_embedded_bot_signed_and_writes_junit(tmp_path):
    junit = tmp_path / "results.xml"
    result = cli("verify", "--secret", SECRET, "--junit", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{ALL_INTERACTIONS} passed, 0 failed — the embedded reference bot at http://127.")
    assert result.stdout.rstrip().endswith("; requests signed with the given secret")
    assert result.stdout.count("  PASS  ") == ALL_INTERACTIONS
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == str(ALL_INTERACTIONS) and suite.get("failures") == "0"


def test_the_command_fails_with_exit_1_and_junit_failures(tmp_path):
    junit = tmp_path / "results.xml"
    with LoopbackServer(third_party_bot.make_app(None, frozenset({"crashes_on_files"}))) as server:
        result = cli("verify", "--provider-url", server.url, "--junit", str(junit))
    assert result.returncode == 1
    assert "  FAIL  a visitor sends a file\n        - expected HTTP status 200, the bot answered 500" in result.stdout
    failures = ET.parse(junit).getroot().findall(".//failure")
    assert [f.get("message") for f in failures] == [
        "expected HTTP status 200, the bot answered 500 and said text/html: Internal Server Error"
    ]
    assert "reproduce: curl -sS -i -X POST" in failures[0].text


def test_the_command_refuses_bad_arguments_clearly(tmp_path):
    publish = cli("verify", "--publish", "1.0.0")
    assert publish.returncode == 2 and "--publish needs --broker-url" in publish.stderr
    missing = cli("verify", "--provider-url", "http://127.0.0.1:9", "--pacts", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert (
        missing.stderr.strip() == f"error: no pacts at {tmp_path / 'none'}: pass --pacts with a folder, "
        "a pact file or a URL"
    )


# --- pacts from elsewhere -------------------------------------------------------------------


@pytest.mark.parametrize("faults, success", [(frozenset(), True), (frozenset({"crashes_on_files"}), False)])
def test_pacts_from_a_broker_are_verified_and_the_results_published(faults, success):
    with FakeBroker() as broker, LoopbackServer(third_party_bot.make_app(None, faults)) as bot:
        result = verify(bot.url, broker_url=broker.url, publish_version="2.4.1")
    assert result.passed is success and len(result.outcomes) == ALL_INTERACTIONS
    assert [(p["providerApplicationVersion"], p["success"]) for p in broker.published] == [("2.4.1", success)]


def test_a_pact_file_by_url_is_verified(make_bot):
    class PactFile(BaseHTTPRequestHandler):
        def do_GET(self):
            data = PACT_FILE.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), PactFile)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        with LoopbackServer(make_bot()) as bot:
            result = verify(bot.url, pacts=f"http://127.0.0.1:{server.server_port}/pact.json")
    finally:
        server.shutdown()
        server.server_close()
    assert result.passed and len(result.outcomes) == ALL_INTERACTIONS


def test_a_partial_connector_fails_on_its_missing_endpoints_only_and_the_rest_is_verified():
    """No GET /external-bots nor PUT/GET /bots/:id (Express's HTML 404): each interaction is still tried."""
    with connectors.serve(configuration=False, signature="none") as bot:
        result = verify(bot.url)
    failed = by_description(result)
    assert set(failed) == {
        "a request for the bot's scenarios",
        "an admin creates an operator",
        "an admin opens an operator",
        "an admin updates an operator",
        "an admin opens an operator the bot does not know",  # a 404 to every operator says nothing of unknown ones
    }
    assert failed["an admin opens an operator the bot does not know"][0].startswith(
        "the bot cannot open an operator (it could not save one either) (GET "
    )
    assert failed["an admin opens an operator"] == [
        "expected HTTP status 200, the bot answered 404 and said text/html: Error / Cannot GET /bots/ha-1001"
    ]
    text = next(o for o in result.outcomes if o.description == "a visitor's text message")
    assert text.passed and [p.split(" answered")[0].split()[0] for p in text.setup] == ["GET", "PUT"]
    rendered = render(result.outcomes)
    assert rendered.count("Cannot PUT /bots/ha-1001") == 3  # once in the set-up block, once per failing PUT
    assert "<html" not in rendered and "<pre>" not in rendered


def test_replies_on_create_are_a_warning_in_verify_as_in_check():
    with LoopbackServer(third_party_bot.make_app(None, frozenset({"replies_on_create"}))) as server:
        result = verify(server.url)
    assert result.passed  # a warning does not fail the run
    warned = [o for o in result.outcomes if o.warnings]
    assert {o.description for o in warned} == {
        "a conversation is routed to the bot",
        "a conversation is routed to the bot with its history",
    }
    assert warned[0].warnings[0].startswith("1 reply when the conversation starts: [{")
    assert warned[0].warnings[0].endswith(f"(replies-on-create: {RULES['replies-on-create'].why})")
    assert "  WARN  a conversation is routed to the bot\n        - warning: 1 reply " in render(result.outcomes)


def test_an_unknown_operator_answered_200_is_a_warning_the_documentation_does_not_ask_for_a_404():
    with connectors.serve(signature="none", unknown_operator=200) as bot:
        result = verify(bot.url)
    assert result.passed and by_description(result) == {}
    (warned,) = [o for o in result.outcomes if o.warnings]
    assert warned.description == "an admin opens an operator the bot does not know"
    assert warned.warnings[0].startswith("expected HTTP status 404, the bot answered 200")
    assert warned.warnings[0].endswith(
        "(the documentation does not say what GET /bots/:idOperator answers for an "
        "operator the bot never saved; a 404 lets iAdvize tell an unknown operator "
        "from a known one)"
    )
    assert "  WARN  an admin opens an operator the bot does not know\n" in render(result.outcomes)


def test_a_health_check_at_health_passes_with_a_note_and_one_elsewhere_is_found_with_healthcheck_url(tmp_path):
    with connectors.serve(signature="none", health_path="/health") as bot:
        found = verify(bot.url)
    assert found.passed and not any(o.warnings for o in found.outcomes)
    assert found.notes == [
        f"the health check answers at {bot.url}/health, not at /healthcheck: set that URL in the app's settings "
        f"(the developer platform polls the URL set there), and give it with --healthcheck-url {bot.url}/health"
    ]
    with connectors.serve(signature="none", health_path="/ops/ping") as bot:
        missing = verify(bot.url)
        told = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness.cli",
                "verify",
                "--provider-url",
                bot.url,
                "--healthcheck-url",
                "/ops/ping",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert by_description(missing) == {
        "the developer platform checks the bot's health": [
            "expected HTTP status 200, the bot answered 404 and said text/html: Error / Cannot GET /healthcheck"
        ]
    }
    assert told.returncode == 0, told.stdout + told.stderr
    assert "  PASS  the developer platform checks the bot's health\n" in told.stdout and "note:" not in told.stdout


def test_an_error_shown_to_the_visitor_fails_the_interaction_by_checks_rule():
    failed = by_description(run_third_party(shows_its_errors=True))
    assert list(failed) == ["a visitor sends a file"]
    (reason,) = failed["a visitor sends a file"]
    assert reason.startswith("replies[0] shows the visitor a stack frame: at read (/app/files.js:42:17)")
    assert "(error-shown-to-visitor: a visitor must never read a stack trace" in reason


def test_the_reproduce_command_of_a_failing_interaction_gets_the_same_status():
    with LoopbackServer(third_party_bot.make_app(SECRET, frozenset({"crashes_on_files"}))) as server:
        result = verify(server.url, secret=SECRET)
        failing = next(o for o in result.outcomes if not o.passed)
        assert 'sha256=$(printf %s "$signed" | openssl' in failing.reproduce  # signed when it runs
        assert not re.search(r"sha256=[0-9a-f]{64}", failing.reproduce)  # no valid signature to replay
        answer = subprocess.run(["bash", "-c", failing.reproduce], capture_output=True, text=True, timeout=30,
                                env={**os.environ, "IADVIZE_SECRET": SECRET})  # fmt: skip
    assert answer.stdout.splitlines()[0].split()[1] == "500"


# --- the Pact CLI's conventions, against the local broker ---------------------------------------------


def pacts(*kinds: dict) -> list[dict]:
    """The pacts the broker serves: the committed iAdvize pact, once per ``kinds`` entry (pending, wip)."""
    return [{"pact": json.loads(PACT_FILE.read_text(encoding="utf-8")), **kind} for kind in kinds]


def verify_cli(broker: FakeBroker, bot_url: str, *args: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "verify", "--provider-url", bot_url, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PACT_BROKER_BASE_URL": broker.url, **(env or {})},
    )


def test_verify_asks_the_broker_as_told_and_publishes_with_branch_tags_and_build_url(tmp_path):
    # passed as given (pact's Rust client keeps the selector keys it knows: mainBranch, branch, deployed...)
    selectors = '[{"mainBranch": true}, {"deployedOrReleased": true}, {"branch": "feat-x", "consumer": "iadvize"}]'
    results = tmp_path / "results.json"
    with FakeBroker(pacts({})) as broker, LoopbackServer(third_party_bot.make_app(None, frozenset())) as bot:
        done = verify_cli(
            broker,
            bot.url,
            "--consumer-version-selectors",
            selectors,
            "--provider-tags",
            "prod, eu",
            "--build-url",
            "https://ci.example.com/builds/42",
            "--publish",
            "--json",
            str(results),
            env={"PACT_PROVIDER_VERSION": "3f2a9c1", "PACT_PROVIDER_BRANCH": "main"},
        )
    assert done.returncode == 0, done.stdout + done.stderr
    [asked] = broker.received("POST", "/pacts/provider/external-bot/for-verification")
    assert asked == {
        "consumerVersionSelectors": json.loads(selectors),
        "includePendingStatus": False,
        "providerVersionBranch": "main",
        "providerVersionTags": ["prod", "eu"],
    }
    puts = [path for method, path, _ in broker.requests if method == "PUT"]
    assert puts == [
        "/pacticipants/external-bot/branches/main/versions/3f2a9c1",
        "/pacticipants/external-bot/versions/3f2a9c1/tags/prod",
        "/pacticipants/external-bot/versions/3f2a9c1/tags/eu",
    ]
    [published] = broker.published
    assert (published["providerApplicationVersion"], published["success"], published["buildUrl"]) == (
        "3f2a9c1",
        True,
        "https://ci.example.com/builds/42",
    )
    written = json.loads(results.read_text())
    assert written["passed"] is True and written["counts"] == {"pass": ALL_INTERACTIONS, "fail": 0, "pending": 0}
    assert all(i["status"] == "pass" and i["reproduce"].startswith("curl ") for i in written["interactions"])


def test_a_pending_interaction_that_fails_is_reported_pending_and_does_not_fail_the_run(tmp_path):
    results = tmp_path / "results.json"
    crashes = third_party_bot.make_app(None, frozenset({"crashes_on_files"}))
    with FakeBroker(pacts({"pending": True})) as broker, LoopbackServer(crashes) as bot:
        pending = verify_cli(broker, bot.url, "--enable-pending", "--provider-branch", "feat-x", "--json", str(results))
        strict = verify_cli(broker, bot.url, "--provider-branch", "feat-x")  # pending not asked for: it fails
    assert pending.returncode == 0, pending.stdout + pending.stderr
    assert (
        "  PENDING  a visitor sends a file\n        - expected HTTP status 200, the bot answered 500" in pending.stdout
    )
    assert pending.stdout.startswith(f"{ALL_INTERACTIONS - 1} passed, 0 failed, 1 pending (not failing the run) — ")
    [file] = [i for i in json.loads(results.read_text())["interactions"] if i["status"] != "pass"]
    assert (file["description"], file["status"]) == ("a visitor sends a file", "pending")
    assert strict.returncode == 1 and "  FAIL  a visitor sends a file" in strict.stdout
    assert [body["includePendingStatus"] for body in broker.received("POST", "/pacts/provider/")] == [True, False]


def test_work_in_progress_pacts_are_verified_only_when_asked_since_a_date():
    with (
        FakeBroker(pacts({}, {"wip": True})) as broker,
        LoopbackServer(third_party_bot.make_app(None, frozenset())) as bot,
    ):
        with_wip = verify_cli(broker, bot.url, "--include-wip-pacts-since", "2026-11-01", "--provider-branch", "main")
        without = verify_cli(broker, bot.url)
    assert with_wip.returncode == without.returncode == 0
    assert with_wip.stdout.startswith(f"{2 * ALL_INTERACTIONS} passed, 0 failed — {bot.url}\n")
    assert without.stdout.startswith(f"{ALL_INTERACTIONS} passed, 0 failed — {bot.url}\n")
    asked = broker.received("POST", "/pacts/provider/")
    assert asked[0]["includeWipPactsSince"] == "2026-11-01" and "includeWipPactsSince" not in asked[1]


def test_filters_run_one_interaction_or_one_provider_state():
    with LoopbackServer(third_party_bot.make_app(None, frozenset())) as bot:
        one = cli("verify", "--provider-url", bot.url, "--filter-description", "a visitor sends a file")
    assert one.returncode == 0, one.stdout + one.stderr
    assert one.stdout.count("  PASS  ") == 1 and "  PASS  a visitor sends a file" in one.stdout


def test_broker_options_without_a_broker_or_a_version_are_refused_in_one_line():
    for args, said in (
        (["--enable-pending"], "error: --enable-pending needs --broker-url (or PACT_BROKER_BASE_URL)"),
        (["--broker-url", "http://127.0.0.1:9", "--publish"], "error: --publish needs the version to publish as"),
        (["--broker-url", "http://127.0.0.1:9", "--consumer-version-selectors", "{main"], "error: --consumer-version"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", "verify", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("PACT_")},
        )
        assert done.returncode == 2 and done.stderr.startswith(said) and done.stderr.count("\n") == 1, done.stderr


def harness_cli(*args: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PACT_")}, **(env or {})},
    )


def test_a_providers_pipeline_publishes_verifies_asks_can_i_deploy_and_records_the_deployment():
    """The CI recipe of the README, step by step, through the Pact Broker's own client (pact-python-cli)."""
    with FakeBroker(pacts({})) as broker, LoopbackServer(third_party_bot.make_app(None, frozenset())) as bot:
        env = {"PACT_BROKER_BASE_URL": broker.url}
        published = harness_cli(
            "pacts", "publish", "--consumer-version", "2026.12", "--branch", "main", "--tag", "prod", env=env
        )
        too_soon = harness_cli("can-i-deploy", "--version", "3f2a9c1", "--to-environment", "production", env=env)
        verified = harness_cli(
            "verify", "--provider-url", bot.url, "--provider-version", "3f2a9c1", "--publish", env=env
        )
        deployable = harness_cli("can-i-deploy", "--version", "3f2a9c1", "--to-environment", "production", env=env)
        recorded = harness_cli("record-deployment", "--version", "3f2a9c1", "--environment", "production", env=env)
    assert published.returncode == 0, published.stdout + published.stderr
    [contracts] = broker.received("POST", "/contracts/publish")
    assert {k: contracts[k] for k in ("pacticipantName", "pacticipantVersionNumber", "branch", "tags")} == {
        "pacticipantName": "iadvize-platform",
        "pacticipantVersionNumber": "2026.12",
        "branch": "main",
        "tags": ["prod"],
    }
    [pact] = contracts["contracts"]
    content = json.loads(base64.b64decode(pact["content"]))
    shipped = json.loads(PACT_FILE.read_text(encoding="utf-8"))
    assert (pact["consumerName"], pact["providerName"]) == ("iadvize-platform", "external-bot")
    assert [i["description"] for i in content["interactions"]] == [i["description"] for i in shipped["interactions"]]
    assert too_soon.returncode == 1  # no verification result yet: computer says no
    assert verified.returncode == 0 and deployable.returncode == 0, verified.stdout + deployable.stdout
    asked = [path for method, path, _ in broker.requests if method == "GET" and path.startswith("/matrix")]
    assert all("q[][pacticipant]=external-bot&q[][version]=3f2a9c1" in path for path in asked) and len(asked) == 2
    assert all("environment=production" in path for path in asked)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert [p for m, p, _ in broker.requests if m == "POST" and "deployed-versions" in p] == [
        "/pacticipants/external-bot/versions/3f2a9c1/deployed-versions/environment/production"
    ]


def test_the_broker_commands_say_in_one_line_what_is_missing():
    no_broker = harness_cli("can-i-deploy", "--version", "1", "--to-environment", "production")
    no_version = harness_cli("record-deployment", "--environment", "production", "--broker-url", "http://127.0.0.1:9")
    assert (no_broker.returncode, no_broker.stderr) == (
        2,
        "error: no Pact Broker: give --broker-url, or set PACT_BROKER_BASE_URL\n",
    )
    assert (no_version.returncode, no_version.stderr) == (
        2,
        "error: no version of your bot: give --version, or set PACT_PROVIDER_VERSION\n",
    )


def test_exit_first_stops_after_the_first_failing_interaction(tmp_path):
    results = tmp_path / "results.json"
    crashes = third_party_bot.make_app(None, frozenset({"crashes_on_files"}))
    with LoopbackServer(crashes) as bot:
        done = cli("verify", "--provider-url", bot.url, "--exit-first", "--json", str(results))
    assert done.returncode == 1, done.stdout + done.stderr
    ran = json.loads(results.read_text())["interactions"]
    order = [i["description"] for i in json.loads(PACT_FILE.read_text(encoding="utf-8"))["interactions"]]
    failing = order.index("a visitor sends a file")
    assert [i["description"] for i in ran] == order[: failing + 1]  # in the pact's order, up to the failure
    assert [i["status"] for i in ran] == ["pass"] * failing + ["fail"]
    left = len(dict.fromkeys(order)) - failing - 1
    assert f"stopped at the first failure (--exit-first): {left} interactions not run" in done.stdout
