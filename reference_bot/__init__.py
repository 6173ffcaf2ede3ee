"""The reference iAdvize external-bot connector: a Flask app to start your own bot from.

``create_app(config)`` builds it; ``reference_bot.wsgi:app`` serves it with gunicorn.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, jsonify

from . import admin, config, conversations, errors, logs, recorder, security, webhooks
from .dialogue import answer
from .operators import OperatorDirectory
from .polls import AvailabilityPolls
from .proactive import GraphQLClient, OutboxWorker
from .runtime import Runtime, ScenarioFolder
from .scenario import ScenarioError, load_directory
from .store import open_store

__all__ = ["ScenarioError", "create_app"]

NO_SECRET_WARNING = "no IADVIZE_SECRET configured: X-iAdvize-Signature is NOT checked"


def create_app(settings: dict | None = None) -> Flask:
    """The bot's Flask app, configured by defaults, then the environment, then ``settings``.

    Loads every scenario (a bad file raises ScenarioError here) and opens the store. Starts
    the operators' refresh thread and, when iAdvize API credentials are set (and
    ``OUTBOX_POLL_SECONDS`` is above 0), the outbox thread that sends proactive messages.
    """
    app = Flask(__name__, instance_relative_config=True)
    # "/bots/%2F/..." decodes to a double slash: Werkzeug would redirect it (an HTML 308 to an address built
    # from the caller's Host header); an id that is not one is a JSON 404 like any unknown path
    app.url_map.merge_slashes = False
    app.config.from_mapping(config.defaults(app.instance_path))
    app.config.update(config.from_environment())
    app.config.update(settings or {})
    app.json.sort_keys = False
    log = logs.configure(app.config["LOG_LEVEL"])

    scenarios = load_directory(Path(app.config["SCENARIOS_DIR"]))  # a bad file stops start-up here
    settings = app.config
    store = open_store(
        settings["DATABASE"], int(settings["DATABASE_POOL_SIZE"]), migrated=settings["DATABASE_MIGRATED"]
    )
    outbox = None
    if app.config["IADVIZE_USERNAME"] and app.config["IADVIZE_PASSWORD"]:
        timeout = float(app.config["IADVIZE_API_TIMEOUT_SECONDS"])
        client = GraphQLClient(
            app.config["IADVIZE_API_URL"],
            app.config["IADVIZE_USERNAME"],
            app.config["IADVIZE_PASSWORD"],
            timeout=timeout,
        )
        outbox = OutboxWorker(
            store,
            client,
            poll=app.config["OUTBOX_POLL_SECONDS"],
            max_backoff=float(app.config["OUTBOX_MAX_BACKOFF_SECONDS"]),
            lease=3 * timeout,
        )
        if app.config["OUTBOX_POLL_SECONDS"] > 0:
            outbox.start()
    app.extensions[__package__] = Runtime(
        folder=ScenarioFolder(Path(app.config["SCENARIOS_DIR"]), scenarios, watch=app.config["RELOAD_SCENARIOS"]),
        store=store,
        operators=OperatorDirectory(store, app.config["OPERATORS_REFRESH_SECONDS"]),
        dialogue=app.config["DIALOGUE"] or answer,
        outbox=outbox,
    )

    polls = logs.register(app)  # first: every later hook and error is logged with its request id
    recorder.register(app)
    security.register(app)
    errors.register(app, unavailable=store.UNAVAILABLE)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(conversations.blueprint)
    app.register_blueprint(webhooks.blueprint)

    if polls is not None and not app.config["RECORDINGS_DIR"]:  # recording needs every call through Flask
        app.wsgi_app = AvailabilityPolls(
            app.wsgi_app,
            app.extensions[__package__],
            app.config["IADVIZE_SECRET"] or None,
            security.allowed_addresses(app.config.get("ALLOWED_IPS")),
            polls,
            security.trusted_proxies(app.config.get("TRUSTED_PROXIES")),
        )

    @app.get("/healthcheck", endpoint="health.healthcheck")
    def healthcheck():
        return jsonify(status="UP")  # as the developer platform requires: nothing more, public

    if not app.config["IADVIZE_SECRET"] and app.config["WARN_WITHOUT_SECRET"]:
        log.warning(NO_SECRET_WARNING)
    logging.getLogger(__package__).info("bot ready", extra={"path": store.description})
    return app
