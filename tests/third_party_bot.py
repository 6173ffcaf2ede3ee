"""A small external bot written the way a provider might, sharing no code with reference_bot.

It keeps everything in memory, uses its own conversation ids and a different date form
(offsets and a zone suffix), adds fields iAdvize does not ask for, and checks signatures
its own way. ``faults`` switches on one classic mistake at a time, so the tests can show
that ``verify`` catches each one on the right interaction.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time

from flask import Flask, jsonify, request

FAULTS = {
    "empty_echo",  # an operator-authored message answered 200 with an empty body
    "health_ok_text",  # GET /healthcheck answers the text "ok"
    "answers_its_echo",  # replies to operator-authored messages: talks to itself
    "drops_id_operator",  # leaves idOperator out of the message envelope
    "replies_not_an_array",  # "replies": {...}
    "crashes_on_files",  # 500 on a non-text visitor payload
    "signs_get_over_the_body",  # checks GET signatures over the (empty) body: rejects correct calls
    "slow_greeting",  # takes 3 s for first messages (the budget is 2 s)
    "html_errors",  # answers an HTML page for the operator read
    # for check: one fault per conformance rule
    "errors_on_text",  # 500 on every visitor text
    "card_without_actions",  # a card payload with no actions
    "replies_on_create",  # a greeting as replies of POST /conversations
    "message_600",  # a 600-character message
    "message_300",  # a 300-character message
    "transfer_timeout_3s",  # a transfer timeout under 5 s
    "transfer_timeout_10s",  # a transfer timeout under 15 s
    "transfer_to_unknown_rule",  # a transfer to a rule the operator does not have
    "rules_missing_from_strategy",  # atLeastOne without the rules to check
    "strategy_with_unknown_rule",  # checks a rule the operator does not have
    "greeting_2500ms",  # a greeting after 2.5 s
    "first_answer_11s",  # the first visitor message answered after 11 s
    "messages_without_await",  # two messages in a row
    "ignores_signatures",  # accepts anything, whatever the secret
    "checks_only_get_signatures",  # checks signatures on GETs, not on POSTs
    "shows_its_errors",  # answers a file with the exception it caught, stack frame included
    "crashes_on_malformed_signatures",  # splits the header on "=", decodes the hex, compares buffers: a 500 if
    # there is no "=", a digit is not hex or the length differs (Node's timingSafeEqual throws on unequal lengths)
    "not_idempotent",  # the same idMessage answered differently
}


def timing_safe_equal(a: bytes, b: bytes) -> bool:
    """Node's crypto.timingSafeEqual: it throws when the two buffers differ in length."""
    if len(a) != len(b):
        raise ValueError("Input buffers must have the same byte length")
    return hmac.compare_digest(a, b)


def make_app(secret: str | None = None, faults: frozenset[str] = frozenset()) -> Flask:
    unknown = set(faults) - FAULTS
    if unknown:
        raise ValueError(f"unknown faults: {unknown}")
    app = Flask("third_party_bot")
    operators: dict[str, dict] = {}
    conversations: dict[str, str] = {}  # iAdvize id -> our id
    ids = itertools.count(1)
    slept: list[bool] = []

    def say(text: str, **extra) -> dict:
        return {"type": "message", "payload": {"contentType": "text", "value": text}, **extra}

    def pause() -> dict:
        return {"type": "await", "duration": {"unit": "millis", "value": 800}}

    def stamp() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S+01:00[Europe/Paris]")

    @app.before_request
    def check_signature():
        if (
            not secret
            or request.path == "/healthcheck"
            or "ignores_signatures" in faults
            or ("checks_only_get_signatures" in faults and request.method != "GET")
        ):
            return None
        signed = request.get_data()
        if request.method == "GET" and "signs_get_over_the_body" not in faults:
            signed = request.query_string
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        given = request.headers.get("X-iAdvize-Signature", "")
        if "crashes_on_malformed_signatures" in faults:
            algorithm, digest = given.split("=")  # ValueError: no "=" (Flask answers its HTML 500 page)
            wanted = bytes.fromhex(expected.split("=")[1])
            if algorithm != "sha256" or not timing_safe_equal(bytes.fromhex(digest), wanted):
                return jsonify(message="bad signature"), 403
            return None
        if not hmac.compare_digest(expected, given):
            return jsonify(message="bad signature"), 403
        return None

    @app.get("/external-bots")
    def scenarios():
        return jsonify(
            [{"idBot": "faq-v2", "name": "FAQ", "editorUrl": "https://editor.example.org/faq-v2", "tags": ["demo"]}]
        )

    def operator_view(id_operator: str):
        operator = operators[id_operator]
        return jsonify(
            idOperator=id_operator,
            external={"idBot": operator["idBot"], "editorUrl": "https://editor.example.org/faq-v2"},
            createdAt=operator["created"],
            updatedAt=stamp(),
            variables=[],
        )

    @app.put("/bots/<id_operator>")
    def save(id_operator):
        body = request.get_json()
        operators[id_operator] = {
            "idBot": body["external"]["idBot"],
            "rules": body.get("distributionRules", []),
            "created": operators.get(id_operator, {}).get("created", stamp()),
        }
        return operator_view(id_operator)

    @app.get("/bots/<id_operator>")
    def read(id_operator):
        if "html_errors" in faults:
            return "<html><body>Whoops</body></html>", 200, {"Content-Type": "text/html"}
        if id_operator not in operators:
            return jsonify(message="not found"), 404
        return operator_view(id_operator)

    @app.get("/availability-strategies")
    def availability():
        rules = operators.get(request.args.get("idOperator", ""), {}).get("rules", [])
        if "rules_missing_from_strategy" in faults:
            return jsonify([{"strategy": "atLeastOne"}])
        if "strategy_with_unknown_rule" in faults:
            return jsonify([{"strategy": "all", "distributionRulesToCheck": ["not-a-rule-of-this-operator"]}])
        if rules:
            return jsonify([{"strategy": "all", "distributionRulesToCheck": [r["id"] for r in rules]}])
        return jsonify([{"strategy": "customAvailability", "availability": False}])

    @app.get("/bots/<id_operator>/conversation-first-messages")
    def greeting(id_operator):
        if "slow_greeting" in faults:
            time.sleep(3)
        if "greeting_2500ms" in faults:
            time.sleep(2.5)
        return jsonify(replies=[{"type": "message", "payload": {"contentType": "text", "value": "Hey, I'm a bot."}}])

    def envelope(id_conversation: str, id_operator: str, replies):
        body = {
            "idConversation": id_conversation,
            "idOperator": id_operator,
            "replies": replies,
            "createdAt": stamp(),
            "updatedAt": stamp(),
        }
        if "drops_id_operator" in faults:
            del body["idOperator"]
        if "replies_not_an_array" in faults:
            body["replies"] = {"list": replies}
        return jsonify(body)

    @app.post("/conversations")
    def start():
        body = request.get_json()
        ours = conversations.setdefault(body["idConversation"], f"tp-{next(ids)}")
        return envelope(ours, body["idOperator"], [say("Welcome!")] if "replies_on_create" in faults else [])

    @app.post("/conversations/<id_conversation>/messages")
    def receive(id_conversation):
        if id_conversation not in conversations.values():  # only the ids this bot gave out
            return jsonify(message="unknown conversation"), 404
        body = request.get_json()
        message = body["message"]
        if message["author"]["role"] == "operator" and "answers_its_echo" not in faults:
            if "empty_echo" in faults:
                return "", 200  # what Tock answers an operator-authored message
            return envelope(id_conversation, body["idOperator"], [])
        payload = message["payload"]
        if payload["contentType"] != "text":
            if "crashes_on_files" in faults:
                return "Internal Server Error", 500
            if "shows_its_errors" in faults:
                caught = "TypeError: Cannot read properties of undefined (reading 'url') at read (/app/files.js:42:17)"
                return envelope(id_conversation, body["idOperator"], [say(caught)])
            # an apology that mentions an error: words for the visitor, not the code's
            sorry = "Sorry, an error occurred on our side: I can only read text."
            return envelope(id_conversation, body["idOperator"], [pause(), say(sorry)])
        if "errors_on_text" in faults:
            return "Internal Server Error", 500
        if "first_answer_11s" in faults and not slept:
            slept.append(True)
            time.sleep(11)
        text = payload["value"]
        if "human" in text.lower():
            return envelope(id_conversation, body["idOperator"], handover(body["idOperator"]))
        if "not_idempotent" in faults:
            text = f"{text} (answer {next(ids)})"
        replies = [
            pause(),
            say(
                f"You said: {text}",
                quickReplies=[{"contentType": "text/quick-reply", "value": "Talk to a human", "idQuickReply": "q1"}],
            ),
        ]
        if "card_without_actions" in faults:
            replies += [pause(), {"type": "message", "payload": {"contentType": "card/content", "title": "Hi"}}]
        if "message_600" in faults:
            replies += [pause(), say("x" * 600)]
        if "message_300" in faults:
            replies += [pause(), say("y" * 300)]
        if "messages_without_await" in faults:
            replies += [say("And another thing.")]
        return envelope(id_conversation, body["idOperator"], replies)

    def handover(id_operator: str) -> list[dict]:
        rules = operators.get(id_operator, {}).get("rules") or [{"id": "none"}]
        timeout = 3 if "transfer_timeout_3s" in faults else 10 if "transfer_timeout_10s" in faults else 30
        rule = "00000000-0000-4000-8000-000000000000" if "transfer_to_unknown_rule" in faults else rules[0]["id"]
        return [
            say("Let me find you a colleague."),
            {
                "type": "transfer",
                "distributionRule": rule,
                "transferOptions": {"timeout": {"unit": "seconds", "value": timeout}},
            },
            say("Sorry, nobody is free."),
            {"type": "close"},
        ]

    @app.get("/healthcheck")
    def health():
        if "health_ok_text" in faults:
            return "ok"  # what many connectors answer; the developer platform wants {"status": "UP"}
        return jsonify(status="UP")

    return app
