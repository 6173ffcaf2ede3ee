"""Run the consumer side against Pact's mock server and write the pact files.

``python -m contracts.generate [DIR]`` (``make pacts``) rewrites ``contracts/pacts/``; the
consumer tests call :func:`generate` into a temporary folder and compare.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pact import Pact, match
from pact import generate as generators

from harness.client import BotClient
from harness.verify import states
from reference_bot.proactive import GraphQLClient

from . import graphql, platform
from .platform import Contract

PACTS_DIR = Path(__file__).parent / "pacts"
os.environ.setdefault("PACT_DO_NOT_TRACK", "true")  # no usage reporting: this machine has no internet

# What the consumer signs its calls with in these tests; the verifier re-signs with the provider's secret.
CONSUMER_SECRET = "consumer-test-secret"


@dataclass(frozen=True)
class PactSpec:
    consumer: str
    provider: str
    contracts: tuple[Contract, ...]
    consumer_code: Callable[[str], object]  # mock server URL -> the client the contracts exercise
    query: dict  # query parameters on every request
    headers: dict  # headers on every request

    @property
    def file_name(self) -> str:
        return f"{self.consumer}-{self.provider}.json"


PACTS = (
    PactSpec(
        states.CONSUMER,
        states.PROVIDER,
        platform.CONTRACTS,
        lambda url: BotClient(
            url,
            secret=CONSUMER_SECRET,
            id_connector_version=platform.ID_CONNECTOR_VERSION,
            id_website=platform.ID_WEBSITE,
        ),
        query={
            "idConnectorVersion": match.uuid(platform.ID_CONNECTOR_VERSION),
            "idWebsite": match.str(platform.ID_WEBSITE),
        },
        headers={"X-iAdvize-Signature": match.regex("sha256=" + "0" * 64, regex=platform.SIGNATURE_PATTERN)},
    ),
    PactSpec(
        graphql.CONSUMER,
        graphql.PROVIDER,
        graphql.CONTRACTS,
        lambda url: GraphQLClient(url, graphql.USERNAME, graphql.PASSWORD),
        query={},
        headers={},
    ),
)


def interaction(pact: Pact, spec: PactSpec, contract: Contract) -> None:
    built = pact.upon_receiving(contract.description)
    for state, parameters in contract.states:
        built = built.given(state, parameters) if parameters else built.given(state)
    path = contract.path
    if contract.path_from_state:
        path = match.type(contract.path, generator=generators.provider_state(contract.path_from_state))
    built = built.with_request(contract.method, path)
    shared_query, shared_headers = ({}, {}) if contract.public else (spec.query, spec.headers)
    for name, value in {**shared_query, **contract.query}.items():
        built = built.with_query_parameter(name, value)
    for name, value in {**shared_headers, **contract.headers}.items():
        built = built.with_header(name, value)
    if contract.body is not None:
        built = built.with_body(contract.body, content_type=contract.content_type)
    built = built.will_respond_with(contract.status)
    if contract.response is not None:
        built.with_body(contract.response, content_type="application/json")


def generate(directory: Path) -> dict[str, str | None]:
    """Write every pact into ``directory``; returns, per interaction, None or why its consumer code failed."""
    outcome: dict[str, str | None] = {}
    for spec in PACTS:
        pact = Pact(spec.consumer, spec.provider).with_specification("V4")
        for contract in spec.contracts:
            interaction(pact, spec, contract)
        with pact.serve(addr="127.0.0.1", raises=False, verbose=False) as server:
            for contract in spec.contracts:
                try:
                    contract.exercise(spec.consumer_code(str(server.url)))
                    outcome[contract.description] = None
                except Exception:
                    outcome[contract.description] = traceback.format_exc(limit=3)
            mismatches = [str(m) for m in server.mismatches]
        if mismatches:  # a request the mock server did not expect, or an interaction never exercised
            raise AssertionError(
                f"{spec.file_name}: the consumer code did not match the pact:\n" + "\n".join(mismatches)
            )
        pact.write_file(directory, overwrite=True)
    return outcome


def comparable(path: Path) -> dict:
    """A pact without the tool versions in its metadata, which change with every Pact release."""
    document = json.loads(path.read_text(encoding="utf-8"))
    document.get("metadata", {}).pop("pactRust", None)
    document.get("metadata", {}).pop("pactPython", None)
    return document


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else PACTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    failed = {k: v for k, v in generate(directory).items() if v}
    for description, error in failed.items():
        print(f"FAILED {description}\n{error}", file=sys.stderr)
    for spec in PACTS:
        print(directory / spec.file_name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
