"""The Pact Broker's own client for what a provider's pipeline does besides verifying: publish the iAdvize
pacts, ask whether a version may be deployed, record that it was.

The client is the consolidated Pact CLI (``pact broker ...``, from PyPI's ``pact-python-cli``), run as it is:
its conventions (``PACT_BROKER_BASE_URL``, ``PACT_BROKER_TOKEN`` or ``_USERNAME``/``_PASSWORD``), its output
and its exit codes are the broker's, not ours. Publishing through it, rather than a hand-made ``PUT``, lets
the broker create the version, its branch and tags before the pact, which its webhooks rely on.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from harness import resources
from harness.verify.states import PROVIDER

IADVIZE_PACT = "iadvize-platform-external-bot.json"  # the pact iAdvize (the consumer) has with a bot
CALL_SECONDS = 120  # a broker that stops answering: the client is stopped after this (beyond its retries)
REACH_SECONDS = 10  # a broker that does not answer within this is said unreachable


class BrokerClientMissing(RuntimeError):
    """The Pact CLI is not installed; the message says how to install it."""


def pact_cli() -> str:
    """The ``pact`` program beside this Python (a venv's), or on PATH."""
    beside = Path(sys.executable).with_name("pact")
    found = str(beside) if beside.exists() else shutil.which("pact")
    if found is None:
        raise BrokerClientMissing(
            "the Pact Broker client is not installed: pip install pact-python-cli (it comes with iadvize-harness)"
        )
    return found


def unreachable(url: str) -> str | None:
    """Why nothing answers at the Pact Broker's ``url`` (refused, a name that does not resolve), in one line;
    None when something does, or might: any status counts (one that wants credentials answers too), and a
    slow or TLS-troubled broker is left to its client, whose settings (certificates, timeouts) are its own.
    Asked before the client, which retries a refused connection for a minute in silence."""
    import warnings

    import requests

    try:
        with warnings.catch_warnings():  # certificates are the client's business: only whether it answers
            warnings.simplefilter("ignore")
            requests.get(url, timeout=REACH_SECONDS, allow_redirects=False, verify=False)
    except (requests.ConnectionError, requests.exceptions.InvalidURL) as problem:
        if isinstance(problem, requests.exceptions.SSLError | requests.exceptions.ConnectTimeout):
            return None
        said = str(problem)
        reason = next((why for words, why in _REASONS if words in said), "no connection")
        return f"cannot reach the Pact Broker at {_without_credentials(url)} ({reason})"
    except requests.RequestException:
        return None
    return None


_REASONS = (
    ("Connection refused", "connection refused"),
    ("Name or service not known", "the name does not resolve"),
    ("Failed to resolve", "the name does not resolve"),
    ("No route to host", "no route to the host"),
    ("Network is unreachable", "network unreachable"),
)


def _without_credentials(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1])) if "@" in parts.netloc else url


def broker(arguments: list[str], seconds: float = CALL_SECONDS) -> int:
    """Runs ``pact broker ARGUMENTS``, its output shown as it comes; its exit code (124: it did not end)."""
    try:
        return subprocess.run([pact_cli(), "broker", *arguments], timeout=seconds, check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"error: the Pact Broker client did not finish within {seconds:g} s", file=sys.stderr)
        return 124


def publish(version: str, branch: str | None, tags: list[str], build_url: str | None, url: str | None) -> int:
    """``pact broker publish`` of the iAdvize pact, as the consumer's ``version`` on ``branch``."""
    arguments = ["publish", str(resources.pacts() / IADVIZE_PACT), "--consumer-app-version", version]
    arguments += [*(["--branch", branch] if branch else []), *(f"--tag={tag}" for tag in tags)]
    arguments += [*(["--build-url", build_url] if build_url else []), *(["--broker-base-url", url] if url else [])]
    return broker(arguments)


def can_i_deploy(version: str, environment: str, retries: int, interval: float, url: str | None) -> int:
    """``pact broker can-i-deploy`` of the bot's ``version`` to ``environment``: 0 yes, 1 no."""
    arguments = ["can-i-deploy", "--pacticipant", PROVIDER, "--version", version, "--to-environment", environment]
    if retries:
        arguments += ["--retry-while-unknown", str(retries), "--retry-interval", f"{interval:g}"]
    return broker([*arguments, *(["--broker-base-url", url] if url else [])], CALL_SECONDS + retries * interval)


def record_deployment(version: str, environment: str, url: str | None) -> int:
    """``pact broker record-deployment`` of the bot's ``version`` to ``environment``."""
    arguments = ["record-deployment", "--pacticipant", PROVIDER, "--version", version, "--environment", environment]
    return broker([*arguments, *(["--broker-base-url", url] if url else [])])
