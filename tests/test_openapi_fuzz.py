"""schemathesis against contracts/openapi.yaml, with the reference bot running (gunicorn on loopback).

Every operation is called with generated requests, valid and invalid, and each answer is checked
against what the OpenAPI description promises: no 5xx, only documented statuses, bodies and
content types as described. The sample size follows the hypothesis profile of tests/test_fuzz.py
(``ci`` in ``make test``, ``fuzz`` in ``make fuzz``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from schemathesis.specs.openapi.checks import ignored_auth

from harness.bots import EmbeddedBot
from harness.wire import signature

from . import test_fuzz  # its hypothesis profiles (ci, fuzz) and its count of requests

# A body may fit the description yet name a scenario the bot does not have: the description
# documents 422 for that, which schemathesis does not expect of valid data unless told.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]}}}
)
SCHEMA = schemathesis.openapi.from_path(Path(__file__).parents[1] / "contracts" / "openapi.yaml", config=CONFIG)
pytestmark = pytest.mark.slow


SECRET = "openapi-fuzz-secret"


@pytest.fixture(scope="module")
def bot_url():
    with EmbeddedBot(workers=2, secret=SECRET) as bot:
        yield bot.url


def signed(session: requests.Session, case, base_url: str) -> requests.PreparedRequest:
    """The generated request as it will be sent; when the case carries a signature, the right one.

    A case without the header stays unsigned: the bot must refuse it, as the description says.
    """
    kwargs = case.as_transport_kwargs(base_url=base_url)
    prepared = session.prepare_request(requests.Request(**{k: kwargs[k] for k in kwargs if k != "cookies"}))
    if any(name.lower() == signature.HEADER.lower() for name in (case.headers or {})):
        body = prepared.body.encode("utf-8") if isinstance(prepared.body, str) else prepared.body or b""
        part = signature.signed_part(prepared.method, urlsplit(prepared.url).query.encode("utf-8"), body)
        prepared.headers[signature.HEADER] = signature.sign(SECRET, part)
    return prepared


@SCHEMA.parametrize()
def test_the_bot_keeps_what_its_openapi_description_promises(case, bot_url):
    test_fuzz.CASES["cases"] += 1
    with requests.Session() as session:
        response = session.send(signed(session, case, bot_url), timeout=10)
    test_fuzz.CASES["requests"] += 1
    test_fuzz.CASES["5xx"] += response.status_code >= 500
    # ignored_auth judges the signature schemathesis generated, which signed() replaced with the
    # right one; wrong and missing signatures are refused in tests/test_security.py.
    case.validate_response(response, excluded_checks=[ignored_auth])
