"""Configuration: defaults, then environment variables, then what ``create_app(config)`` is given."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .store import is_postgresql

SCENARIOS_DIR = Path(__file__).parent / "scenarios"

# config key -> environment variable that may set it
ENVIRONMENT = {
    "IADVIZE_SECRET": "IADVIZE_SECRET",
    "DATABASE": "REFERENCE_BOT_DATABASE",
    "DATABASE_POOL_SIZE": "REFERENCE_BOT_DATABASE_POOL_SIZE",
    "SCENARIOS_DIR": "REFERENCE_BOT_SCENARIOS",
    "PUBLIC_URL": "REFERENCE_BOT_PUBLIC_URL",
    "MAX_CONTENT_LENGTH": "REFERENCE_BOT_MAX_BODY_BYTES",
    "IADVIZE_API_URL": "IADVIZE_API_URL",
    "IADVIZE_USERNAME": "IADVIZE_USERNAME",
    "IADVIZE_PASSWORD": "IADVIZE_PASSWORD",
    "LOG_LEVEL": "REFERENCE_BOT_LOG_LEVEL",
    "WARN_WITHOUT_SECRET": "REFERENCE_BOT_WARN_WITHOUT_SECRET",
    "DATABASE_MIGRATED": "REFERENCE_BOT_DATABASE_MIGRATED",
    "AVAILABILITY_LOG_SECONDS": "REFERENCE_BOT_AVAILABILITY_LOG_SECONDS",
    "RECORDINGS_DIR": "REFERENCE_BOT_RECORDINGS",
    "IADVIZE_API_TIMEOUT_SECONDS": "IADVIZE_API_TIMEOUT",
    "OUTBOX_MAX_BACKOFF_SECONDS": "REFERENCE_BOT_OUTBOX_MAX_BACKOFF",
    "ALLOWED_IPS": "REFERENCE_BOT_ALLOWED_IPS",
    "TRUSTED_PROXIES": "REFERENCE_BOT_TRUSTED_PROXIES",
    "PUBLIC_SCENARIOS": "REFERENCE_BOT_PUBLIC_SCENARIOS",
    "RELOAD_SCENARIOS": "REFERENCE_BOT_RELOAD_SCENARIOS",
    "RECORDINGS_KEEP_PERSONAL_DATA": "REFERENCE_BOT_RECORDINGS_KEEP_PERSONAL_DATA",
    "RECORDINGS_RETENTION_DAYS": "REFERENCE_BOT_RECORDINGS_RETENTION_DAYS",
}
INTEGERS = {"MAX_CONTENT_LENGTH", "DATABASE_POOL_SIZE", "AVAILABILITY_LOG_SECONDS"}
SECONDS = {"IADVIZE_API_TIMEOUT_SECONDS", "OUTBOX_MAX_BACKOFF_SECONDS", "RECORDINGS_RETENTION_DAYS"}
BOOLEANS = {
    "WARN_WITHOUT_SECRET",
    "DATABASE_MIGRATED",
    "RECORDINGS_KEEP_PERSONAL_DATA",
    "PUBLIC_SCENARIOS",
    "RELOAD_SCENARIOS",
}

# the SQLite file's name: the package's (reference-bot.sqlite3; a copy made with `template` gets its own name's)
DATABASE_FILE = f"{__package__.replace('_', '-')}.sqlite3"


def defaults(instance_path: str) -> dict:
    """The settings neither the environment nor ``create_app`` sets; the database file goes in ``instance_path``."""
    return {
        "IADVIZE_SECRET": None,  # set it in production: without it, signatures are not checked
        # An SQLite file (one machine), or postgresql://user:password@host:5432/name (several instances)
        "DATABASE": os.path.join(instance_path, DATABASE_FILE),
        # PostgreSQL: connections per worker process at most (its threads, the outbox and the refresh share them)
        "DATABASE_POOL_SIZE": 5,
        "SCENARIOS_DIR": str(SCENARIOS_DIR),
        "PUBLIC_URL": "http://127.0.0.1:5000",  # where this bot is reachable: scenario editor links use it
        "MAX_CONTENT_LENGTH": 1024 * 1024,  # larger bodies are answered 413
        "IADVIZE_API_URL": "https://api.iadvize.com",
        "IADVIZE_USERNAME": None,  # with the password: enables proactive (GraphQL) messages
        "IADVIZE_PASSWORD": None,
        "OPERATORS_REFRESH_SECONDS": 2.0,  # how soon a worker sees an operator saved by another one
        "OUTBOX_POLL_SECONDS": 0.5,
        "DIALOGUE": None,  # a replacement for reference_bot.dialogue.answer
        "LOG_LEVEL": "INFO",
        # Availability polls answered are counted per operator and logged as one line this often (0: a line each)
        "AVAILABILITY_LOG_SECONDS": 60,
        "WARN_WITHOUT_SECRET": True,  # `serve` warns once itself and turns this off in its workers
        "DATABASE_MIGRATED": False,  # `serve` migrates once before forking: its workers boot without the database
        "RECORDINGS_DIR": None,  # a folder: every call iAdvize makes is recorded there (JSON lines)
        "RECORDINGS_KEEP_PERSONAL_DATA": False,  # recorded as written (default: pseudonyms of the same shape)
        "RECORDINGS_RETENTION_DAYS": None,  # recordings older than this many days are deleted (default: kept)
        # How long one call to iAdvize's token or GraphQL endpoint may take; an outbox message is leased
        # to one worker for three times this, so one killed mid-send is retried by another after that.
        "IADVIZE_API_TIMEOUT_SECONDS": 10.0,
        # The longest wait between two tries of a proactive message while iAdvize is unreachable
        # (1, 2, 4... s up to this). Lower it to see an outage end sooner, e.g. in fault tests.
        "OUTBOX_MAX_BACKOFF_SECONDS": 300.0,
        # Comma-separated addresses calls may come from ("iadvize": the ones iAdvize documents); unset: any.
        "ALLOWED_IPS": None,
        # Comma-separated addresses of the reverse proxies in front of the bot: only from them is the
        # X-Forwarded-For header read (the caller: the last address in it that is not one of them); unset: none.
        "TRUSTED_PROXIES": None,
        # The scenario viewer (GET /scenarios/<idBot>, the default editorUrl) answered without a signature, for
        # an admin's browser: it shows the scenario's source. Default: signed like every other call.
        "PUBLIC_SCENARIOS": False,
        # The scenario files read again when they change (serve --reload), for a developer editing them: a file
        # that no longer loads keeps the last good scenarios, its problem told by GET /scenario-problem.
        "RELOAD_SCENARIOS": False,
    }


class ConfigError(ValueError):
    """A setting the bot cannot start with; the message names the variable."""


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def check_database(value: str, name: str = "REFERENCE_BOT_DATABASE") -> str:
    """``value`` when it is a file path or a PostgreSQL URL; another URL (mysql://...) is refused, since
    taken for a path it would write a file named after it without a word."""
    if _URL.match(str(value)) and not is_postgresql(value):
        scheme = value.split("://")[0]
        raise ConfigError(
            f"{name}: the bot cannot keep its state in a {scheme}:// database; give an SQLite file path "
            "(such as instance/bot.sqlite3) or a postgresql://user:password@host:5432/name URL"
        )
    return value


def from_environment(environ=os.environ) -> dict:
    """The settings the variables of ``ENVIRONMENT`` set in ``environ`` (empty ones ignored), as their types.

    Raises ConfigError for a number, or a number of seconds, that is not one.
    """
    found = {}
    for key, variable in ENVIRONMENT.items():
        if environ.get(variable):
            value = environ[variable]
            if key in INTEGERS:
                if not value.strip().isdigit():
                    raise ConfigError(f"{variable} must be a whole number, got {value!r}")
                value = int(value)
            elif key in SECONDS:
                try:
                    value = float(value)
                except ValueError:
                    value = -1.0
                if not 0 < value < float("inf"):
                    unit = "days" if variable.endswith("_DAYS") else "seconds"
                    raise ConfigError(f"{variable} must be a positive number of {unit}, got {environ[variable]!r}")
            elif key in BOOLEANS:
                value = value.strip().lower() not in ("0", "false", "no", "off")
            if key == "DATABASE":
                check_database(value, variable)
            found[key] = value
    return found
