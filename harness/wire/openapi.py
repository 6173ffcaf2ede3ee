"""The connector API as an OpenAPI 3.1 document, assembled from the wire model.

OpenAPI 3.1 schemas are JSON Schema 2020-12, so the wire model's definitions and bodies
go in ``components/schemas`` as they are; only the ``$ref`` targets move. What is added
here is what JSON Schema has no place for: paths, parameters, status codes, the signature.
"""

from __future__ import annotations

import json

import yaml

from harness.wire.model import BODIES, DEFINITIONS


def _component(name: str) -> str:
    # "message.request" -> "MessageRequest": component names that read well in generated clients
    return "".join(part.capitalize() for part in name.replace("-", ".").split("."))


def _retarget(node):
    """Point the model's ``#/$defs/X`` references at ``#/components/schemas/X``."""
    if isinstance(node, dict):
        return {
            k: ("#/components/schemas/" + v.rsplit("/", 1)[1] if k == "$ref" else _retarget(v)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_retarget(v) for v in node]
    return node


def _body(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{_component(name)}"}


def _json(name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _body(name)}}}


ERRORS = {
    "400": _json("error.response", "the request does not fit the API (the detail names the field)"),
    "401": _json("error.response", "missing or wrong X-iAdvize-Signature (when the app has a secret)"),
    "415": _json("error.response", "the body is not application/json"),
    # answered by the HTTP server itself, before the app: in JSON too (reference_bot.worker)
    "414": _json("error.response", "the request line is over 4,094 bytes"),
    "431": _json("error.response", "more than 100 header fields, or one over 8,190 bytes"),
    "503": _json("error.response", "the bot's storage is unavailable, or the conversation busy: retry later"),
}
TOO_LARGE = {"413": _json("error.response", "the body is larger than the bot accepts (1 MiB for the reference bot)")}
UNKNOWN_SCENARIO = {"422": _json("error.response", "the body fits, but names a scenario the bot does not have")}
NOT_FOUND = {
    "404": _json("error.response", "unknown operator"),
    "409": _json("error.response", "the operator's scenario is no longer served: save it with another"),
}

PARAMETERS = {
    "idConnectorVersion": {
        "name": "idConnectorVersion",
        "in": "query",
        "required": False,
        "description": "the connector version making the call (UUID); sent on every call",
        "schema": {"type": "string"},
    },
    "idWebsite": {
        "name": "idWebsite",
        "in": "query",
        "required": False,
        "description": "the iAdvize project, e.g. ha-123",
        "schema": {"type": "string"},
    },
    "idOperatorPath": {
        "name": "idOperator",
        "in": "path",
        "required": True,
        "description": "the bot operator, e.g. ha-456678",
        "schema": {"type": "string", "minLength": 1},
    },
    "idOperatorQuery": {
        "name": "idOperator",
        "in": "query",
        "required": True,
        "description": "the bot operator whose availability is polled",
        "schema": {"type": "string", "minLength": 1},
    },
    "idConversation": {
        "name": "idConversation",
        "in": "path",
        "required": True,
        "description": "the conversation id the connector returned from POST /conversations",
        "schema": {"type": "string", "minLength": 1},
    },
}


def _operation(
    summary: str,
    operation_id: str,
    response: str,
    *,
    request: str | None = None,
    parameters: tuple[str, ...] = (),
    not_found: bool = False,
    budget: str = "10 s",
    more: dict | None = None,
) -> dict:
    operation = {
        "summary": summary,
        "operationId": operation_id,
        "description": f"{BODIES[response][0]}. iAdvize waits {budget} for the answer.",
        "parameters": [
            {"$ref": f"#/components/parameters/{p}"} for p in (*parameters, "idConnectorVersion", "idWebsite")
        ],
        "responses": {
            "200": _json(response, "OK"),
            **ERRORS,
            **(NOT_FOUND if not_found else {}),
            **(TOO_LARGE if request else {}),
            **(more or {}),
        },
    }
    if request:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _body(request)}}}
    return operation


def document() -> dict:
    """The connector API as an OpenAPI 3.1 document, built from the wire model's definitions and bodies."""
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "iAdvize external-bot connector API",
            "version": "1.0.0",
            "description": "What an external bot serves for iAdvize. Generated from the wire model of "
            "iadvize-harness (harness/wire/model.py); do not edit by hand.",
        },
        "security": [{"iAdvizeSignature": []}],
        "paths": {
            "/healthcheck": {
                "get": {
                    "summary": "Say the bot is up",
                    "operationId": "healthcheck",
                    "description": f"{BODIES['health.response'][0]}: no signature, no query parameters.",
                    "security": [],
                    "responses": {"200": _json("health.response", "OK")},
                }
            },
            "/external-bots": {
                "get": _operation("List the scenarios an admin can pick", "listScenarios", "external-bots.response")
            },
            "/bots/{idOperator}": {
                "put": _operation(
                    "Create or update an operator",
                    "saveOperator",
                    "bot.response",
                    request="bot.request",
                    parameters=("idOperatorPath",),
                    more=UNKNOWN_SCENARIO,
                ),
                "get": _operation(
                    "Read an operator", "readOperator", "bot.response", parameters=("idOperatorPath",), not_found=True
                ),
            },
            "/availability-strategies": {
                "get": _operation(
                    "Say when the bot may be offered",
                    "availabilityStrategies",
                    "availability-strategies.response",
                    parameters=("idOperatorQuery",),
                    not_found=True,
                )
            },
            "/bots/{idOperator}/conversation-first-messages": {
                "get": _operation(
                    "The greeting shown when the chatbox opens",
                    "firstMessages",
                    "first-messages.response",
                    parameters=("idOperatorPath",),
                    not_found=True,
                    budget="2 s",
                )
            },
            "/conversations": {
                "post": _operation(
                    "Start a conversation routed to the bot",
                    "startConversation",
                    "conversation.response",
                    request="conversation.request",
                    not_found=True,
                )
            },
            "/conversations/{idConversation}/messages": {
                "post": _operation(
                    "Receive one message of the conversation, the bot's own included",
                    "receiveMessage",
                    "message.response",
                    request="message.request",
                    parameters=("idConversation",),
                    not_found=True,
                )
            },
        },
        "components": {
            "securitySchemes": {
                "iAdvizeSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-iAdvize-Signature",
                    "description": "sha256=<hex HMAC-SHA256 keyed with the app's secret> of the raw query string "
                    "(GET) or the raw body (other methods)",
                }
            },
            "parameters": PARAMETERS,
            "schemas": {
                **_retarget(DEFINITIONS),
                **{
                    _component(name): {"description": description, **_retarget(body)}
                    for name, (description, body) in BODIES.items()
                },
            },
        },
    }


def render() -> str:
    """The document as committed in contracts/openapi.yaml."""
    # Through JSON first: YAML anchors and aliases for repeated fragments would read badly.
    return yaml.safe_dump(json.loads(json.dumps(document())), sort_keys=False, allow_unicode=True, width=110)
