"""The pytest plugin: ``*.convo.yaml`` scripts as test items, and fixtures for hand-written tests.

Installed with iadvize-harness (entry point ``pytest11``). ``pytest path/to/scripts/``
runs each script against ``--iadvize-url``, or else the bot package ``--iadvize-bot`` names (a
copy of the template) started once per session, by default the reference bot; a failure shows
the transcript up to the failing step.

Fixtures: ``reference_bot_url`` (the embedded bot's URL) and ``iadvize_platform``, a
factory of :class:`~harness.conformance.platform.SimulatedPlatform` connected to the bot under test
with an operator already saved.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from harness.client import BotClient, BotError, new_operator_id, preflight, url_problem
from harness.conformance.platform import SimulatedPlatform
from harness.conformance.scripts import (
    UTTERANCE_MODES,
    ScriptError,
    ScriptFailure,
    failure_report,
    load_script,
    run_script,
    variants,
)


def pytest_addoption(parser):
    """Adds ``--iadvize-url``, ``--iadvize-bot``, ``--iadvize-api-port``, ``--iadvize-webhook-url`` and
    ``--iadvize-secret`` (default: ``IADVIZE_SECRET``)."""
    group = parser.getgroup("iadvize", "iAdvize external bots")
    group.addoption(
        "--iadvize-url",
        default=None,
        help="the bot that conversation scripts run against (default: start the --iadvize-bot package)",
    )
    group.addoption(
        "--iadvize-bot",
        default="reference_bot",
        metavar="PACKAGE",
        help="without --iadvize-url, the bot package to start for the session: a copy of the template made "
        "with `iadvize-harness template` (default: reference_bot, the embedded reference bot)",
    )
    group.addoption(
        "--iadvize-api-port",
        type=int,
        default=0,
        metavar="PORT",
        help="the port of the local iAdvize API scripts' bot may post through: point your bot at "
        "http://127.0.0.1:PORT (default: a free port)",
    )
    group.addoption(
        "--iadvize-webhook-url",
        default=None,
        metavar="URL",
        help="deliver iAdvize's conversation webhooks (pushed, closed; signed) there "
        "(default: the started bot's /webhooks; none with --iadvize-url)",
    )
    group.addoption(
        "--iadvize-utterances",
        "--utterances",
        choices=UTTERANCE_MODES,
        default="all",
        help="a script with `visitor: [a, b, c]` runs once per utterance (all, the default), or once with "
        "one drawn at random (random, see --iadvize-seed)",
    )
    group.addoption(
        "--iadvize-seed",
        type=int,
        default=0,
        help="the seed --iadvize-utterances random draws with (default 0: the same draw every run)",
    )
    group.addoption(
        "--iadvize-secret",
        default=os.environ.get("IADVIZE_SECRET"),
        help="the app's secret, to sign every call (default: IADVIZE_SECRET)",
    )


def pytest_configure(config):
    """Refuses a ``--iadvize-url`` or ``--iadvize-webhook-url`` that is not a usable URL, before anything runs."""
    for option in ("iadvize_url", "iadvize_webhook_url"):
        url = config.getoption(option, None)
        if url and (problem := url_problem(url)):
            raise pytest.UsageError(f"--{option.replace('_', '-')} {problem}")


def pytest_collect_file(file_path, parent):
    """Collects every ``*.convo.yaml`` file as a conversation script."""
    if file_path.name.endswith(".convo.yaml"):
        return ConversationScriptFile.from_parent(parent, path=file_path)
    return None


class ConversationScriptFile(pytest.File):
    """A ``*.convo.yaml`` file: one test item per variant of its script (one per utterance of its lists)."""

    def collect(self):
        """The file's script, once per utterance of its lists; a script that cannot be loaded is a collection
        error (of this file only: every broken file is reported)."""
        try:
            script = load_script(self.path)
        except ScriptError as error:
            raise self.CollectError(str(error)) from None
        mode, seed = self.config.getoption("iadvize_utterances"), self.config.getoption("iadvize_seed")
        for variant in variants(script, mode, seed):
            yield ConversationScriptItem.from_parent(self, name=variant.name, script=variant)


class ConversationScriptItem(pytest.Item):
    """One conversation script, run as a test against the bot under test."""

    def __init__(self, *, script, **kwargs):
        super().__init__(**kwargs)
        self.script = script

    def runtest(self):
        """Runs the script against ``--iadvize-url``, or the embedded reference bot (started on first use).

        The bot is tried once per session first: one that cannot be reached, or refuses the
        signature, fails every script with the same one line.
        """
        url = _bot_url(self.config)
        secret = self.config.getoption("iadvize_secret")
        stopped = _preflight(self.config, url, secret)
        if stopped:  # unreachable, or refusing the signature: one error for the run, not one per script
            pytest.exit(stopped, returncode=pytest.ExitCode.USAGE_ERROR)
        run_script(self.script, BotClient(url, secret=secret), api=_api(self.config), webhooks=_webhooks(self.config))

    def repr_failure(self, excinfo):
        """The transcript up to the failing step, one line for a bot at fault, pytest's usual report otherwise."""
        if isinstance(excinfo.value, ScriptFailure):
            return failure_report(excinfo.value)
        if isinstance(excinfo.value, BotError | ScriptError):  # the bot's answer, not our code
            return f"{self.script.name}: {excinfo.value}{_which_bot_hint(self.config, excinfo.value)}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        """The item's file and a name for the report: the script's."""
        return self.path, None, f"conversation script: {self.script.name}"


def _which_bot_hint(config, problem) -> str:
    """When the scripts ran against the embedded reference bot by default and it lacks their scenario: the
    likely cause, said (a template project whose pytest settings do not name its bot)."""
    default = config.getoption("iadvize_url") is None and config.getoption("iadvize_bot") == "reference_bot"
    if default and isinstance(problem, BotError) and "no scenario" in str(problem):
        return (
            "\n(these scripts ran against the embedded reference bot, the default: for your bot, give "
            "--iadvize-bot FOLDER (a copy made with `iadvize-harness template`) or --iadvize-url URL)"
        )
    return ""


_EMBEDDED = "_iadvize_embedded_bot"
_API = "_iadvize_api"
_PREFLIGHT = "_iadvize_preflight"


def _preflight(config, url: str, secret: str | None) -> str | None:
    """Why no script can run against this bot (refused signature, unreachable), asked once per session."""
    if not hasattr(config, _PREFLIGHT):
        flag = getattr(config, "iadvize_secret_flag", "--iadvize-secret")  # scripts --run says --secret
        setattr(config, _PREFLIGHT, preflight(BotClient(url, secret=secret), flag=flag)[1])
    return getattr(config, _PREFLIGHT)


def _api(config):
    """The local iAdvize API of the session (started on first use), for the bot to post through."""
    api = getattr(config, _API, None)
    if api is None:
        from harness.conformance.iadvize_api import IAdvizeAPI

        api = IAdvizeAPI(port=config.getoption("iadvize_api_port")).start()
        setattr(config, _API, api)
    return api


def _webhooks(config):
    """Where the scripts' conversation events go: ``--iadvize-webhook-url``, or the started bot's ``/webhooks``."""
    from harness.conformance.webhooks import Webhooks

    url = config.getoption("iadvize_webhook_url")
    if url is None and not config.getoption("iadvize_url"):
        url = f"{_bot_url(config)}/webhooks"
    return Webhooks(url, config.getoption("iadvize_secret")) if url else None


def _bot_url(config) -> str:
    url = config.getoption("iadvize_url")
    if url:
        return url
    bot = getattr(config, _EMBEDDED, None)
    if bot is None:
        from harness.bots import BotProcessError, EmbeddedBot

        package = config.getoption("iadvize_bot")
        beside_settings = config.rootpath / package  # a copy named in pytest.ini: found from any folder
        if not (Path.cwd() / package).is_dir() and beside_settings.is_dir():
            package = str(beside_settings)
        env = _api(config).reference_bot_settings()
        try:
            bot = EmbeddedBot(secret=config.getoption("iadvize_secret"), workers=2, package=package, env=env)
        except ValueError as problem:
            pytest.exit(f"--iadvize-bot {problem}", returncode=pytest.ExitCode.USAGE_ERROR)
        setattr(config, _EMBEDDED, bot)
        try:
            bot.start()
        except BotProcessError:  # one error for the run, not one per script: the last line of its log says why
            last = (bot.log_tail(1) or "no log").strip()
            pytest.exit(f"--iadvize-bot {package} did not start: {last}", returncode=pytest.ExitCode.USAGE_ERROR)
    return bot.url


def pytest_unconfigure(config):
    """Stops the embedded reference bot, if one was started."""
    bot = getattr(config, _EMBEDDED, None)
    if bot is not None:
        bot.close()
    api = getattr(config, _API, None)
    if api is not None:
        api.close()


@pytest.fixture(scope="session")
def reference_bot_url(pytestconfig) -> str:
    """The URL of the bot under test: --iadvize-url, or the embedded reference bot."""
    return _bot_url(pytestconfig)


@pytest.fixture
def iadvize_platform(reference_bot_url, pytestconfig):
    """``iadvize_platform(distribution_rules=[...], rule_available=False, scenario=None)`` -> a platform
    whose operator is saved in the bot; open chats with ``.open_chat()``."""

    def make(
        distribution_rules: list[dict] | None = None, rule_available: bool = False, scenario: str | None = None
    ) -> SimulatedPlatform:
        client = BotClient(reference_bot_url, secret=pytestconfig.getoption("iadvize_secret"))
        rules = distribution_rules or [{"id": str(uuid.uuid4()), "label": "Customer service"}]
        id_operator = new_operator_id()
        client.save_bot(
            id_operator,
            {
                "name": "pytest",
                "distributionRules": rules,
                "external": {"idBot": scenario or client.external_bots()[0]["idBot"]},
            },
        )
        return SimulatedPlatform(client, id_operator, rules, rule_available=rule_available)

    return make
