"""``iadvize-harness verify``: does a bot honour what iAdvize needs from it?

The pacts in ``contracts/pacts/`` (or a Pact Broker's) are replayed with pact-python's
``Verifier`` through a local :mod:`gateway` that signs each request, holds iAdvize's
budgets and sets provider states up through the bot's own API; :mod:`report` turns the
result into one line per interaction, with what to fix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.client import BotClient, GiveUp, preflight
from harness.progress import silent

from .gateway import Gateway
from .report import Outcome, outcomes, render, write_junit
from .states import PROVIDER

DEFAULT_PACTS = Path(__file__).resolve().parents[2] / "contracts" / "pacts"
# The verifier's timeout, for calls and for state set-ups alike: above what a set-up may take (up to four
# calls of 10 s each, fewer once GiveUp stops a hanging bot), so the gateway always answers first; an
# abandoned set-up would be sent again by the verifier while the first still waits on the bot.
REQUEST_TIMEOUT_MS = 45_000

os.environ.setdefault("PACT_DO_NOT_TRACK", "true")  # no usage reporting: verification must work offline


@dataclass
class Verification:
    provider_url: str
    outcomes: list[Outcome] = field(default_factory=list)
    error: str | None = None  # the verification could not run at all
    given_up: list[str] = field(default_factory=list)  # endpoints given up for going over their budget

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.outcomes) and all(o.passed for o in self.outcomes)


class VerifyError(Exception):
    """A verification that cannot start: bad arguments, no pacts, an unreachable bot."""


def verify(provider_url: str, secret: str | None = None, pacts: str | os.PathLike | None = None,
           broker_url: str | None = None, publish_version: str | None = None, progress=silent) -> Verification:
    """Replay the pacts against the bot at ``provider_url``: one outcome per interaction, or ``error``
    when the verification could not run (the bot cannot be reached, or refuses the signature)."""
    from pact import Verifier

    source = _pact_source(pacts, broker_url)
    give_up = GiveUp()
    _, stopped = preflight(BotClient(provider_url, secret=secret, give_up=give_up))
    if stopped:
        return Verification(provider_url, error=stopped)
    with Gateway(provider_url, secret, give_up, progress) as gateway:
        verifier = (Verifier(PROVIDER, host="127.0.0.1")
                    .add_transport(url=gateway.url)
                    .state_handler(gateway.state_url, body=True, teardown=False)
                    .set_request_timeout(REQUEST_TIMEOUT_MS)
                    .set_coloured_output(enabled=False)
                    .set_error_on_empty_pact(enabled=True))
        if broker_url:
            verifier.broker_source(broker_url)  # credentials from PACT_BROKER_TOKEN or _USERNAME/_PASSWORD
        else:
            verifier.add_source(source)
        if publish_version:
            verifier.set_publish_options(version=publish_version, branch=os.environ.get("PACT_PROVIDER_BRANCH"))
        # The Rust verifier prints its own report (ours replaces it) and raises on any
        # failure (the detail is in its results).
        with _quiet_stdout(), _quiet_pact_logs(), contextlib.suppress(Exception):
            verifier.verify()
        found = outcomes(verifier.results, gateway.attempts)
    if not found:
        return Verification(provider_url, error=f"no interaction for the provider {PROVIDER!r} in {source}")
    return Verification(provider_url, found, given_up=give_up.summary())


def _pact_source(pacts, broker_url) -> str:
    if broker_url:
        return broker_url
    source = str(pacts or DEFAULT_PACTS)
    if source.startswith(("http://", "https://")):
        return source
    if not Path(source).exists():
        raise VerifyError(f"no pacts at {source}: pass --pacts with a folder, a pact file or a URL")
    return source


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


def run(provider_url: str | None, secret: str | None, pacts: str | None, junit: str | None,
        broker_url: str | None, publish_version: str | None, out=sys.stdout, verbose: bool = False) -> int:
    """The command: verify, print the table, write JUnit.

    Exit 0 only when every interaction passes, 1 when one fails, 2 when the verification cannot
    run (bad arguments, no pacts, a bot that cannot be reached or refuses the signature).
    """
    from harness.embedded import BotProcessError, EmbeddedBot
    from harness.progress import Progress

    embedded = None
    progress = Progress()
    try:
        if provider_url is None:
            embedded = EmbeddedBot(secret=secret, workers=2)
            provider_url = embedded.start()
            print(f"Verifying the embedded reference bot at {provider_url}", file=out)
        else:
            print(f"Verifying {provider_url}", file=out)
        print(f"  pacts: {broker_url or pacts or DEFAULT_PACTS}; requests "
              f"{'signed with the given secret' if secret else 'not signed (no --secret)'}", file=out)
        result = verify(provider_url, secret, pacts, broker_url, publish_version, progress)
    except (VerifyError, BotProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        progress.done()
        if embedded is not None:
            embedded.close()
    if result.error and not result.outcomes:
        print(f"error: {result.error}", file=sys.stderr)
        found, code = [Outcome("verification", [], False, [result.error])], 2
    else:
        print(render(result.outcomes, verbose), file=out)
        for line in result.given_up:
            print(f"note: {line}", file=out)
        found, code = result.outcomes, 0 if result.passed else 1
    if junit:
        try:
            write_junit(found, Path(junit), f"{PROVIDER} at {provider_url}")
        except OSError as error:
            print(f"error: cannot write {junit}: {error.strerror or error}", file=sys.stderr)
            return 2
    return code
