"""iAdvize's webhooks, delivered by the simulated platform: ``v2.conversation.pushed`` and ``.closed``.

As the documentation describes them (spec, "Corrections and additions", Webhooks): an HTTP ``POST`` of a
JSON body, with ``x-iadvize-delivery`` and ``x-iadvize-correlationid`` (UUIDs) and, with a secret,
``x-iadvize-signature`` (HMAC-SHA256 of the raw body). iAdvize expects a 2xx; otherwise it retries
twice, 10 s and then 20 s later: here in simulated time, so a retry costs nothing but the call.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import requests

from harness.client import utc_iso
from harness.conformance.iadvize_api import chatbot_id_of
from harness.wire import signature

RETRY_AFTER_SECONDS = (10.0, 20.0)  # after the first delivery, then after the first retry
TIMEOUT_SECONDS = 10.0


@dataclass
class Delivery:
    """One try of one event: when (simulated seconds after the first), and what came back."""

    event: str
    after: float
    status: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


class Webhooks:
    """Delivers the conversation events to ``url``, signed with ``secret`` when there is one."""

    def __init__(self, url: str, secret: str | None = None, session: requests.Session | None = None):
        self.url, self.secret = url, secret
        self.session = session or requests.Session()

    def deliver(self, event_type: str, id_conversation: str, id_operator: str) -> list[Delivery]:
        """The event, tried until a 2xx or three times in all; every try, in order."""
        now = utc_iso()
        number = chatbot_id_of(id_operator)
        body = {
            "eventId": str(uuid.uuid4()),
            "eventType": event_type,
            "platform": id_operator.split("-", 1)[0] if "-" in id_operator else "ha",
            "projectId": 1,
            "clientId": 1,
            "conversationId": id_conversation,
            "operatorIds": [number] if number is not None else [],
            "visitorExternalId": None,
            "channel": "CHAT",
            "visitorId": str(uuid.uuid4()),
            "createdAt": now,
            "sentAt": now,
        }
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "x-iadvize-correlationid": str(uuid.uuid4())}
        if self.secret:
            headers["x-iadvize-signature"] = signature.sign(self.secret, data)
        tries, after = [], 0.0
        for wait in (0.0, *RETRY_AFTER_SECONDS):
            after += wait
            try:
                answer = self.session.post(
                    self.url, data=data, headers={**headers, "x-iadvize-delivery": str(uuid.uuid4())},
                    timeout=TIMEOUT_SECONDS,
                )  # fmt: skip
                tries.append(Delivery(event_type, after, answer.status_code))
            except requests.RequestException as problem:
                tries.append(Delivery(event_type, after, None, f"no answer ({type(problem).__name__})"))
            if tries[-1].ok:
                break
        return tries
