"""The forms the public documentation allows that our first reading did not (spec, "Corrections and additions").

Operator ids without the ``ha-`` prefix (``local-22``, a bare number), offsite message and conversation
ids (``abc-123456789``), ``conversation-first-messages`` without ``idWebsite``, quick replies without
``idQuickReply``: the reference bot serves them, and the harness takes them from a bot without a finding.
"""

from __future__ import annotations

import pytest

from harness import wire
from harness.client import BotClient
from harness.conformance.probes import Exploration, check

from .conftest import post_message, save_operator, texts, visitor

OFFSITE_ID = "abc-123456789"


@pytest.mark.parametrize("id_operator", ["local-22", "456678", "sd-77"])
def test_the_reference_bot_serves_an_operator_whatever_the_form_of_its_id(client, id_operator):
    assert save_operator(client, id_operator)["idOperator"] == id_operator
    assert client.get(f"/bots/{id_operator}").get_json()["idOperator"] == id_operator
    greeting = client.get(f"/bots/{id_operator}/conversation-first-messages?idConnectorVersion=v1")  # no idWebsite
    assert greeting.status_code == 200 and texts(greeting.get_json()["replies"])
    started = client.post(
        "/conversations", json={"idOperator": id_operator, "idConversation": OFFSITE_ID, "history": []}
    )
    assert started.status_code == 200
    answer = post_message(client, OFFSITE_ID, visitor("menu", id_message=OFFSITE_ID), id_operator)
    assert answer.status_code == 200 and answer.get_json()["idOperator"] == id_operator
    again = post_message(client, OFFSITE_ID, visitor("menu", id_message=OFFSITE_ID), id_operator)
    assert again.get_json()["replies"] == answer.get_json()["replies"]  # the same id, the same answer


def test_a_quick_reply_without_id_fits_the_wire_model_and_an_old_text_one_is_a_problem_not_a_crash():
    reply = {
        "type": "message",
        "payload": {"contentType": "text", "value": "Pick one"},
        "quickReplies": [{"contentType": "text/quick-reply", "value": "Yes"}],
    }
    assert wire.reply_problems(reply) == []
    old = {**reply, "quickReplies": [{"contentType": "text", "value": "Yes"}]}  # as in the old examples
    problems = wire.reply_problems(old)
    assert problems and all("contentType" in p.field for p in problems)


def test_check_converses_as_an_operator_of_another_form_with_no_finding(live_bot_url):
    report = check(BotClient(live_bot_url), exploration=Exploration(depth=1, conversations=2, id_operator="local-22"))
    assert report.stopped is None and report.findings == [], [f.as_dict() for f in report.findings]
    assert {c.operator for c in report.conversations} == {"local-22"}


@pytest.fixture(scope="module")
def live_bot_url():
    from harness.bots import bot

    with bot() as url:
        yield url
