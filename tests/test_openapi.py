"""contracts/openapi.yaml: generated from the wire model, valid OpenAPI 3.1, and served by the reference bot."""

from __future__ import annotations

import yaml
from openapi_spec_validator import validate

from harness.wire import openapi

from .conftest import OPERATOR, ROOT, save_operator, visitor

COMMITTED = ROOT / "contracts" / "openapi.yaml"

# A request each operation accepts once the operator exists.
EXAMPLES = {
    "healthcheck": {},
    "listScenarios": {},
    "saveOperator": {"json": {"external": {"idBot": "hello"}}},
    "readOperator": {},
    "availabilityStrategies": {"query_string": {"idOperator": OPERATOR}},
    "firstMessages": {},
    "startConversation": {"json": {"idOperator": OPERATOR, "idConversation": "c-1", "history": []}},
    "receiveMessage": {"json": {"idOperator": OPERATOR, "message": visitor("Hi")}},
}


def test_the_committed_document_is_what_the_wire_model_generates():
    assert COMMITTED.read_text(encoding="utf-8") == openapi.render(), "run make schemas"


def test_it_is_valid_openapi_3_1():
    document = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    validate(document)  # raises with the first problem
    assert document["openapi"] == "3.1.0"


def test_every_operation_in_it_is_served_by_the_reference_bot(client):
    save_operator(client)
    document = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    served = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            url = path.replace("{idOperator}", OPERATOR).replace("{idConversation}", "c-1")
            response = client.open(url, method=method.upper(), **EXAMPLES[operation["operationId"]])
            assert response.status_code == 200, (method, path, response.get_json())
            served.append(operation["operationId"])
    assert sorted(served) == sorted(EXAMPLES)


def test_its_schemas_are_the_wire_model_s():
    schemas = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))["components"]["schemas"]
    assert schemas["MessageRequest"]["properties"]["message"] == {"$ref": "#/components/schemas/Message"}
    assert schemas["Reply"]["properties"]["type"]["enum"] == ["await", "message", "transfer", "close"]
