"""The iAdvize external-bot wire model: every JSON shape of the connector API, once.

The shapes are written as JSON Schema (draft 2020-12) fragments in ``DEFINITIONS`` and
assembled into one schema per request and response body in ``BODIES``. Everything else
derives from here: the files under ``contracts/schemas/``, the reference bot's input
validation and the harness's validation of what a bot answers.

Two principles, both from the spec: extra fields are always tolerated (connectors in
the wild add ``variables``, iAdvize adds ``operator``), and platform *rules* (450
characters, 5-60 s transfer timeouts) are not shapes: they are checked elsewhere, so a
too-long message still parses and can be reported precisely.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Every date-time form seen on the wire: with or without fraction, with ``Z`` or an
# offset (``+02:00`` or ``+0200``), or none, and Java's ``[Etc/UTC]`` zone suffix.
DATE_TIME_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
    r"(Z|[+-]\d{2}(:?\d{2})?)?(\[[A-Za-z0-9_+\-/]+\])?$"
)

PAYLOAD_TYPES = ("text", "card/content", "bundle/card", "product-offer", "bundle/product-offer", "file")
REPLY_TYPES = ("await", "message", "transfer", "close")
AUTHOR_ROLES = ("visitor", "operator")
DURATION_UNITS = ("millis", "seconds", "minutes")
STRATEGIES = ("atLeastOne", "all", "notAvailable", "customAvailability")
FILE_MIME_TYPES = ("image/gif", "image/png", "image/jpeg", "application/pdf")


def utc_iso(moment: datetime | float | None = None) -> str:
    """An instant (a datetime, unix seconds, or now) as iAdvize writes it: UTC, milliseconds, ``Z``."""
    if moment is None:
        moment = datetime.now(UTC)
    elif isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def _object(required: tuple[str, ...] = (), **properties: dict) -> dict:
    """An object with these properties; unknown extra properties are allowed."""
    schema: dict = {"type": "object"}
    if required:  # before the properties: a missing field is among the first problems found, and told
        schema["required"] = list(required)
    schema["properties"] = properties
    return schema


def _when(field: str, value: str, then: dict) -> dict:
    """``if field == value then ...``: keeps validation errors pointed at the real field."""
    return {"if": {"properties": {field: {"const": value}}, "required": [field]}, "then": then}


_STRING = {"type": "string"}
_NON_EMPTY = {"type": "string", "minLength": 1}

DEFINITIONS: dict[str, dict] = {
    "DateTime": {"type": "string", "pattern": DATE_TIME_PATTERN},
    "Duration": _object(
        ("unit", "value"),
        unit={"enum": list(DURATION_UNITS)},
        # No documented maximum; a billion of any unit is beyond any real wait, and keeps arithmetic sane.
        value={"type": "integer", "minimum": 0, "maximum": 1_000_000_000},
    ),
    "LinkAction": _object(
        ("type", "name", "url"),
        type={"const": "LINK"},
        name=_STRING,
        url=_NON_EMPTY,
    ),
    "Image": _object(("url", "description"), url=_NON_EMPTY, description=_STRING),
    # Fields of each payload type, keyed by its contentType; `Payload` dispatches on it.
    "TextPayload": _object(("value",), value=_STRING),
    "CardPayload": _object(
        ("actions",),
        title=_STRING,
        text=_STRING,
        image=_ref("Image"),
        actions={"type": "array", "items": _ref("LinkAction"), "minItems": 1},
    ),
    "CardBundlePayload": _object(
        ("cards",),
        cards={
            "type": "array",
            "minItems": 1,
            "items": {"allOf": [_ref("CardPayload"), _object(contentType={"const": "card/content"})]},
        },
    ),
    "ProductOfferPayload": _object(
        ("name", "price", "actions"),
        name=_STRING,
        price=_STRING,
        offerPrice=_STRING,
        description=_STRING,
        image=_ref("Image"),
        availability=_object(("status",), status={"enum": ["AVAILABLE", "UNAVAILABLE"]}),
        actions={"type": "array", "items": _ref("LinkAction"), "minItems": 1},
    ),
    "ProductOfferBundlePayload": _object(
        ("offers",),
        offers={
            "type": "array",
            "minItems": 1,
            "items": {"allOf": [_ref("ProductOfferPayload"), _object(contentType={"const": "product-offer"})]},
        },
    ),
    "FilePayload": _object(
        ("fileName", "mimeType", "url"),
        fileName=_NON_EMPTY,
        mimeType={"enum": list(FILE_MIME_TYPES)},
        url=_NON_EMPTY,
    ),
    # A payload as a bot may send it: a known contentType must carry that type's fields;
    # replies (ReplyPayload) also refuse unknown content types.
    "Payload": {
        **_object(("contentType",), contentType=_NON_EMPTY),
        "allOf": [
            _when("contentType", "text", _ref("TextPayload")),
            _when("contentType", "card/content", _ref("CardPayload")),
            _when("contentType", "bundle/card", _ref("CardBundlePayload")),
            _when("contentType", "product-offer", _ref("ProductOfferPayload")),
            _when("contentType", "bundle/product-offer", _ref("ProductOfferBundlePayload")),
            _when("contentType", "file", _ref("FilePayload")),
        ],
    },
    "ReplyPayload": {"allOf": [_ref("Payload"), _object(contentType={"enum": list(PAYLOAD_TYPES)})]},
    # A payload as iAdvize posts it to the bot. Visitors send text, but also files of any
    # MIME type and content types not listed here: a bot must take them, not refuse them.
    "MessagePayload": {
        **_object(("contentType",), contentType=_NON_EMPTY),
        "allOf": [_when("contentType", "text", _ref("TextPayload"))],
    },
    "QuickReply": _object(
        ("contentType", "value"),
        contentType={"const": "text/quick-reply"},
        value=_NON_EMPTY,
        idQuickReply=_STRING,
    ),
    "AwaitReply": _object(("duration",), duration=_ref("Duration")),
    "MessageReply": _object(
        ("payload",),
        payload=_ref("ReplyPayload"),
        quickReplies={"type": "array", "items": _ref("QuickReply")},
    ),
    "TransferReply": _object(
        ("distributionRule",),
        distributionRule=_NON_EMPTY,
        transferOptions=_object(timeout=_ref("Duration")),
    ),
    "Reply": {
        **_object(("type",), type={"enum": list(REPLY_TYPES)}),
        "allOf": [
            _when("type", "await", _ref("AwaitReply")),
            _when("type", "message", _ref("MessageReply")),
            _when("type", "transfer", _ref("TransferReply")),
        ],
    },
    "Replies": {"type": "array", "items": _ref("Reply")},
    "Message": _object(
        ("idMessage", "author", "payload", "createdAt"),
        idMessage=_NON_EMPTY,
        author=_object(("role",), role={"enum": list(AUTHOR_ROLES)}),
        payload=_ref("MessagePayload"),
        createdAt=_ref("DateTime"),
    ),
    "DistributionRule": _object(("id", "label"), id=_NON_EMPTY, label=_STRING),
    "Scenario": _object(
        ("idBot", "name", "editorUrl"),
        idBot=_NON_EMPTY,
        name=_STRING,
        description=_STRING,
        editorUrl=_NON_EMPTY,
    ),
    "Strategy": {
        **_object(
            ("strategy",),
            strategy={"enum": list(STRATEGIES)},
            distributionRulesToCheck={"type": "array", "items": _NON_EMPTY},
            availability={"type": "boolean"},
        ),
        "allOf": [
            _when("strategy", "atLeastOne", {"required": ["distributionRulesToCheck"]}),
            _when("strategy", "all", {"required": ["distributionRulesToCheck"]}),
            _when("strategy", "customAvailability", {"required": ["availability"]}),
        ],
    },
    "ConversationEnvelope": _object(
        ("idConversation", "idOperator", "replies", "createdAt", "updatedAt"),
        idConversation=_NON_EMPTY,
        idOperator=_NON_EMPTY,
        replies=_ref("Replies"),
        # optional: the visitor data the bot holds (prequalification), as iAdvize's API once documented it
        variables={"type": "array", "items": _object(("key", "value"), key=_NON_EMPTY, value=_STRING)},
        createdAt=_ref("DateTime"),
        updatedAt=_ref("DateTime"),
    ),
}

# One schema per request and response body of the seven endpoints, plus the error body
# the reference bot (and any bot we would recommend) answers with.
BODIES: dict[str, tuple[str, dict]] = {
    "external-bots.response": (
        "GET /external-bots: the scenarios an admin can pick",
        {"type": "array", "items": _ref("Scenario")},
    ),
    "bot.request": (
        "PUT /bots/:idOperator: an operator created or updated by an admin",
        _object(
            ("external",),
            name=_STRING,
            pseudo=_STRING,
            language={"type": "string", "pattern": "^[a-zA-Z]{2}$"},
            distributionRules={"type": "array", "items": _ref("DistributionRule")},
            external=_object(("idBot",), idBot=_NON_EMPTY),
        ),
    ),
    "bot.response": (
        "PUT and GET /bots/:idOperator: the operator as the connector knows it",
        _object(
            ("idOperator", "external", "createdAt", "updatedAt"),
            idOperator=_NON_EMPTY,
            external=_object(
                ("idBot", "editorUrl"),
                idBot=_NON_EMPTY,
                name=_STRING,
                description=_STRING,
                editorUrl=_NON_EMPTY,
            ),
            distributionRules={"type": "array", "items": _ref("DistributionRule")},
            createdAt=_ref("DateTime"),
            updatedAt=_ref("DateTime"),
        ),
    ),
    "availability-strategies.response": (
        "GET /availability-strategies?idOperator=…: when the bot may be offered to visitors",
        {"type": "array", "items": _ref("Strategy")},
    ),
    "first-messages.response": (
        "GET /bots/:idOperator/conversation-first-messages: the greeting (2 s budget)",
        _object(("replies",), replies=_ref("Replies")),
    ),
    "conversation.request": (
        "POST /conversations: a conversation routed to the bot",
        _object(
            ("idOperator", "idConversation"),
            idOperator=_NON_EMPTY,
            idConversation=_NON_EMPTY,
            history={"type": "array", "items": _ref("Message")},
        ),
    ),
    "conversation.response": (
        "POST /conversations: the conversation as the connector started it (replies should be empty)",
        _ref("ConversationEnvelope"),
    ),
    "message.request": (
        "POST /conversations/:idConversation/messages: one message of the conversation, any author",
        _object(("idOperator", "message"), idOperator=_NON_EMPTY, message=_ref("Message")),
    ),
    "message.response": (
        "POST /conversations/:idConversation/messages: the bot's replies to that message",
        _ref("ConversationEnvelope"),
    ),
    "health.response": (
        "GET /healthcheck: public, without parameters, polled by iAdvize's developer platform",
        _object(("status",), status={"const": "UP"}),
    ),
    "webhook.request": (
        "POST to the app's webhook URL: one event iAdvize delivers, e.g. v2.conversation.closed",
        _object(
            ("eventType",),
            eventId=_STRING,
            eventType=_NON_EMPTY,
            conversationId=_STRING,
            operatorIds={"type": "array", "items": {"type": "integer"}},
            createdAt=_STRING,
            sentAt=_STRING,
        ),
    ),
    "error.response": (
        "Any 4xx or 5xx from the reference bot: what went wrong and where",
        _object(("error", "detail"), error=_NON_EMPTY, detail=_STRING),
    ),
}
