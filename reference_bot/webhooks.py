"""``POST /webhooks``: the events iAdvize delivers, signed like its calls (the signature check runs first).

``v2.conversation.closed`` ends the conversation: its proactive messages not sent yet are dropped and
the bot stays quiet in it; the connector API has no other way to learn of a close. Other events are
acknowledged and logged. iAdvize expects a 2xx, and retries twice (10 s, then 20 s later) otherwise.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify

from .errors import ApiError, json_body
from .runtime import now, runtime

log = logging.getLogger(__name__)
blueprint = Blueprint("webhooks", __name__)


@blueprint.post("/webhooks")
def receive():
    """Acknowledge one event; a closed conversation is ended first."""
    event = json_body("webhook.request")
    kind, id_conversation = event.get("eventType"), event.get("conversationId")
    if kind == "v2.conversation.closed":
        if not isinstance(id_conversation, str) or not id_conversation:
            raise ApiError(400, "bad event", "v2.conversation.closed needs its conversationId")
        store = runtime().store
        with store.transaction() as tx:
            dropped = store.close_conversation(tx, id_conversation, now())
        log.info("conversation closed", extra={"idConversation": id_conversation, "dropped": dropped})
    else:
        log.info("webhook event %s", kind, extra={"idConversation": id_conversation})
    return jsonify(received=event.get("eventId"))
