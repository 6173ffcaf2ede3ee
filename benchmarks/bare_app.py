"""The floor for the bot-overhead benchmark: Flask answering the same JSON, doing nothing else."""

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


@app.post("/conversations/<id_conversation>/messages")
def messages(id_conversation):
    return jsonify(ANSWER)


@app.post("/conversations")
def conversations():  # the untimed start of each conversation, so both sides get the same calls
    return jsonify({**ANSWER, "replies": []})
