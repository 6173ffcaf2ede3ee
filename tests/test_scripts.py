"""Conversation test scripts: the format, each expectation, check --scripts, and the pytest plugin."""

from __future__ import annotations

import textwrap

import pytest

from harness.client import BotClient
from harness.conformance.probes import Exploration, check
from harness.conformance.reports import table
from harness.conformance.scripts import ScriptError, expectation_problems, load_script, load_scripts

from .conftest import ROOT, LoopbackServer

SHIPPED = ROOT / "reference_bot" / "scripts"


def write(tmp_path, text, name="t.convo.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\n", "steps: a script is a mapping with a non-empty list of steps"),
        ("steps: [{visitor: Hi, expect: {text_contain: Hi}}]\n", "steps[0].expect.text_contain: unknown expectation"),
        ("steps: [{wait: soon}]\n", "steps[0].wait: must be a duration such as 800ms, 5s or 3min, got 'soon'"),
        ("steps: [{visitor: Hi, wait: 1s}]\n", "steps[0]: a step has exactly one of visitor, payload, wait or include"),
        ("steps: [{visitor: Hi, expect: {jsonpath: {'$.[': 1}}}]\n", "steps[0].expect.jsonpath: '$.[' is not JSONPath"),
        ("steps: [{payload: {fileName: a}}]\n", "steps[0].payload: not a payload a visitor can send"),
        ("steps: [{visitor: Hi}]\nscenaro: x\n", "scenaro: unknown key"),
        ("operator: [1]\nsteps: [{visitor: Hi}]\n", "operator: must be a mapping"),
        (
            "operator: {distributionRules: [abc]}\nsteps: [{visitor: Hi}]\n",
            "operator.distributionRules: must be a list",
        ),
        ("steps: [{visitor: Hi, expect: {text_matches: '('}}]\n", "steps[0].expect.text_matches: not a regular expr"),
        ("steps: [{visitor: Hi, expect: {within_ms: '1000'}}]\n", "steps[0].expect.within_ms: must be a number"),
        ("steps: [{visitor: Hi, expect: {quick_replies: 'Yes'}}]\n", "steps[0].expect.quick_replies: must be a list"),
        ("steps: [{visitor: Hi, expect: {close: 'yes'}}]\n", "steps[0].expect.close: must be true or false"),
    ],
)
def test_a_bad_script_is_refused_with_its_place(tmp_path, text, message):
    with pytest.raises(ScriptError) as raised:
        load_script(write(tmp_path, text))
    assert message in str(raised.value) and str(raised.value).startswith(str(tmp_path))


REPLIES = {
    "replies": [
        {
            "type": "message",
            "payload": {"contentType": "text", "value": "Here are our offers:"},
            "quickReplies": [{"contentType": "text/quick-reply", "value": "More"}],
        },
        {"type": "await", "duration": {"unit": "seconds", "value": 1}},
        {"type": "message", "payload": {"contentType": "bundle/card", "cards": [{"title": "A"}, {"title": "B"}]}},
        {
            "type": "transfer",
            "distributionRule": "r1",
            "transferOptions": {"timeout": {"unit": "seconds", "value": 30}},
        },
        {"type": "message", "payload": {"contentType": "text", "value": "Nobody is free"}},
        {"type": "close"},
    ],
    "variables": [{"key": "email", "value": "ada@example.com"}],
}


@pytest.mark.parametrize(
    "expect",
    [
        {"text_equals": "Here are our offers:"},
        {"text_contains": "offers"},
        {"text_matches": r"^Here .+:$"},
        {"quick_replies": ["More"]},
        {"payload_type": "bundle/card"},
        {"cards": 2},
        {"jsonpath": {"$.replies[2].payload.cards[1].title": "B"}},
        {"transfer": {"rule": "r1", "timeout": 30}},
        {"then_on_failure": {"text_contains": "Nobody", "close": True}},
        {"close": True},
        {"await": True},
        {"within_ms": 50},
        {"variables": {"email": "ada@example.com", "order_number": None}},
    ],
    ids=lambda e: next(iter(e)),
)
def test_each_expectation_holds_on_a_matching_answer(expect):
    assert expectation_problems(expect, REPLIES, latency_ms=20) == []


@pytest.mark.parametrize(
    "expect, problem",
    [
        ({"text_equals": "Hi"}, "no message is exactly 'Hi'; the bot said ['Here are our offers:', 'Nobody is free']"),
        ({"text_contains": "refund"}, "no message contains 'refund'"),
        ({"quick_replies": ["Less"]}, "quick replies ['Less'] not offered; offered ['More']"),
        ({"cards": 3}, "no bundle/card of 3 cards; got [2]"),
        ({"offers": 1}, "no bundle/product-offer of 1 offers; got none"),
        (
            {"jsonpath": {"$.replies[2].payload.cards[1].title": "C"}},
            "$.replies[2].payload.cards[1].title is 'B', expected 'C'",
        ),
        ({"transfer": {"rule": "r2"}}, "the transfer goes to 'r1', not 'r2'"),
        ({"transfer": {"timeout": 20}}, "the transfer timeout is 30 s, not 20 s"),
        ({"then_on_failure": {"text_contains": "sorry"}}, "after the transfer: no message contains 'sorry'"),
        ({"close": False}, "expected no close"),
        ({"no_replies": True}, "expected no replies; got 6"),
        ({"within_ms": 10}, "answered in 20 ms, more than 10 ms"),
        ({"variables": {"email": "jo@example.com"}}, "variable email is 'ada@example.com', expected 'jo@example.com'"),
        ({"variables": {"email": None}}, "variable email is held ('ada@example.com'), expected none"),
    ],
    ids=lambda e: next(iter(e)) if isinstance(e, dict) else "",
)
def test_each_expectation_says_what_differs(expect, problem):
    problems = expectation_problems(expect, REPLIES, latency_ms=20)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_a_variables_expectation_on_an_answer_without_variables_says_so():
    problems = expectation_problems({"variables": {"email": "a@b.c"}}, {"replies": []})
    assert problems == ["the answer has no variables [{key, value}] to hold the visitor's data"]


def test_the_shipped_scripts_cover_the_default_scenario():
    scripts = load_scripts(SHIPPED)
    assert len(scripts) >= 5 and {s.scenario for s in scripts} == {"order-assistant"}
    expectations = {key for s in scripts for step in s.steps for key in step.expect}
    assert {"transfer", "then_on_failure", "quick_replies", "jsonpath", "payload_type", "no_replies"} <= expectations
    assert "variables" in expectations and {s.language for s in scripts} == {"en", "fr"}


def test_check_runs_scripts_and_reports_a_failed_one(tmp_path, make_bot):
    write(
        tmp_path,
        """
        name: wrong greeting
        steps:
          - visitor: Hi
            expect: {text_equals: "Good morning"}
    """,
    )
    scripts = load_scripts(tmp_path) + load_scripts(SHIPPED)
    with LoopbackServer(make_bot()) as server:
        report = check(BotClient(server.url), scripts=scripts, exploration=Exploration(1, 1))
    assert [(f.rule, f.message.split(":")[0]) for f in report.findings] == [("script", "wrong greeting")]
    assert "no message is exactly 'Good morning'" in report.findings[0].message
    shipped = len(scripts) - 1
    probed = next(line for line in table(report).splitlines() if line.startswith("probed: "))
    assert f"{len(scripts)} scripts ({shipped} passed, 1 failed), " in probed


def test_then_on_failure_cannot_hold_when_the_transfer_succeeds(tmp_path, make_bot):
    from harness.conformance.scripts import ScriptFailure, run_script

    script = load_script(
        write(
            tmp_path,
            """
        scenario: order-assistant
        operator: {distributionRules: [{id: r-1, label: Customer service}]}
        transfer_available: true
        steps:
          - visitor: "agent please"
          - visitor: "none"
          - visitor: "ada@example.com"
            expect: {then_on_failure: {text_contains: nobody}}
    """,
        )
    )
    with LoopbackServer(make_bot()) as server, pytest.raises(ScriptFailure) as failed:
        run_script(script, BotClient(server.url))
    assert failed.value.problems == [
        "then_on_failure cannot hold: the transfer succeeded (transfer_available: true), so nothing after it runs"
    ]


def test_a_step_whose_answer_shows_the_visitor_an_error_fails_whatever_the_script_expects(tmp_path):
    from harness.conformance.rules import RULES
    from harness.conformance.scripts import ScriptFailure, run_script

    from . import third_party_bot

    script = load_script(
        write(
            tmp_path,
            """
        steps:
          - visitor: "Hi"
          - payload: {contentType: file, fileName: a.png, mimeType: image/png, url: "https://files.example.com/a.png"}
            expect: {text_contains: ""}
    """,
        )
    )
    app = third_party_bot.make_app(None, frozenset({"shows_its_errors"}))
    with LoopbackServer(app) as server, pytest.raises(ScriptFailure) as failed:
        run_script(script, BotClient(server.url))
    assert failed.value.step == 1
    (problem,) = failed.value.problems
    assert problem.startswith("replies[0] shows the visitor a stack frame: at read (/app/files.js:42:17)")
    assert problem.endswith(f"(error-shown-to-visitor: {RULES['error-shown-to-visitor'].why})")


def test_the_pytest_plugin_runs_scripts_and_shows_the_transcript_on_failure(pytester, make_bot):
    pytester.makefile(
        ".convo.yaml",
        good="steps: [{visitor: Hi, expect: {text_contains: minimal demo bot}}]\n",
        bad="name: expects too much\nsteps: [{visitor: Hi, expect: {text_contains: weather}}]\n",
    )
    with LoopbackServer(make_bot()) as server:
        result = pytester.runpytest("--iadvize-url", server.url, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*expects too much: step 1 (visitor: 'Hi'): no message contains 'weather'*", "*transcript:*", "*visitor  Hi*"]
    )


def test_the_pytest_plugin_delivers_the_webhooks_to_the_bot_it_is_told(pytester, make_bot):
    pytester.makefile(
        ".convo.yaml",
        pushed="name: shows its transcript\nsteps: [{visitor: Hi, expect: {text_contains: weather}}]\n",
    )
    with LoopbackServer(make_bot()) as server:
        result = pytester.runpytest(
            "--iadvize-url", server.url, "--iadvize-webhook-url", f"{server.url}/webhooks", "-p", "no:cacheprovider"
        )
    result.assert_outcomes(failed=1)
    # the reference bot's /webhooks answered the pushed event, signed (no secret here: unsigned, taken)
    result.stdout.fnmatch_lines(["*webhook  v2.conversation.pushed delivered: answered 200*"])


def test_a_webhook_url_that_is_not_a_url_is_refused_before_anything_runs(pytester):
    pytester.makefile(".convo.yaml", one="steps: [{visitor: Hi}]\n")
    result = pytester.runpytest("--iadvize-webhook-url", "bot.example.com/hooks", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--iadvize-webhook-url *"])


@pytest.mark.parametrize(
    "secret, said",
    [
        (
            None,
            "the bot refuses unsigned calls (GET /external-bots answered 401): pass --iadvize-secret or set "
            "IADVIZE_SECRET",
        ),
        (
            "wrong",
            "the bot refuses this secret (GET /external-bots answered 401): check --iadvize-secret or IADVIZE_SECRET",
        ),
    ],
)
def test_a_refused_signature_is_one_error_for_the_run(pytester, make_bot, secret, said):
    pytester.makefile(
        ".convo.yaml", one="name: one\nsteps: [{visitor: Hi}]\n", two="name: two\nsteps: [{visitor: Hi}]\n"
    )
    args = ["--iadvize-secret", secret] if secret else []
    with LoopbackServer(make_bot(IADVIZE_SECRET="the-real-secret")) as server:
        result = pytester.runpytest("--iadvize-url", server.url, "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str()
    assert "Traceback" not in output and "harness/" not in output  # no traceback of our code
    assert output.count(said) == 1, output  # said once, not once per script
    result.assert_outcomes()  # no script ran: none failed for a reason of its own


def test_the_fixtures_give_a_platform_for_hand_written_tests(pytester, make_bot):
    pytester.makepyfile("""
        def test_hello(iadvize_platform, reference_bot_url):
            platform = iadvize_platform()
            chat = platform.open_chat()
            platform.start(chat)
            platform.visitor_says(chat, "Hi")
            assert reference_bot_url.startswith("http://127.0.0.1:")
            assert chat.shown[-1].startswith("Hello! I'm a minimal demo bot")
    """)
    with LoopbackServer(make_bot()) as server:
        result = pytester.runpytest("--iadvize-url", server.url, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_readme_lists_every_rule_and_its_script_example_loads(tmp_path):
    import re

    from harness.conformance.rules import RULES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for rule in RULES.values():
        assert f"| `{rule.id}` | {rule.severity} | {rule.why} |" in readme
    example = re.search(r"### Conversation scripts.*?```yaml\n(.*?)```", readme, re.S).group(1)
    script = load_script(write(tmp_path, example))
    assert [s.describe() for s in script.steps] == [
        "visitor: 'Where is my parcel?'",
        'visitor: "It\'s 123456"',
        "visitor: 'I want a human'",
        "wait 240 s",
    ]
    assert script.language == "en" and script.steps[1].expect == {"variables": {"order_number": "123456"}}
