"""``iadvize-harness verify``: does a bot honour what iAdvize needs from it?

The pacts in ``contracts/pacts/`` (or a Pact Broker's) are replayed with pact-python's
``Verifier`` through a local :mod:`gateway` that signs each request, holds iAdvize's
budgets and sets provider states up through the bot's own API; :mod:`report` turns the
result into one line per interaction, with what to fix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness import resources
from harness.client import BotClient, GiveUp, preflight
from harness.progress import silent
from harness.verify.gateway import Gateway
from harness.verify.report import InteractionResult, outcomes
from harness.verify.states import PROVIDER

DEFAULT_PACTS = resources.pacts()
# The verifier's timeout, for calls and for state set-ups alike: above what a set-up may take (up to four
# calls of 10 s each, fewer once GiveUp stops a hanging bot), so the gateway always answers first; an
# abandoned set-up would be sent again by the verifier while the first still waits on the bot.
REQUEST_TIMEOUT_MS = 45_000

os.environ.setdefault("PACT_DO_NOT_TRACK", "true")  # no usage reporting: verification must work offline


@dataclass(frozen=True)
class BrokerOptions:
    """Pacts from a Pact Broker, and what to ask it for, as the Pact verifier CLI names it."""

    url: str
    selectors: tuple[str, ...] = ()  # consumer version selectors, one JSON object each, sent as given
    enable_pending: bool = False  # new interactions are pending: their failures do not fail the run
    include_wip_since: str | None = None  # a date: work-in-progress pacts since then are verified too


@dataclass(frozen=True)
class ProviderVersion:
    """The provider version the results are published as, with its branch, tags and build URL."""

    version: str | None = None
    branch: str | None = None
    tags: tuple[str, ...] = ()
    build_url: str | None = None
    publish: bool = False


@dataclass
class Verification:
    """The outcome of ``verify``: one result per interaction, or ``error`` when the verification could not run."""

    provider_url: str
    outcomes: list[InteractionResult] = field(default_factory=list)
    error: str | None = None  # the verification could not run at all
    given_up: list[str] = field(default_factory=list)  # endpoints given up for going over their budget
    not_run: int = 0  # interactions left after the first failure (exit_first)
    notes: list[str] = field(default_factory=list)  # what the run found out beside the interactions

    @property
    def passed(self) -> bool:
        """True when the verification ran and every interaction passed or is pending (none at all is not a
        pass)."""
        return self.error is None and bool(self.outcomes) and all(o.passed or o.pending for o in self.outcomes)


class VerifyError(Exception):
    """A verification that cannot start: bad arguments, no pacts, an unreachable bot."""


def verify(
    provider_url: str,
    secret: str | None = None,
    pacts: str | os.PathLike | None = None,
    broker_url: str | None = None,
    publish_version: str | None = None,
    progress=silent,
    *,
    broker: BrokerOptions | None = None,
    provider: ProviderVersion | None = None,
    only: tuple[str | None, str | None] = (None, None),
    exit_first: bool = False,
    healthcheck_url: str | None = None,
) -> Verification:
    """Replay the pacts against the bot at ``provider_url``: one outcome per interaction, or ``error``
    when the verification could not run (the bot cannot be reached, or refuses the signature).

    ``broker`` (or just ``broker_url``) takes the pacts from a Pact Broker; ``provider`` (or just
    ``publish_version``) publishes the results there; ``only`` is (description, provider state): the
    interactions to run, as the Pact verifier filters them. ``exit_first`` runs the interactions of local pacts
    one at a time and stops after the first that fails. ``healthcheck_url`` is where the app's settings put the
    health check (a path or a URL; default: /healthcheck, else looked for where connectors serve it).
    """
    broker = broker or (BrokerOptions(broker_url) if broker_url else None)
    provider = provider or ProviderVersion(publish_version, os.environ.get("PACT_PROVIDER_BRANCH"), publish=True)
    source = _pact_source(pacts, broker.url if broker else None)
    if exit_first and (broker or source.startswith(("http://", "https://"))):
        raise VerifyError("--exit-first runs the pacts of a folder or a file (--pacts), one interaction at a time")
    give_up = GiveUp()
    _, stopped = preflight(BotClient(provider_url, secret=secret, give_up=give_up))
    if stopped:
        return Verification(provider_url, error=stopped)
    not_run = 0
    with Gateway(provider_url, secret, give_up, progress, healthcheck_url) as gateway:
        if exit_first:
            found, not_run = _until_a_failure(gateway, source, provider, only)
        else:
            found = _run(gateway, _verifier(gateway, source, broker, provider, only))
    if not found:
        return Verification(provider_url, error=f"no interaction for the provider {PROVIDER!r} in {source}")
    return Verification(provider_url, found, given_up=give_up.summary(), not_run=not_run, notes=gateway.notes)


def _run(gateway: Gateway, verifier) -> list[InteractionResult]:
    """One run of the verifier: its results, with the gateway's record of each of its calls."""
    before = len(gateway.attempts)
    # The Rust verifier prints its own report (ours replaces it) and raises on any failure (the detail is in
    # its results).
    with _quiet_stdout(), _quiet_pact_logs(), contextlib.suppress(Exception):
        verifier.verify()
    return outcomes(verifier.results, gateway.attempts[before:])


def _until_a_failure(gateway: Gateway, source: str, provider: ProviderVersion, only) -> tuple[list, int]:
    """The interactions of the local pacts one run each, in order, until one fails; and how many were left."""
    pattern, state = only
    descriptions = [d for d in interaction_descriptions(source) if not pattern or re.search(pattern, d)]
    found: list[InteractionResult] = []
    for index, description in enumerate(descriptions):
        found += _run(gateway, _verifier(gateway, source, None, provider, (f"^{re.escape(description)}$", state)))
        if any(outcome.status == "fail" for outcome in found):
            return found, len(descriptions) - index - 1
    return found, 0


def interaction_descriptions(source: str) -> list[str]:
    """The descriptions of the provider's interactions in a pact file or a folder of them, in order, once each."""
    path = Path(source)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    found: list[str] = []
    for file in files:
        try:
            pact = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as problem:
            raise VerifyError(f"{file}: not a pact file ({problem})") from None
        if (pact.get("provider") or {}).get("name") == PROVIDER:
            found += [i.get("description", "") for i in pact.get("interactions", [])]
    return list(dict.fromkeys(found))


def _verifier(gateway: Gateway, source: str, broker: BrokerOptions | None, provider: ProviderVersion, only):
    """pact-python's Verifier, through the gateway, on the pacts of ``source`` or of the broker."""
    from pact import Verifier

    verifier = (
        Verifier(PROVIDER, host="127.0.0.1")
        .add_transport(url=gateway.url)
        .state_handler(gateway.state_url, body=True, teardown=False)
        .set_request_timeout(REQUEST_TIMEOUT_MS)
        .set_coloured_output(enabled=False)
        .set_error_on_empty_pact(enabled=True)
    )
    if broker is None:
        verifier.add_source(source)
    else:  # credentials from PACT_BROKER_TOKEN, or PACT_BROKER_USERNAME and _PASSWORD
        selection = verifier.broker_source(broker.url, selector=True)
        if broker.selectors:
            selection = selection.consumer_versions(*broker.selectors)
        if broker.enable_pending:
            selection = selection.include_pending()
        if broker.include_wip_since:
            selection = selection.include_wip_since(broker.include_wip_since)
        if provider.branch:
            selection = selection.provider_branch(provider.branch)
        if provider.tags:
            selection = selection.provider_tags(*provider.tags)
        verifier = selection.build()
    description, state = only
    if description or state:
        verifier.filter(description, state=state)
    if provider.publish and provider.version:
        verifier.set_publish_options(
            version=provider.version, url=provider.build_url, branch=provider.branch, tags=list(provider.tags) or None
        )
    return verifier


def _pact_source(pacts, broker_url) -> str:
    """Where the pacts come from; a broker or a URL that does not answer, or a pact file that is not JSON, is
    said here, before the verifier (which would only find no interaction)."""
    from harness.verify.broker_client import unreachable

    if broker_url:
        if problem := unreachable(broker_url):
            raise VerifyError(problem)
        return broker_url
    source = str(pacts or DEFAULT_PACTS)
    if source.startswith(("http://", "https://")):
        return source
    if not Path(source).exists():
        raise VerifyError(f"no pacts at {source}: pass --pacts with a folder, a pact file or a URL")
    if Path(source).is_dir():  # another *.json there (a tsconfig) is no pact: a problem only when none is one
        broken = [problem for path in sorted(Path(source).glob("*.json")) if (problem := _not_json(path))]
        if broken and len(broken) == len(list(Path(source).glob("*.json"))):
            raise VerifyError(broken[0])
    elif problem := _not_json(Path(source)):
        raise VerifyError(problem)
    return source


def _not_json(path: Path) -> str | None:
    """Why the file at ``path`` is no pact (not readable, not text, not JSON: where it breaks), or None."""
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return f"{path} is not a pact: not text (UTF-8)"
    except json.JSONDecodeError as problem:
        return f"{path} is not a pact: not JSON at line {problem.lineno}, column {problem.colno} ({problem.msg})"
    except OSError as problem:
        return f"{path} cannot be read: {problem.strerror or problem}"
    return None


@contextlib.contextmanager
def _quiet_pact_logs():
    # pact logs each failed state set-up as an error; the report already says it better
    logger = logging.getLogger("pact")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _quiet_stdout():
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
