"""The floor for the bot-overhead and concurrent benchmarks: Flask answering the same JSON, doing nothing else."""

from __future__ import annotations

from flask import Flask, jsonify

app = Flask(__name__)
ANSWER = {
    "idConversation": "c",
    "idOperator": "ha-1",
    "createdAt": "2026-11-24T10:00:00.000Z",
    "updatedAt": "2026-11-24T10:00:00.000Z",
    "replies": [{"type": "message", "payload": {"contentType": "text", "value": "What can I do for you?"}}],
}
# What the bot answers an operator of order-assistant (atLeastOne) with two distribution rules.
RULES = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]
AVAILABILITY = [{"strategy": "atLeastOne", "distributionRulesToCheck": RULES}]


@app.post("/conversations/<id_conversation>/messages")
def messages(id_conversation):
    return jsonify(ANSWER)


@app.post("/conversations")
def conversations():  # the untimed start of each conversation, so both sides get the same calls
    return jsonify({**ANSWER, "replies": []})


@app.get("/availability-strategies")
def availability_strategies():  # iAdvize's poll, once a second per operator
    return jsonify(AVAILABILITY)
