"""What iAdvize calls while an admin sets a bot up, and its availability polling.

``GET /external-bots``, ``PUT`` and ``GET /bots/:idOperator``, ``GET /availability-strategies``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, g, jsonify, request

from .errors import ApiError, json_body
from .runtime import now, runtime
from .scenario import Scenario
from .store import Operator

blueprint = Blueprint("admin", __name__)


def editor_url(scenario: Scenario) -> str:
    """The scenario's ``editorUrl``, or this bot's read-only view of its file under ``PUBLIC_URL``."""
    return scenario.editor_url or f"{current_app.config['PUBLIC_URL'].rstrip('/')}/scenarios/{scenario.id_bot}"


@blueprint.get("/external-bots")
def external_bots():
    """``GET /external-bots``: every scenario, as an idBot the admin can link an operator to."""
    return jsonify(
        [
            {"idBot": s.id_bot, "name": s.name, "description": s.description, "editorUrl": editor_url(s)}
            for s in runtime().scenarios.values()
        ]
    )


@blueprint.get("/scenario-problem")
def scenario_problem():
    """With ``serve --reload``: why the scenario files last read did not load (null: they did), for the chat page."""
    folder = runtime().folder
    folder.get()  # looked at now (once a second at most): what it says is the files' state, not an old one
    return jsonify(problem=folder.problem, reload=folder.watch)


@blueprint.get("/scenarios/<id_bot>")
def scenario_source(id_bot: str):
    """The scenario file, read-only: what ``editorUrl`` points at until you plug in a real editor."""
    scenario = runtime().scenarios.get(id_bot)
    if scenario is None:
        raise ApiError(404, "unknown scenario", f"no scenario with idBot {id_bot!r}")
    return Path(scenario.source).read_text(encoding="utf-8"), 200, {"Content-Type": "text/plain; charset=utf-8"}


def operator_document(operator: Operator) -> dict:
    """The operator as ``GET`` and ``PUT /bots/:idOperator`` answer it, with its scenario's name and editor link.

    An operator whose scenario file is gone is still answered (idBot and the default editorUrl),
    so the admin can see it and link another scenario.
    """
    bot = runtime()
    scenario = bot.scenarios.get(operator.id_bot)
    external = {"idBot": operator.id_bot}
    if scenario:
        external.update(name=scenario.name, description=scenario.description, editorUrl=editor_url(scenario))
    else:  # a scenario file removed since: still answer, the admin must be able to pick another
        external["editorUrl"] = f"{current_app.config['PUBLIC_URL'].rstrip('/')}/scenarios/{operator.id_bot}"
    settings = operator.settings
    document = {"idOperator": operator.id_operator, "external": external}
    document.update({k: settings[k] for k in ("name", "pseudo", "language") if k in settings})
    document["distributionRules"] = settings.get("distributionRules", [])
    document["createdAt"], document["updatedAt"] = operator.created_at, operator.updated_at
    return document


@blueprint.put("/bots/<id_operator>")
def save_operator(id_operator: str):
    """``PUT /bots/:idOperator``: saves the operator and its scenario, in the store and in memory.

    Answers 422 for an ``external.idBot`` this bot has no scenario for.
    """
    body = json_body("bot.request")
    bot = runtime()
    id_bot = body["external"]["idBot"]
    if id_bot not in bot.scenarios:
        # 422: the body fits the API, but names a scenario this bot does not have
        raise ApiError(
            422,
            "unknown scenario",
            f"external.idBot: no scenario {id_bot!r}; this bot has {', '.join(sorted(bot.scenarios))}",
        )
    settings = {k: body[k] for k in ("name", "pseudo", "language", "distributionRules") if k in body}
    settings["idBot"] = id_bot
    operator = bot.store.save_operator(id_operator, settings, now())
    bot.operators.put(operator)
    return jsonify(operator_document(operator))


@blueprint.get("/bots/<id_operator>")
def read_operator(id_operator: str):
    """``GET /bots/:idOperator``: the operator as stored, or 404."""
    operator = runtime().store.operator(id_operator)
    if operator is None:
        raise ApiError(404, "unknown operator", f"no operator {id_operator!r}: create it with PUT /bots/{id_operator}")
    return jsonify(operator_document(operator))


@blueprint.get("/availability-strategies")
def availability_strategies():
    """``GET /availability-strategies``: how iAdvize decides whether the operator's bot is available.

    The scenario's availability strategy over the operator's distribution rules; ``always``, or
    an operator without distribution rules, answers ``customAvailability`` true since there is
    nobody to transfer to. 400 without the ``idOperator`` query parameter.
    """
    id_operator = request.args.get("idOperator")
    if not id_operator:
        raise ApiError(400, "missing parameter", "the query parameter idOperator is required")
    g.id_operator = id_operator  # in the access log: which operator was polled
    bot = runtime()
    operator = bot.operator(id_operator)
    return jsonify(availability_of(operator, bot.scenario_of(operator)))


def availability_of(operator: Operator, scenario: Scenario) -> list[dict]:
    """The answer to an availability poll: the scenario's strategy over the operator's distribution rules."""
    rules = [rule["id"] for rule in operator.distribution_rules]
    if scenario.availability == "notAvailable":
        return [{"strategy": "notAvailable"}]
    if scenario.availability == "always" or not rules:
        # Nobody to hand over to: the bot answers alone, so it is available on its own terms.
        return [{"strategy": "customAvailability", "availability": True}]
    return [{"strategy": scenario.availability, "distributionRulesToCheck": rules}]
