"""The wire model's public face: full JSON Schemas per body, and validation with readable problems.

Both sides use this: the reference bot validates what iAdvize sends it, the harness
validates what a bot answers. This module imports nothing else from ``harness``, so the
reference bot can depend on it alone.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import fastjsonschema
from jsonschema import Draft202012Validator

from harness.wire.model import BODIES, DEFINITIONS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
BODY_NAMES = tuple(BODIES)


@dataclass(frozen=True)
class Problem:
    """One reason a document does not fit its shape: where (dotted path) and what."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class WireError(ValueError):
    """A body that does not fit the wire model; ``problems`` lists every reason, first is the primary."""

    def __init__(self, body: str, problems: list[Problem]):
        self.body = body
        self.problems = problems
        super().__init__(f"{body}: " + "; ".join(str(p) for p in problems))

    @property
    def field(self) -> str:
        """Where the primary problem is (a dotted path)."""
        return self.problems[0].field


def _refs(node) -> set[str]:
    """Names of the definitions referenced anywhere inside a schema fragment."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def schema(name: str) -> dict:
    """The complete, self-contained JSON Schema of one body (only the definitions it uses)."""
    description, body = BODIES[name]
    needed: set[str] = set()
    pending = _refs(body)
    while pending:
        ref = pending.pop()
        needed.add(ref)
        pending |= _refs(DEFINITIONS[ref]) - needed
    document = {"$schema": SCHEMA_DIALECT, "title": name, "description": description, **body}
    if needed:
        document["$defs"] = {ref: DEFINITIONS[ref] for ref in sorted(needed)}
    return document


def render(name: str) -> str:
    """The schema as committed under contracts/schemas/: stable key order, trailing newline."""
    return json.dumps(schema(name), indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Writes every body's schema as ``<name>.json`` in ``directory`` (created if need be); returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in BODY_NAMES:
        path = directory / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name))


@cache
def _fast(name: str):
    """A compiled check of the same schema: an order of magnitude faster on the valid documents that
    make up nearly all traffic; jsonschema then words the problems of the others."""
    return fastjsonschema.compile(schema(name))


def _dotted(path) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


_JSON_TYPES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "boolean": "a boolean",
    "number": "a number",
    "null": "null",
}


def _problem(error) -> Problem | list[Problem]:
    where = list(error.absolute_path)
    kind, expected, got = error.validator, error.validator_value, error.instance
    if kind == "required":  # jsonschema reports it once per missing field, without naming it apart
        return [Problem(_dotted([*where, f]), "is required") for f in expected if f not in got]
    if kind == "type":
        return Problem(_dotted(where), f"must be {_JSON_TYPES.get(expected, expected)}, got {_short(got)}")
    if kind == "enum":
        return Problem(_dotted(where), f"must be one of {', '.join(map(str, expected))}; got {_short(got)}")
    if kind == "const":
        return Problem(_dotted(where), f"must be {_short(expected)}, got {_short(got)}")
    if kind == "pattern" and expected == DEFINITIONS["DateTime"]["pattern"]:
        return Problem(_dotted(where), f"must be an ISO 8601 date-time, got {_short(got)}")
    if kind in ("minItems", "minLength"):
        return Problem(_dotted(where), "must not be empty")
    return Problem(_dotted(where), f"{kind} {_short(expected)} not met by {_short(got)}")


MAX_PROBLEMS = 50  # a body of 100,000 broken items would otherwise take seconds to word, item by item


def problems(name: str, document) -> list[Problem]:
    """The ways ``document`` departs from the body ``name`` (the first 50 found); empty when it fits."""
    try:
        _fast(name)(document)
        return []
    except fastjsonschema.JsonSchemaException:
        pass  # not valid as compiled: ask jsonschema, which has the final word and says where and why
    errors = sorted(
        itertools.islice(_validator(name).iter_errors(document), MAX_PROBLEMS),
        key=lambda e: (len(e.absolute_path), _dotted(e.absolute_path)),
    )
    found: dict[Problem, None] = {}  # ordered and without repeats
    for error in errors:
        problem = _problem(error)
        found.update(dict.fromkeys(problem if isinstance(problem, list) else [problem]))
    return list(found)


def validate(name: str, document) -> None:
    """Raise :class:`WireError` unless ``document`` fits the body ``name``."""
    found = problems(name, document)
    if found:
        raise WireError(name, found)


_UNIT_SECONDS = {"millis": 0.001, "seconds": 1, "minutes": 60}


def text_of(reply) -> str | None:
    """The text of a reply that is a text message; None for anything else (a card, an await, a transfer...)."""
    if not isinstance(reply, dict) or reply.get("type") != "message":
        return None
    payload = reply.get("payload") or {}
    return payload.get("value") if isinstance(payload, dict) and payload.get("contentType") == "text" else None


def variables_of(body) -> dict[str, str] | None:
    """The ``variables`` of a conversation answer as a dict (key -> value); None when it has none that fit."""
    given = body.get("variables") if isinstance(body, dict) else None
    if not isinstance(given, list) or not all(
        isinstance(v, dict) and isinstance(v.get("key"), str) and isinstance(v.get("value"), str) for v in given
    ):
        return None
    return {v["key"]: v["value"] for v in given}


def seconds(duration: dict) -> float:
    """A wire ``Duration`` (``{"unit": "seconds", "value": 30}``) in seconds."""
    return duration["value"] * _UNIT_SECONDS[duration["unit"]]


def reply_problems(reply) -> list[Problem]:
    """Problems of a single reply object (used to validate scenario files)."""
    found = problems("first-messages.response", {"replies": [reply]})
    return [Problem(p.field.removeprefix("replies[0]").lstrip("."), p.message) for p in found]
