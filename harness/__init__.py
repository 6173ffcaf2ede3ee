"""The iAdvize external-bot harness: call a bot as iAdvize does, and judge what it answers.

The package follows the data's three flows (see CONTRIBUTING.md, "How it is built"):

- ``wire/`` the API's shapes, limits and signature, shared with the reference bot; ``client`` calls a
  bot with them; ``bots`` gives the bot under test (a URL, or the embedded reference bot);
- ``verify/`` contracts: the iAdvize pacts replayed against a bot;
- ``conformance/`` the simulated platform, its rules, the probes of ``check`` and conversation scripts;
- ``traffic/`` recordings, the recording proxy, the synthetic sample and ``replay``;
- ``analysis/`` metrics, outcomes, conversations drawn as chats and the notebook report;
- ``load/`` iAdvize-shaped load with Locust; ``cli/`` and ``pytest_plugin`` are the faces.

The names below are the public API. They are imported when first used, so ``import harness`` stays
light: the analysis stack (pandas, Jupyter) and pact load only with the names that need them.
"""

from __future__ import annotations

import importlib

# public name -> the module it lives in
_WHERE = {
    "BotClient": "harness.client",
    "BotError": "harness.client",
    "Exchange": "harness.client",
    "GiveUp": "harness.client",
    "preflight": "harness.client",
    "visitor_text": "harness.client",
    "echo_of": "harness.client",
    "bot": "harness.bots",
    "EmbeddedBot": "harness.bots",
    "BotProcessError": "harness.bots",
    "verify": "harness.verify",
    "Verification": "harness.verify",
    "VerifyError": "harness.verify",
    "SimulatedPlatform": "harness.conformance.platform",
    "SimulatedConversation": "harness.conformance.platform",
    "check": "harness.conformance.probes",
    "Exploration": "harness.conformance.probes",
    "Report": "harness.conformance.probes",
    "RULES": "harness.conformance.rules",
    "Finding": "harness.conformance.rules",
    "judge": "harness.conformance.rules",
    "load_script": "harness.conformance.scripts",
    "load_scripts": "harness.conformance.scripts",
    "run_script": "harness.conformance.scripts",
    "ScriptError": "harness.conformance.scripts",
    "ScriptFailure": "harness.conformance.scripts",
    "RecordingWriter": "harness.traffic.recordings",
    "read": "harness.traffic.recordings",
    "recording_files": "harness.traffic.recordings",
    "RecordingProxy": "harness.traffic.proxy",
    "replay": "harness.traffic.replay",
    "copy_template": "harness.template",
    "chat": "harness.chat",  # the package itself, callable: harness.chat(url) in a notebook
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    module = importlib.import_module(_WHERE[name])
    value = module if module.__name__ == f"harness.{name}" else getattr(module, name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
